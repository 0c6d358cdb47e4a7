"""A circuit breaker per target: stop sending to a target that keeps failing.

States: ``closed`` (send) -> after ``threshold`` consecutive failures -> ``open`` (send nothing
for ``cooldown`` seconds; rows stay queued with their due times) -> ``half_open`` (one probe
request is let through) -> ``closed`` on success, or ``open`` again with the cooldown doubled
(capped at ``max_cooldown``) on failure. A failure is a transient one (network error, timeout,
5xx); a 429 is pacing, not failure, and a record the target rejected is the record's fault.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Thread-safe; ``allow()`` before each send, ``record()`` after it."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 5.0,
        max_cooldown: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened = 0  # how many times it opened (for stats and tests)

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current()

    def _current(self) -> BreakerState:
        if self._state == "open" and self._clock() >= self._opened_at + self.cooldown:
            self._state = "half_open"
            self._probing = False
        return self._state

    def allow(self) -> bool:
        """Whether a request may go now (in half-open: only the single probe)."""
        with self._lock:
            state = self._current()
            if state == "closed":
                return True
            if state == "half_open" and not self._probing:
                self._probing = True
                return True
            return False

    def record(self, success: bool) -> None:
        """The result of a request that ``allow()`` let through."""
        with self._lock:
            state = self._current()
            if success:
                self._failures = 0
                if state != "closed":
                    self._state = "closed"
                    self.cooldown = self.base_cooldown
                self._probing = False
                return
            self._failures += 1
            if state == "half_open":
                self.cooldown = min(self.max_cooldown, self.cooldown * 2)
                self._open()
            elif state == "closed" and self._failures >= self.threshold:
                self._open()

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._probing = False
        self.opened += 1

    def reopens_in(self) -> float:
        """Seconds until a probe is allowed (0 when closed or half-open)."""
        with self._lock:
            if self._current() != "open":
                return 0.0
            return max(0.0, self._opened_at + self.cooldown - self._clock())
