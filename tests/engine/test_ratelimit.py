"""The per-target rate limiter and its httpx transport (token bucket, in-flight cap, 429s)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from syncer.engine.ratelimit import RateLimitedTransport, RateLimiter


def client(handler: httpx.MockTransport, limiter: RateLimiter, **kw: int) -> httpx.Client:
    return httpx.Client(transport=RateLimitedTransport(handler, limiter, **kw), base_url="http://t")


def test_token_bucket_paces_requests_to_the_rate() -> None:
    limiter = RateLimiter(50.0, 8)
    api = client(httpx.MockTransport(lambda r: httpx.Response(200)), limiter)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: api.get("/x"), range(40)))
    elapsed = time.monotonic() - started
    assert elapsed >= 0.65  # paced: (40 - burst 5) / 50 per second at the least


def test_in_flight_cap_holds() -> None:
    lock, now, peak = threading.Lock(), [0], [0]

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.02)
        with lock:
            now[0] -= 1
        return httpx.Response(200)

    api = client(httpx.MockTransport(handler), RateLimiter(None, 3))
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: api.get("/x"), range(30)))
    assert peak[0] == 3


def test_429_waits_retry_after_and_resends_without_the_caller_seeing_it() -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            return httpx.Response(429, headers={"Retry-After": "0.2"})
        return httpx.Response(201, json={"body": request.content.decode()})

    limiter = RateLimiter(None, 4)
    response = client(httpx.MockTransport(handler), limiter).post("/x", content=b"payload")
    assert response.status_code == 201 and response.json() == {"body": "payload"}
    assert calls[2] - calls[0] >= 0.38  # two Retry-After pauses, the body sent again
    assert limiter.throttled == 2


def test_gives_the_429_back_after_max_retries() -> None:
    handler = httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": "0"}))
    limiter = RateLimiter(None, 1)
    assert client(handler, limiter, max_429_retries=2).get("/x").status_code == 429
    assert limiter.throttled == 3


def test_repeated_429s_shrink_the_rate_and_successes_grow_it_back() -> None:
    limiter = RateLimiter(20.0, 4)
    limiter.on_throttled(0.0)
    assert limiter.rate == 20.0  # one 429 alone is not a trend
    limiter.on_throttled(0.0)
    assert limiter.rate == 10.0
    for _ in range(5):
        limiter.on_throttled(0.0)
    assert limiter.rate == 2.0  # floor: 10% of the configured rate
    for _ in range(100):
        limiter.on_success()
    assert limiter.rate == 20.0  # never above the configured rate


def test_without_a_configured_rate_a_429_starts_one_from_the_measured_rate() -> None:
    limiter = RateLimiter(None, 4)
    for _ in range(10):
        limiter.acquire()
        limiter.release()
    limiter.on_throttled(0.0)
    assert limiter.rate == 8.0


def test_a_pause_holds_every_sender() -> None:
    limiter = RateLimiter(None, 4)
    limiter.on_throttled(0.3)
    started = time.monotonic()
    limiter.acquire()
    limiter.release()
    assert time.monotonic() - started >= 0.28
