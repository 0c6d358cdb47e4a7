"""Revision 0005: ``id_map.origin`` (who created the record in the target), and how outcomes
write it: learnt provenance is written, an outcome that learnt none keeps the stored one."""

from __future__ import annotations

from alembic import command

from syncer.state import db
from syncer.state import delivery_ops as ops
from syncer.state.delivery_ops import ClaimedRow, RowResult
from syncer.state.store import Store


def test_upgrade_to_0005_marks_what_the_log_shows_syncer_created(state_url: str) -> None:
    engine = db.create_state_engine(state_url)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.exec_driver_sql(
            "INSERT INTO id_map (target, entity_id, target_id, updated_at) VALUES "
            "('t', 'made', '1', 0), ('t', 'found', '2', 0), ('u', 'made', '3', 0)"
        )
        conn.exec_driver_sql(
            "INSERT INTO delivery_log (at, pipeline, target, entity_id, outcome) VALUES "
            "(0, 'p', 't', 'made', 'created'), (0, 'p', 't', 'found', 'updated'), "
            "(0, 'p', 't', 'found', 'left')"
        )
    db.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT target, entity_id, origin FROM id_map ORDER BY target, entity_id"
        ).all()
    # no log line of a create: unknown (NULL), which targets treat as not created by syncer
    assert [tuple(r) for r in rows] == [
        ("t", "found", None),
        ("t", "made", "syncer"),
        ("u", "made", None),
    ]
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    engine.dispose()


def test_outcomes_write_learnt_provenance_and_keep_it_otherwise(state_url: str) -> None:
    store = Store(state_url)

    def record(row_id: int, origin: str | None) -> None:
        row = ClaimedRow(row_id, "p", "t", "customer", "c1", "upsert", 0, False, None, "tok", "c1")
        result = RowResult(
            row, "done", "updated", "c1", target_id="9", set_id_map=True, origin=origin
        )
        with store.transaction() as conn:
            conn.exec_driver_sql(
                "INSERT INTO claims (target, subject_id, owner, token, expires_at) "
                "VALUES ('t', 'c1', 'w', 'tok', 1e12)"
            )
            ops.record_outcomes(conn, "t", [result], 1.0, None)

    def origin() -> str | None:
        with store.transaction() as conn:
            known, _, _ = ops.load_known(conn, "t", ["c1"])
        return known["c1"].origin

    record(1, "found")
    assert origin() == "found"
    record(2, None)  # a later update learnt nothing: the provenance stays
    assert origin() == "found"
    record(3, "syncer")
    assert origin() == "syncer"
    store.close()
