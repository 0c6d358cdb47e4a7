"""Per-target request pacing: a token bucket, a cap on requests in flight, ``Retry-After``.

:class:`RateLimitedTransport` wraps the ``httpx`` transport a target's client uses, so targets
never sleep on their own. For every request it

1. waits while the target asked us to pause (``Retry-After`` of an earlier 429),
2. takes a token from the bucket (rate from config; unlimited when none is set),
3. takes an in-flight slot (``max_in_flight``),
4. sends; on 429 it pauses every sender of this target for ``Retry-After`` and sends the same
   request again (a 429 means "not processed"), up to ``max_429_retries`` times, then gives the
   429 to the target (which answers ``retry`` with ``rate_limited=True``: no attempt spent).

AIMD: two 429s close together halve the rate (never below ``min_fraction`` of the configured
one); each success gives back 2% of the configured rate. Without a configured rate the first
429 starts one at 80% of the rate measured over the last second.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable

import httpx

from ..http import MAX_RETRY_AFTER, retry_after_seconds
from ..observability import metrics

Clock = Callable[[], float]
Sleep = Callable[[float], None]

SHRINK = 0.5
GROW_FRACTION = 0.02
REPEAT_WINDOW = 5.0  # two 429s within this many seconds count as "repeated"


_ID = re.compile(r"/[0-9]+(?=/|$)")


def _endpoint(request: httpx.Request) -> str:
    """``PUT /api/rest/contacts/{id}``: a low-cardinality label for the latency histogram."""
    return f"{request.method} {_ID.sub('/{id}', request.url.path)}"


class RateLimiter:
    """Token bucket + in-flight cap + pause, shared by every thread sending to one target."""

    def __init__(
        self,
        rate: float | None,
        max_in_flight: int,
        *,
        min_fraction: float = 0.1,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.configured = rate
        self.rate = rate
        self.min_fraction = min_fraction
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._burst = 1.0 if rate is None else max(1.0, min(rate * 0.1, float(max_in_flight)))
        self._tokens = self._burst
        self._refilled = clock()
        self._paused_until = 0.0
        self._last_429 = -1e9
        self._sent: deque[float] = deque()
        self.throttled = 0  # 429s seen
        self.waited = 0.0  # seconds spent waiting for Retry-After

    def acquire(self) -> None:
        """Block until this sender may send (pause over, token taken), then take a slot."""
        while True:
            with self._lock:
                now = self._clock()
                if now < self._paused_until:
                    wait = self._paused_until - now
                elif self.rate is None:
                    wait = 0.0
                else:
                    self._refill(now)
                    if self._tokens >= 1.0:
                        self._tokens -= 1.0
                        wait = 0.0
                    else:
                        wait = (1.0 - self._tokens) / self.rate
                if wait <= 0.0:
                    self._note_sent(now)
                    break
            self._sleep(min(wait, 1.0))
        self._slots.acquire()

    def release(self) -> None:
        self._slots.release()

    def _refill(self, now: float) -> None:
        assert self.rate is not None
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now

    def _note_sent(self, now: float) -> None:
        self._sent.append(now)
        while self._sent and self._sent[0] < now - 1.0:
            self._sent.popleft()

    def on_success(self) -> None:
        """Additive increase back towards the configured rate."""
        with self._lock:
            if self.rate is None:
                return
            ceiling = self.configured if self.configured is not None else float("inf")
            step = (self.configured or self.rate) * GROW_FRACTION
            self.rate = min(ceiling, self.rate + step)

    def on_throttled(self, retry_after: float) -> None:
        """A 429: pause every sender; halve the rate when 429s repeat."""
        with self._lock:
            now = self._clock()
            self.throttled += 1
            self._paused_until = max(self._paused_until, now + retry_after)
            repeated = now - self._last_429 < REPEAT_WINDOW
            self._last_429 = now
            if self.rate is None:
                measured = float(len(self._sent))
                self.rate = max(1.0, measured * 0.8)
                self._burst = 1.0
                self._tokens = 0.0
                self._refilled = now
            elif repeated:
                floor = (self.configured or self.rate) * self.min_fraction
                self.rate = max(floor, self.rate * SHRINK)
            self._tokens = min(self._tokens, 0.0)

    def pause_left(self) -> float:
        with self._lock:
            return max(0.0, self._paused_until - self._clock())


# Waits longer than this are not slept in a sender thread: the 429 goes back to the target,
# whose rows are parked with their due time (stop is never held up by a long Retry-After).
PARK_AFTER = 5.0


def _parked(request: httpx.Request, left: float) -> httpx.Response:
    """The 429 the server would answer while its pause lasts, without sending."""
    return httpx.Response(
        429, headers={"Retry-After": str(math.ceil(left))}, request=request, content=b""
    )


class RateLimitedTransport(httpx.BaseTransport):
    """An ``httpx`` transport that paces requests through a :class:`RateLimiter`."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        limiter: RateLimiter,
        *,
        max_429_retries: int = 4,
        target: str = "",
        max_retry_after: float = MAX_RETRY_AFTER,
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.max_429_retries = max_429_retries
        self.target = target  # the metrics label
        self.max_retry_after = max_retry_after  # config delivery.max_retry_after_seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body must be replayable for a send after a 429
        left = self.limiter.pause_left()
        if left > PARK_AFTER:  # a long pause: answer for the server, the rows wait their turn
            return _parked(request, left)
        tries = 0
        while True:
            self.limiter.acquire()
            started = time.perf_counter()
            try:
                response = self.inner.handle_request(request)
            finally:
                self.limiter.release()
                metrics.REQUEST_SECONDS.labels(self.target, _endpoint(request)).observe(
                    time.perf_counter() - started
                )
            if response.status_code != 429:
                if response.status_code < 500:
                    self.limiter.on_success()
                return response
            response.read()
            metrics.RATE_LIMITED.labels(self.target).inc()
            wait = retry_after_seconds(response, cap=self.max_retry_after)
            self.limiter.on_throttled(wait)
            tries += 1
            if tries > self.max_429_retries or wait > PARK_AFTER:
                # the target parks its rows until then (due time, no sleep), reading the
                # capped wait: whatever its client makes of the header stays under the cap
                response.headers["Retry-After"] = str(math.ceil(wait))
                return response
            response.close()
            self.limiter.waited += wait

    def close(self) -> None:
        self.inner.close()
