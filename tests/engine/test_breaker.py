"""The per-target circuit breaker."""

from __future__ import annotations

from syncer.engine.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=5, clock=Clock())
    for _ in range(2):
        breaker.record(False)
    breaker.record(True)  # a success in between resets the count
    for _ in range(2):
        breaker.record(False)
    assert breaker.state == "closed" and breaker.allow()
    breaker.record(False)
    assert breaker.state == "open" and not breaker.allow()


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
    breaker.record(False)
    assert breaker.reopens_in() == 5
    clock.now = 5
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one probe only
    breaker.record(True)
    assert breaker.state == "closed" and breaker.allow()


def test_a_failed_probe_reopens_with_a_longer_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=5, max_cooldown=8, clock=clock)
    breaker.record(False)
    clock.now = 5
    assert breaker.allow()
    breaker.record(False)
    assert breaker.state == "open" and breaker.reopens_in() == 8  # doubled, capped
    clock.now = 13
    assert breaker.allow()
    breaker.record(True)
    assert breaker.cooldown == 5 and breaker.opened == 2
