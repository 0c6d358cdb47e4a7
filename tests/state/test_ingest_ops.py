"""Ingest's database operations, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from syncer.errors import StateError
from syncer.state import ingest_ops as ops
from syncer.state.store import Store

S = "ws/node"


def entity(eid: str, version: int, updated: str, payload: str = "{}") -> tuple[object, ...]:
    return ("customer", eid, None, payload, version, updated, False, None)


def test_offset_compare_and_set(state_url: str) -> None:
    store = Store(state_url)
    with store.transaction() as conn:
        store.ensure_checkpoint(conn, S)
        assert ops.advance_offset(conn, S, 0, 10)
        assert not ops.advance_offset(conn, S, 0, 20)  # not at 0 any more
        assert ops.read_offset(conn, S) == 10
        with pytest.raises(StateError, match="refusing"):
            ops.advance_offset(conn, S, 10, 10)
    store.close()


def test_a_stored_newer_entity_is_never_replaced(state_url: str) -> None:
    store = Store(state_url)
    with store.transaction() as conn:
        ops.upsert_newer_entities(conn, [entity("a", 2, "2024-01-02", '{"v":2}')])
        ops.upsert_newer_entities(conn, [entity("a", 1, "2024-01-09", '{"v":1}')])  # older
        ops.upsert_newer_entities(conn, [entity("a", 2, "2024-01-01", '{"v":0}')])  # older
        assert ops.entity_versions(conn, "customer", ["a", "b"]) == {"a": (2, "2024-01-02")}
        ops.upsert_newer_entities(conn, [entity("a", 3, "2024-01-01", '{"v":3}')])
        assert ops.entity_payloads(conn, "customer", ["a"]) == {"a": '{"v":3}'}
        ops.mark_deleted(conn, "customer", ["a"])
        assert ops.entity_payloads(conn, "customer", ["a"]) == {}
    store.close()


def test_batch_lookups_take_thousands_of_ids(state_url: str) -> None:
    store = Store(state_url)
    ids = [f"id-{i}" for i in range(5000)]
    with store.transaction() as conn:
        ops.upsert_newer_entities(conn, [entity(i, 0, "") for i in ids[::2]])
        ops.suppress(conn, ids[:3], "deleted", 1.0)
        ops.suppress(conn, ids[:3], "deleted", 2.0)  # idempotent
        assert len(ops.entity_versions(conn, "customer", ids)) == 2500
        assert ops.suppressed(conn, ids) == set(ids[:3])
        ops.set_pipelines(conn, [("p q", ids[0]), ("q", ids[2])])
        states = ops.customer_states(conn, ids)
        assert len(states) == 2500
        assert states[ids[0]] == ((0, ""), frozenset({"p", "q"}))
        assert states[ids[2]][1] == frozenset({"q"})
        assert states[ids[4]][1] == frozenset()
    store.close()


def test_open_deliveries_are_found_rewritten_and_cancelled(state_url: str) -> None:
    store = Store(state_url)
    row = ("p", "t", "customer", "c1", "upsert", "pending", 0, 1.0, 1.0, 1.0, "c1")
    with store.transaction() as conn:
        ops.insert_deliveries(conn, [row, (*row[:5], "in_flight", *row[6:])])
        found = ops.open_customer_deliveries(conn, ["c1"])
        assert list(found) == [("p", "c1")]
        ops.reopen_deliveries(conn, [(found[("p", "c1")], "leave")], 5.0)
        rows = conn.execute(text("SELECT action, state, due_at FROM deliveries ORDER BY id"))
        assert [tuple(r) for r in rows] == [("leave", "pending", 5.0), ("upsert", "in_flight", 1.0)]
        ops.cancel_deliveries(conn, [found[("p", "c1")]])
        assert ops.open_customer_deliveries(conn, ["c1"]) == {}
        assert ops.deliveries_by_state(conn) == {"p": {"in_flight": 1}}
    store.close()


def test_backfill_slices_progress(state_url: str) -> None:
    store = Store(state_url)
    with store.transaction() as conn:
        store.ensure_checkpoint(conn, S)
        ops.put_slices(conn, S, "customer", [("a", "z")])
        ops.put_slices(conn, S, "customer", [("a", "m"), ("m", "z")])  # split
        assert ops.slices_todo(conn, S, "customer") == [("a", "m"), ("m", "z")]
        ops.update_slice(conn, S, "customer", "a", new_lo="f", new_hi="m", finished=False, fed=5)
        ops.update_slice(conn, S, "customer", "m", new_lo="z", new_hi="z", finished=True, fed=3)
        assert ops.slices_todo(conn, S, "customer") == [("f", "m")]
        assert ops.slice_states(conn, S, "customer") == (1, 1)
        ops.set_backfill(conn, S, "running", 42)
    cp = store.checkpoint(S)
    assert cp is not None and (cp.backfill_state, cp.backfill_offset) == ("running", 42)
    store.close()


def test_targets_holding_a_customer(state_url: str) -> None:
    """What a delete is decided from (issue 14): id map rows, memberships (with the pipeline
    holding them), rows in flight; only the targets asked about."""
    store = Store(state_url)
    with store.transaction() as conn:
        conn.execute(
            text(
                "INSERT INTO id_map (target, entity_id, target_id, updated_at) VALUES "
                "('sms', 'left', '+33612345678', 0), ('other', 'left', 'x', 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO memberships (target, entity_id, pipeline, name) VALUES "
                "('nrs', 'in', 'a', 'G'), ('nrs', 'in', 'b', 'H')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (pipeline, target, entity_type, entity_id, action, state, "
                "attempts, due_at, created_at, updated_at, subject_id) VALUES "
                "('o', 'np6', 'event', 'e1', 'upsert', 'in_flight', 0, 0, 0, 0, 'flying'), "
                "('o', 'np6', 'event', 'e2', 'upsert', 'done', 0, 0, 0, 0, 'landed')"
            )
        )
        held = ops.targets_holding(
            conn, {"sms", "nrs", "np6"}, ["left", "in", "flying", "landed", "never"]
        )
    assert held == {
        "left": {"sms": set()},
        "in": {"nrs": {"a", "b"}},
        "flying": {"np6": set()},
    }
    store.close()
