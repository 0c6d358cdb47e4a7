"""The daemon wakes a target's delivery job when an ingest run committed deliveries, so a
change does not wait for the next delivery tick; one run per target at a time, wake-ups never
lost, none honoured during a database backoff, and a stop still ends the daemon cleanly.

The daemon runs in-process (``Daemon.run(install_signals=False)`` in a thread) with a delivery
tick of 60 s: anything delivered within seconds was delivered by a wake-up."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from deliver_helpers import admin
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import api, config, customer_body, served_contacthub, source, write_config

from syncer.engine.daemon import Daemon
from syncer.state.store import Store

CH = "/hub/v1/workspaces/7e1a5ad4-2e1c-4f5e-9a51-5a4d1b0c0001"
TICK = 3600.0  # the delivery tick: within a test only a wake-up can deliver
PIPELINES = """
- name: everyone
  target: nrs
  entity: customer
  fields: {email: base.contacts.email, name: base.firstName}
  groups: [Wake]
"""


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met in {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


class Calls:
    """Wraps ``run_target_once``: when each call ran, and how many ran at once per target."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.most_at_once = 0
        self.spans: list[tuple[float, float]] = []

    def __call__(self, name: str, **kw: Any) -> Any:
        with self.lock:
            self.active[name] = self.active.get(name, 0) + 1
            self.most_at_once = max(self.most_at_once, self.active[name])
        started = time.monotonic()
        try:
            return self.fn(name, **kw)
        finally:
            with self.lock:
                self.active[name] -= 1
                self.spans.append((started, time.monotonic()))

    def started_after(self, moment: float) -> bool:
        with self.lock:
            return any(start > moment for start, _ in self.spans)


@contextmanager
def running(daemon: Daemon) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
    thread.start()
    try:
        yield thread
    finally:
        daemon.request_stop()
        thread.join(30)


