"""The daemon's /metrics, /healthz and /readyz over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from syncer.observability.metrics import RECORDS
from syncer.observability.server import (
    STALE_FACTOR,
    STALE_SLACK,
    HealthServer,
    Liveness,
    stale_heartbeats,
)
from syncer.state.store import Store


def test_endpoints_report_state_health_and_metrics(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.set_offset("ws/node", 7)
    store.record_stream_position("ws/node", 10)
    store.heartbeat("ingest", "me", interval=1)
    RECORDS.labels("newsletter", "nrs", "created").inc(3)
    server = HealthServer(store, "127.0.0.1:0", lambda: "leader").start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        ready = httpx.get(base + "/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True, "lease": "leader"}
        assert httpx.get(base + "/healthz").json() == {"alive": True}
        text = httpx.get(base + "/metrics").text
        assert 'syncer_stream_offset{stream="ws/node"} 7.0' in text
        assert 'syncer_stream_lag_offsets{stream="ws/node"} 3.0' in text
        assert (
            'syncer_records_delivered_total{outcome="created",pipeline="newsletter",target="nrs"}'
            in text
        )
        assert httpx.get(base + "/nope").status_code == 404
    finally:
        server.stop()
        store.close()


def test_stale_heartbeat_rows_are_found(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.heartbeat("deliver:nrs", "me", interval=1)
    assert stale_heartbeats(store) == []
    assert stale_heartbeats(store, now=time.time() + 120) == ["deliver:nrs"]
    store.close()


def test_liveness_is_this_process_loops_not_the_database(sqlite_url: str) -> None:
    now = [1000.0]
    live = Liveness(clock=lambda: now[0])
    live.beat("ingest", 30.0)
    live.beat("deliver:nrs", 2.0)
    store = Store(sqlite_url)
    store.heartbeat("deliver:nrs", "me", interval=1)
    with store.transaction() as conn:  # a stale row of some process: not this one's liveness
        conn.exec_driver_sql("UPDATE heartbeats SET at = at - 100000")
    server = HealthServer(store, "127.0.0.1:0", lambda: "follower", liveness=live).start()
    try:
        url = f"http://127.0.0.1:{server.port}/healthz"
        assert httpx.get(url).json() == {"alive": True}
        now[0] += STALE_FACTOR * 2.0 + STALE_SLACK + 1  # deliver:nrs silent too long
        live.beat("ingest", 30.0)
        stuck = httpx.get(url)
        assert stuck.status_code == 503 and stuck.json() == {
            "alive": False,
            "stuck_jobs": ["deliver:nrs"],
        }
        live.beat("deliver:nrs", 2.0)
        assert httpx.get(url).status_code == 200
    finally:
        server.stop()
        store.close()


def test_readiness_names_the_source_problem(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    problem: list[str | None] = ["source unreachable: connection refused"]
    server = HealthServer(
        store, "127.0.0.1:0", lambda: "leader", source_problem=lambda: problem[0]
    ).start()
    try:
        url = f"http://127.0.0.1:{server.port}/readyz"
        ready = httpx.get(url)
        assert ready.status_code == 503
        assert ready.json() == {
            "ready": False,
            "reason": "source unreachable: connection refused",
            "lease": "leader",
        }
        problem[0] = None
        assert httpx.get(url).json() == {"ready": True, "lease": "leader"}
    finally:
        server.stop()
        store.close()


def test_readiness_fails_when_schema_is_behind(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    with store.transaction() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version")
    server = HealthServer(store, "127.0.0.1:0", lambda: "leader").start()
    try:
        ready = httpx.get(f"http://127.0.0.1:{server.port}/readyz")
        assert ready.status_code == 503 and "db upgrade" in ready.json()["reason"]
    finally:
        server.stop()
        store.close()


def test_a_failed_request_is_one_log_line_not_a_traceback(
    sqlite_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """``socketserver`` prints a traceback to stderr for a request whose handler raised (or
    whose client went away); ``syncer run`` writes JSON lines there (found by the console's
    browser test against a running daemon)."""
    store = Store(sqlite_url)
    server = HealthServer(store, "127.0.0.1:0", lambda: "leader").start()

    def broken() -> tuple[int, dict[str, object]]:
        raise RuntimeError("boom")

    server.liveness = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/healthz")
        time.sleep(0.2)  # the handler thread logs after the connection closed
    finally:
        server.stop()
        store.close()
    out = capfd.readouterr()
    assert "Traceback" not in out.err and "Exception occurred" not in out.err, out.err
    logged = out.out + out.err  # where the test's log configuration writes
    assert "http request failed" in logged and "RuntimeError: boom" in logged, logged
