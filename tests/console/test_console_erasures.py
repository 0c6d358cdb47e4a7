"""The Erasures page's data: the erasure ledger table when the database has it (per target the
acknowledgement, or the delete delivery's state until then), suppression rows and their
deliveries on a database from before the ledger."""

from __future__ import annotations

import time

from sqlalchemy import insert

from syncer.console.erasures import SuppressionLedger, TableLedger, ledger_for
from syncer.state import db, erasure_ops, ingest_ops
from syncer.state.schema import deliveries
from syncer.state.store import Store


def delete_row(cid: str, target: str, state: str, at: float) -> dict[str, object]:
    return {
        "pipeline": f"p-{target}",
        "target": target,
        "entity_type": "customer",
        "entity_id": cid,
        "subject_id": cid,
        "action": "delete",
        "state": state,
        "attempts": 1,
        "due_at": at,
        "created_at": at,
        "updated_at": at,
        "last_error": "503 Service Unavailable" if state == "failed" else None,
    }


def test_the_page_reads_the_ledger_with_each_targets_acknowledgement(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    now = time.time()
    with store.transaction() as conn:
        ingest_ops.suppress(conn, ["a"], "deleted in Contacthub", now - 10)
        ingest_ops.suppress(conn, ["b"], "deleted in Contacthub", now)
        conn.execute(insert(deliveries), [delete_row("a", "nrs", "done", now - 5)])
        conn.execute(insert(deliveries), [delete_row("b", "octo", "failed", now)])
        erasure_ops.acknowledge(conn, "nrs", [("a", "p-nrs", 1, "deleted")], now - 4)
    with store.reader() as conn:
        ledger = ledger_for(conn)
        assert isinstance(ledger, TableLedger)
        assert ledger.pending(conn) == 1
        first = ledger.page(conn, None, 1)
        rest = ledger.page(conn, first[-1].requested_at, 10)
    store.close()
    assert [e.entity_id for e in first] == ["b"] and [e.entity_id for e in rest] == ["a"]
    [b_target], [a_target] = first[0].targets, rest[0].targets
    assert (b_target.target, b_target.state, b_target.last_error) == (
        "octo",
        "failed",
        "503 Service Unavailable",
    )
    assert (a_target.target, a_target.state, a_target.updated_at) == ("nrs", "done", now - 4)
    assert (first[0].state, rest[0].state) == ("open", "done")


def test_a_database_from_before_the_ledger_reads_suppression(sqlite_url: str) -> None:
    from alembic import command

    engine = db.create_state_engine(sqlite_url)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.exec_driver_sql(
            "INSERT INTO suppression (entity_id, reason, suppressed_at) "
            "VALUES ('a', 'deleted in Contacthub', 1)"
        )
    with engine.connect() as conn:
        ledger = ledger_for(conn)
        assert isinstance(ledger, SuppressionLedger)
        assert [e.entity_id for e in ledger.page(conn, None, 10)] == ["a"]
    engine.dispose()
