"""``syncer run`` scrubs acknowledged erasures and applies the retention settings by itself:
the daemon's ``scrub`` and ``prune`` jobs (in-process daemon, a Contacthub simulator on
127.0.0.1 with an empty stream, SQLite state)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import config, served_contacthub, source, write_config

from syncer.engine.daemon import Daemon
from syncer.state import ingest_ops
from syncer.state.schema import deliveries, entities, erasures, inbox
from syncer.state.store import Store


def wait_for(check: Callable[[], bool], timeout: float) -> None:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met in {timeout} s")  # a hang guard
        time.sleep(0.05)


def test_daemon_scrubs_erasures_and_prunes_old_rows(tmp_path: Path, sqlite_url: str) -> None:
    store = Store(sqlite_url)
    now = time.time()
    doc = '{"id": "gone", "base": {"contacts": {"email": "gone@example.org"}}}'
    with store.transaction() as conn:
        ingest_ops.insert_inbox(
            conn,
            [
                ("s", 1, 0, "stream", "customer", "old", "UPDATE", "{}", now - 40 * 86400),
                ("s", 2, 0, "stream", "customer", "gone", "CREATE", doc, now),
                ("s", 3, 0, "stream", "customer", "kept", "UPDATE", "{}", now),
            ],
        )
        ingest_ops.upsert_newer_entities(
            conn, [("customer", "gone", None, doc, 1, "x", True, None)]
        )
        ingest_ops.suppress(conn, ["gone"], "deleted in Contacthub", now)
        conn.execute(
            insert(deliveries).values(
                pipeline="everyone",
                target="nrs",
                entity_type="customer",
                entity_id="gone",
                subject_id="gone",
                action="delete",
                state="done",
                attempts=1,
                due_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    with served_contacthub() as (_sim, served):
        path = write_config(tmp_path, served.url, sqlite_url)
        cfg = config(path)
        assert cfg.retention.inbox_days == 30  # the default
        daemon = Daemon(cfg, store, source(served), deliver_interval=60, scrub_interval=0.2)
        thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
        thread.start()
        try:

            def done() -> bool:
                with store.reader() as conn:
                    scrubbed = conn.execute(select(erasures.c.scrubbed_at)).scalar_one()
                    left = set(conn.execute(select(inbox.c.entity_id)).scalars())
                return scrubbed is not None and left == {"kept"}

            wait_for(done, 60)
        finally:
            daemon.request_stop()
            thread.join(30)
    assert not thread.is_alive() and daemon.exit_code == 0
    with store.reader() as conn:
        payload = conn.execute(
            select(entities.c.payload).where(entities.c.entity_id == "gone")
        ).scalar_one()
    store.close()
    assert "gone@example.org" not in payload
