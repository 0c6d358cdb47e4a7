"""The daemon's /metrics, /healthz and /readyz over real HTTP."""

from __future__ import annotations

import time

import httpx

from syncer.observability.metrics import RECORDS
from syncer.observability.server import HealthServer, stale_heartbeats
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


def test_stale_heartbeat_makes_liveness_fail(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.heartbeat("deliver:nrs", "me", interval=1)
    assert stale_heartbeats(store) == []
    assert stale_heartbeats(store, now=time.time() + 120) == ["deliver:nrs"]
    server = HealthServer(store, "127.0.0.1:0", lambda: "follower").start()
    try:
        with store.transaction() as conn:
            conn.exec_driver_sql("UPDATE heartbeats SET at = at - 1000")
        live = httpx.get(f"http://127.0.0.1:{server.port}/healthz")
        assert live.status_code == 503 and live.json()["stale_jobs"] == ["deliver:nrs"]
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
