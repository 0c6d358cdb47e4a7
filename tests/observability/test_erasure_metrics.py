"""``syncer_erasures_pending`` and ``syncer_erasure_oldest_pending_seconds`` on /metrics follow
the erasure ledger: a forgotten customer is pending until every target acknowledged it, the age
is the oldest pending request's, and both fall to 0 once it is acknowledged."""

from __future__ import annotations

import re
import time

import httpx
from sqlalchemy import insert, update

from syncer.observability.server import HealthServer
from syncer.state import ingest_ops
from syncer.state.schema import deliveries
from syncer.state.store import Store


def scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    found = re.findall(r"^(syncer_erasures?_[a-z_]+) (\S+)$", text, re.MULTILINE)
    return {name: float(value) for name, value in found}


def test_pending_erasures_and_the_oldest_age_on_metrics(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    server = HealthServer(store, "127.0.0.1:0", lambda: "leader").start()
    try:
        assert scrape(server.port) == {
            "syncer_erasures_pending": 0.0,
            "syncer_erasure_oldest_pending_seconds": 0.0,
        }
        now = time.time()
        with store.transaction() as conn:
            for cid, asked in (("old", now - 7200), ("new", now - 60)):
                ingest_ops.suppress(conn, [cid], "deleted in Contacthub", asked)
                conn.execute(
                    insert(deliveries).values(
                        pipeline="p",
                        target="t",
                        entity_type="customer",
                        entity_id=cid,
                        subject_id=cid,
                        action="delete",
                        state="failed",
                        attempts=1,
                        due_at=now,
                        created_at=asked,
                        updated_at=now,
                    )
                )
        seen = scrape(server.port)
        assert seen["syncer_erasures_pending"] == 2.0
        assert 7200 <= seen["syncer_erasure_oldest_pending_seconds"] < 7200 + 3600
        with store.transaction() as conn:  # the old one's target acknowledged; dead is pending
            conn.execute(
                update(deliveries).where(deliveries.c.entity_id == "old").values(state="done")
            )
            conn.execute(
                update(deliveries).where(deliveries.c.entity_id == "new").values(state="dead")
            )
        seen = scrape(server.port)
        assert seen["syncer_erasures_pending"] == 1.0
        assert 60 <= seen["syncer_erasure_oldest_pending_seconds"] < 7200
        with store.transaction() as conn:
            conn.execute(update(deliveries).values(state="done"))
        assert scrape(server.port)["syncer_erasures_pending"] == 0.0
        assert scrape(server.port)["syncer_erasure_oldest_pending_seconds"] == 0.0
    finally:
        server.stop()
        store.close()