def test_a_change_is_delivered_by_the_poll_that_read_it_not_by_the_next_tick(
    tmp_path: Path, nrs_a: str
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with served_contacthub() as (_sim, served):
        path = write_config(
            tmp_path, served.url, url, pipelines=PIPELINES, nrs_url=nrs_a + "/api/rest"
        )
        store = Store(url)
        daemon = Daemon(config(path), store, source(served), deliver_interval=TICK)
        calls = Calls(daemon.deliverer.run_target_once)
        daemon.deliverer.run_target_once = calls  # type: ignore[method-assign]
        hub = api(served)

        def names() -> dict[str, Any]:
            return {c["email"]: c.get("name") for c in admin(nrs_a, "state")["contacts"]}

        try:
            with running(daemon) as thread:
                wait_for(lambda: bool(calls.spans), 90)  # the start-up tick found nothing
                ids = []
                for i in range(5):
                    resp = hub.post(f"{CH}/customers", json=customer_body(f"w{i}"))
                    assert resp.status_code == 201, resp.text
                    ids.append(resp.json()["id"])
                wait_for(lambda: len(names()) == 5, 90)
                hub.patch(f"{CH}/customers/{ids[2]}", json={"base": {"firstName": "Changed"}})
                # a poll and a wake-up: the tick (an hour) would not come before the guard
                wait_for(lambda: names().get("w2@example.com") == "Changed", 90)
            assert not thread.is_alive()
            assert daemon.exit_code == 0 and not daemon.dangling
            assert calls.most_at_once == 1
            assert daemon.counts["delivered"]["nrs"] == 6  # 5 creates, 1 update
            with store.engine.connect() as conn:
                status = conn.execute(text("SELECT status FROM runs WHERE kind = 'daemon'"))
                assert status.scalar_one() == "ok"
                lease = conn.execute(text("SELECT lease_owner FROM checkpoints")).scalar()
            assert lease is None
        finally:
            hub.close()
            store.close()


@dataclass
class Stats:
    claimed: int = 0
    done: int = 0
    error: str | None = None


class FakeDeliverer:
    """Stands for the deliverer of one target ``nrs``: ``due`` rows, each call takes them
    all and holds them for ``hold`` seconds; ``fail`` raises that error from the next call."""

    def __init__(self, hold: float = 0.1) -> None:
        self.target_names = ["nrs"]
        self.hold = hold
        self.due = 0
        self.fail: Exception | None = None
        self.failed_at = 0.0
        self.job_at: float | None = None  # a job in progress, due then (the worker's job_due)
        self.lock = threading.Lock()
        self.calls = Calls(self._run)

    def add(self, n: int = 1) -> None:
        with self.lock:
            self.due += n

    def run_target_once(self, name: str, **kw: Any) -> Stats:
        return self.calls(name, **kw)  # type: ignore[no-any-return]

    def _run(self, name: str, **_: Any) -> Stats:
        if self.fail is not None:
            exc, self.fail = self.fail, None
            self.failed_at = time.monotonic()
            raise exc
        with self.lock:
            taken, self.due = self.due, 0
        if taken:
            time.sleep(self.hold)
        return Stats(claimed=taken, done=taken)

    def job_due(self, name: str) -> float | None:
        return self.job_at

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def fake_daemon(tmp_path: Path, deliverer: FakeDeliverer) -> Iterator[Daemon]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with served_contacthub() as (_sim, served):  # an empty stream: ingest wakes nobody
        path = write_config(tmp_path, served.url, url, pipelines=PIPELINES)
        store = Store(url)
        try:
            daemon = Daemon(
                config(path),
                store,
                source(served),
                deliverer=deliverer,  # type: ignore[arg-type]
                deliver_interval=TICK,
            )
            with running(daemon) as thread:
                wait_for(lambda: bool(deliverer.calls.spans), 90)  # the start-up tick
                yield daemon
            assert not thread.is_alive() and daemon.exit_code == 0
        finally:
            store.close()


def test_wake_ups_are_never_lost_and_never_run_a_target_twice_at_once(tmp_path: Path) -> None:
    deliverer = FakeDeliverer(hold=0.1)
    with fake_daemon(tmp_path, deliverer) as daemon:
        # as ingest does: rows committed, then the wake-up; at every phase of a running call
        for i in range(40):
            deliverer.add()
            woken = time.monotonic()
            daemon.wake_delivery("nrs")
            wait_for(partial(deliverer.calls.started_after, woken), 2)
            time.sleep((i % 8) * 0.02)
        wait_for(lambda: deliverer.due == 0, 2)

        # wake-ups from several threads at once, as from ingest and a kicked run's end
        def commit_and_wake() -> None:
            deliverer.add()
            daemon.wake_delivery("nrs")

        threads = [threading.Thread(target=commit_and_wake) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_for(lambda: deliverer.due == 0, 2)
    assert deliverer.calls.most_at_once == 1
    assert daemon.counts["delivered"]["nrs"] == 48


def test_a_wake_up_during_a_database_backoff_does_not_run_the_job(tmp_path: Path) -> None:
    deliverer = FakeDeliverer()
    with fake_daemon(tmp_path, deliverer) as daemon:
        deliverer.fail = OperationalError(
            "claim", {}, sqlite3.OperationalError("database is locked")
        )
        daemon.wake_delivery("nrs")
        wait_for(lambda: deliverer.fail is None, 2)  # raised: the job backs off 0.5-1 s
        window = deliverer.failed_at + 0.45
        wakes = 0
        while time.monotonic() < window - 0.05:
            deliverer.add()
            daemon.wake_delivery("nrs")
            wakes += 1
            time.sleep(0.05)
        time.sleep(max(0.0, window - time.monotonic()))
        assert wakes > 0
        started = [s for s, _ in deliverer.calls.spans if deliverer.failed_at < s < window]
        assert started == []  # the backoff held against every wake-up
        # after the backoff a wake-up runs it again (the tick is 60 s away)
        time.sleep(max(0.0, deliverer.failed_at + 1.05 - time.monotonic()))
        daemon.wake_delivery("nrs")
        wait_for(lambda: deliverer.due == 0, 2)
    assert daemon.counts["delivered"]["nrs"] == wakes


class JobDeliverer(FakeDeliverer):
    """A target with a job in progress due at ``job_at``: a run from then on resumes it (and
    the job is no longer due, as the worker's ``job_due`` is reset when it claims)."""

    def __init__(self) -> None:
        super().__init__()
        self.resumed = threading.Event()

    def _run(self, name: str, **kw: Any) -> Stats:
        if self.job_at is not None and time.time() >= self.job_at:
            self.job_at = None
            self.resumed.set()
        return super()._run(name, **kw)


def test_a_job_in_progress_is_resumed_when_due_not_at_the_next_tick(tmp_path: Path) -> None:
    """An NP6 import's next poll is due in a fraction of a second: the daemon wakes the
    target's delivery then, not at the next tick (an hour away here)."""
    deliverer = JobDeliverer()
    with fake_daemon(tmp_path, deliverer) as daemon:
        deliverer.job_at = time.time() + 0.3
        daemon.wake_delivery("nrs")  # the run that started the job: its poll is due later
        assert deliverer.resumed.wait(90), "the job waited for the next tick"
