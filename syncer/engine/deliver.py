"""The delivery engine: one :class:`~syncer.engine.worker.TargetWorker` per target, each in its
own thread, with its own rate limiter, in-flight cap, circuit breaker and HTTP client, so a
slow or failing target never slows another.

Used by ``sync --once`` (``run_all_once``), the daemon (``run_target_once`` on a schedule, or
``run_all_once`` per tick) and tests::

    deliverer = Deliverer(cfg, store, run_id="run-1")
    stats = deliverer.run_all_once()          # {"nrs": TargetStats(done=..., dead=...)}
    deliverer.close()
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from ..config import SyncerConfig
from ..mapping import compile_pipelines
from ..state import delivery_ops as ops
from ..state.store import Store
from ..targets.base import Target
from ..targets.registry import build_target, spec_for
from ..targets.spec import Capabilities
from .breaker import CircuitBreaker
from .context import StoreContext
from .outcomes import RetryPolicy, TargetStats
from .planner import Planner
from .ratelimit import RateLimitedTransport, RateLimiter
from .worker import TargetWorker

__all__ = ["Deliverer", "TargetStats"]


class Deliverer:
    """Delivers due rows to every configured target.

    ``targets`` may hold ready-made targets by name (tests); the others are built from the
    config through :mod:`syncer.targets.registry` when first needed, each with its own
    ``httpx.Client`` over a :class:`RateLimitedTransport`.
    """

    def __init__(
        self,
        cfg: SyncerConfig,
        store: Store,
        *,
        run_id: str,
        targets: dict[str, Target] | None = None,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 5.0,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.run_id = run_id
        self.planner = Planner(compile_pipelines(cfg), {p.name: p.on_delete for p in cfg.pipelines})
        self._given = dict(targets or {})
        self._breaker = (breaker_threshold, breaker_cooldown)
        self._workers: dict[str, TargetWorker] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def target_names(self) -> list[str]:
        used = {p.target for p in self.cfg.pipelines}
        return [name for name in self.cfg.targets if name in used]

    def worker(self, name: str) -> TargetWorker:
        """The worker of target ``name`` (built on first use)."""
        with self._lock:
            if name not in self._workers:
                self._workers[name] = self._build(name)
            return self._workers[name]

    def _build(self, name: str) -> TargetWorker:
        tcfg = self.cfg.targets[name]
        limiter: RateLimiter | None = None
        target = self._given.get(name)
        spec = spec_for(tcfg.type)
        # a ready-made target (a test double) declares no optional ability
        caps = spec.capabilities if target is None else Capabilities(kind=spec.capabilities.kind)
        if target is None:
            limiter = RateLimiter(tcfg.rate_limit, tcfg.max_in_flight)
            pool = tcfg.max_in_flight + 2
            inner = httpx.HTTPTransport(
                limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
            )
            cap = self.cfg.delivery.max_retry_after_seconds
            transport = RateLimitedTransport(inner, limiter, target=name, max_retry_after=cap)
            target = build_target(name, tcfg, transport, store=self.store)
        engine, delivery = self.cfg.engine, self.cfg.delivery
        call_size = spec.capabilities.batch_size(tcfg) if spec.capabilities.batch_size else None
        policy = RetryPolicy(
            tcfg.max_attempts,
            engine.backoff_base,
            engine.backoff_max,
            max_retry_after=delivery.max_retry_after_seconds,
        )
        threshold, cooldown = self._breaker
        return TargetWorker(
            name,
            target,
            self.store,
            StoreContext(self.store, name),
            self.planner,
            policy,
            max_in_flight=tcfg.max_in_flight,
            # a batch API gets whole calls' worth: claim at least the target's own batch size
            batch_size=max(engine.batch_size, call_size or 0),
            capabilities=caps,
            call_size=call_size,
            limiter=limiter,
            breaker=CircuitBreaker(threshold, cooldown),
            run_id=self.run_id,
            stopping=self._stopping,
            claim_lease=delivery.claim_lease_seconds,
        )

    # -- running -----------------------------------------------------------------------------
    def run_target_once(
        self, name: str, *, force_flush: bool = False, budget: float = 5.0
    ) -> TargetStats:
        """One scheduler tick for one target: deliver what is due, claiming new batches for
        at most ``budget`` seconds (the pool stays full across batches), then record and
        return. ``claimed == 0`` means nothing was due."""
        return self.worker(name).drain(force_flush=force_flush, budget=budget)

    def run_all_once(
        self, force_flush: bool = True, *, wait_for_retries: float = 0.0
    ) -> dict[str, TargetStats]:
        """Every target in its own thread until nothing is due; per-target counts.

        ``wait_for_retries``: also wait for retries (and breaker probes) that come due within
        that many seconds of the end, e.g. so ``sync --once`` rides out a short outage.
        """
        results: dict[str, TargetStats] = {}
        errors: list[BaseException] = []

        def run(name: str) -> None:
            try:
                results[name] = self._drain_until_settled(name, force_flush, wait_for_retries)
            except BaseException as exc:  # re-raised in the caller's thread below
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(n,), name=f"deliver-{n}") for n in self.target_names
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    def _drain_until_settled(self, name: str, force_flush: bool, wait: float) -> TargetStats:
        worker = self.worker(name)
        stats = TargetStats()
        deadline: float | None = None  # counted from the end of the first full drain
        while True:
            stats.merge(worker.drain(force_flush=force_flush))
            with self.store.transaction() as conn:
                due = ops.next_due(conn, name)
                stats.waiting = ops.count_open(conn, name)
                # a job this process or an earlier one began (a stopped daemon's NP6 import)
                job_due = worker.job_due or (due if ops.has_running_job(conn, name) else None)
            if self._stopping.is_set() or worker.fatal is not None or due is None:
                return stats
            if job_due is not None:  # a job in progress: resume it when due
                if self._stopping.wait(max(0.0, job_due - time.time()) + 0.01):
                    return stats
                continue
            if wait <= 0:
                return stats
            deadline = deadline if deadline is not None else time.monotonic() + wait
            sleep_for = max(due - time.time(), worker.breaker.reopens_in(), 0.0)
            if time.monotonic() + sleep_for > deadline:
                return stats
            if self._stopping.wait(min(sleep_for, 1.0) + 0.01):
                return stats

    def job_due(self, name: str) -> float | None:
        """When a job target ``name`` has in progress (an NP6 import) is due to be resumed."""
        return self.worker(name).job_due

    def stop(self) -> None:
        """Graceful stop: no new claims; in-flight calls finish and are recorded; queued,
        unsent rows go back to the queue without spending an attempt."""
        self._stopping.set()

    def close(self) -> None:
        """Release threads and HTTP clients."""
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
