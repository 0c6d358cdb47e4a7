"""Fault injection shared by every simulator.

A :class:`FaultPlan` says what can go wrong; a :class:`FaultInjector` decides, per request and
reproducibly from a seed, what does go wrong. The ASGI middleware in :mod:`.app` applies the
decision:

* ``outage``: every API request answers 503 at once (the admin API under ``/_sandbox/`` keeps
  working so a test can lift the outage).
* ``rate_limit``: requests per second, a token bucket with one second of burst; over the limit the
  request answers 429 with ``Retry-After`` (whole seconds, at least 1, as HTTP allows) before the
  handler runs, so nothing is applied.
* ``latency_ms`` + ``jitter_ms``: sleep before the handler runs.
* ``error_rate``: probability of a 500, 502 or 503 before the handler runs (nothing applied).
* ``lost_response_rate``: probability that the handler runs and commits, then the connection is
  dropped in the middle of the body. Over real HTTP the client sees a protocol error; that is
  the "applied but the response is lost" case that must not create duplicates.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Named profiles for `syncer sandbox --faults PROFILE`.
PROFILES: dict[str, dict[str, Any]] = {
    "none": {},
    "flaky": {"error_rate": 0.1, "lost_response_rate": 0.05},
    "slow": {"latency_ms": 50, "jitter_ms": 20},
    "throttled": {"rate_limit": 20.0},
    "hostile": {"error_rate": 0.1, "lost_response_rate": 0.05, "rate_limit": 20.0},
}


@dataclass
class FaultPlan:
    """What may go wrong on one simulator. All zero means a perfect server."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_limit: float = 0.0  # requests per second, 0 = unlimited
    error_rate: float = 0.0
    lost_response_rate: float = 0.0
    outage: bool = False
    seed: int = 0
    #: the HTTP methods the plan applies to (``["PUT"]``: only writes fail); empty: all
    methods: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}; known: {sorted(known)}")
        methods = tuple(str(m).upper() for m in data.get("methods") or ())
        return cls(**{**data, "methods": methods})

    @classmethod
    def profile(cls, name: str, seed: int = 0) -> FaultPlan:
        if name not in PROFILES:
            raise ValueError(f"unknown fault profile {name!r}; known: {sorted(PROFILES)}")
        return cls(seed=seed, **PROFILES[name])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Decision:
    """What happens to one request."""

    status: int = 0  # non-zero: answer this status without running the handler
    retry_after: int = 0
    delay_s: float = 0.0
    drop_response: bool = False


@dataclass
class FaultInjector:
    """Turns a plan into per-request decisions; thread-safe, reproducible from the seed."""

    plan: FaultPlan = field(default_factory=FaultPlan)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.set_plan(self.plan)

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)
            self._tokens = plan.rate_limit
            self._refilled_at = time.monotonic()

    def decide(self, method: str = "") -> Decision:
        with self._lock:
            plan = self.plan
            if plan.methods and method.upper() not in plan.methods:
                return Decision()
            if plan.outage:
                return Decision(status=503)
            if plan.rate_limit > 0:
                now = time.monotonic()
                self._tokens = min(
                    plan.rate_limit, self._tokens + (now - self._refilled_at) * plan.rate_limit
                )
                self._refilled_at = now
                if self._tokens < 1.0:
                    wait = (1.0 - self._tokens) / plan.rate_limit
                    return Decision(status=429, retry_after=max(1, int(wait + 0.999)))
                self._tokens -= 1.0
            delay = plan.latency_ms / 1000.0
            if plan.jitter_ms:
                delay += self._rng.uniform(0, plan.jitter_ms) / 1000.0
            if plan.error_rate and self._rng.random() < plan.error_rate:
                return Decision(status=self._rng.choice((500, 502, 503)), delay_s=delay)
            drop = bool(plan.lost_response_rate) and self._rng.random() < plan.lost_response_rate
            return Decision(delay_s=delay, drop_response=drop)

    def rate_headers(self) -> dict[str, str]:
        """NP6-style ``X-RateLimit-*`` headers describing the bucket now."""
        with self._lock:
            limit = self.plan.rate_limit
            if limit <= 0:
                return {}
            remaining = max(0, int(self._tokens))
            return {
                "X-RateLimit-Limit": str(int(limit)),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(int(time.time()) + 1),
            }
