"""Delivery operations of the state store, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from syncer.state import delivery_ops as ops
from syncer.state import dlq_ops
from syncer.state.schema import deliveries, delivery_log, entities, id_map, memberships
from syncer.state.store import Store


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    s = Store(state_url)
    yield s
    s.close()


def add(store: Store, entity: str, pipeline: str = "p", state: str = "pending", **kw: Any) -> int:
    now = time.time()
    row = {
        "pipeline": pipeline,
        "target": "t",
        "entity_type": "customer",
        "entity_id": entity,
        "action": "upsert",
        "state": state,
        "attempts": 0,
        "due_at": now - 1,
        "created_at": now,
        "updated_at": now,
        "subject_id": entity,
        **kw,
    }
    with store.transaction() as conn:
        return int(conn.execute(insert(deliveries).values(**row)).inserted_primary_key[0])


def claim(store: Store, limit: int = 10, lease: float = 60, worker: str = "w") -> list[int]:
    with store.transaction() as conn:
        return [r.id for r in ops.claim(conn, "t", worker, limit, time.time(), lease)]


def test_claim_takes_due_rows_once_and_skips_a_customer_in_flight(store: Store) -> None:
    a, b = add(store, "c1"), add(store, "c2")
    add(store, "c3", due_at=time.time() + 3600)  # not due
    with store.transaction() as conn:
        rows = ops.claim(conn, "t", "w", 10, time.time(), 60)
    assert sorted(r.id for r in rows) == [a, b]
    assert claim(store) == []  # claimed rows are not claimable again
    later = add(store, "c1", pipeline="q")  # same customer, another pipeline: waits
    assert claim(store) == []
    with store.transaction() as conn:
        [row] = [r for r in rows if r.id == a]
        ops.record_outcomes(
            conn, "t", [ops.RowResult(row, "done", "created", "c1")], time.time(), "run"
        )
    assert claim(store) == [later]


def test_a_retried_row_is_claimed_before_a_newer_row_of_its_customer(store: Store) -> None:
    """Regression (chaos suite): claims went by due time, so a newer row of a customer (a
    delete, due since it was ingested) was claimed in an earlier batch than the customer's
    older upsert, whose retry came due later, and the upsert re-created the deleted contact.
    Due rows are claimed oldest first by id, and a row waits while an older row of its
    customer waits for its retry."""
    now = time.time()
    older = add(store, "c1", state="failed", attempts=1, due_at=now + 30)
    newer = add(store, "c1", action="delete", due_at=now - 10)
    assert claim(store) == []  # the older row waits for its retry: so does the newer
    with store.transaction() as conn:
        conn.execute(deliveries.update().values(due_at=now - 1).where(deliveries.c.id == older))
    # both due: one claim holds the customer and takes its rows in id order, the older first
    assert claim(store, limit=1) == [older, newer]
    assert claim(store) == []


def test_an_expired_claim_comes_back_marked_taken_over(store: Store) -> None:
    add(store, "c1")
    assert len(claim(store, lease=0.01)) == 1
    time.sleep(0.05)
    with store.transaction() as conn:
        [row] = ops.claim(conn, "t", "w2", 10, time.time(), 60)
    assert row.taken_over


def test_outcomes_id_map_memberships_and_log_in_one_transaction(store: Store) -> None:
    ids = [add(store, f"c{i}") for i in range(3)]
    with store.transaction() as conn:
        rows = ops.claim(conn, "t", "w", 10, time.time(), 60)
    results = [
        ops.RowResult(
            rows[0],
            "done",
            "created",
            "c0",
            target_id="7",
            target_key="e:a",
            last_hash="h",
            set_id_map=True,
            memberships=frozenset({"A", "B"}),
        ),
        ops.RowResult(
            rows[1],
            "failed",
            "retry",
            "c1",
            due_at=time.time() + 60,
            error="503",
            maybe_written=True,
        ),
        ops.RowResult(rows[2], "dead", "dead", "c2", error="422: bad phone"),
    ]
    with pytest.raises(RuntimeError), store.transaction() as conn:
        ops.record_outcomes(conn, "t", results, time.time(), "run")
        raise RuntimeError("crash before commit")
    with store.transaction() as conn:  # nothing of the failed transaction is visible
        assert conn.execute(select(func.count()).select_from(delivery_log)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(id_map)).scalar_one() == 0
        ops.record_outcomes(conn, "t", results, time.time(), "run")
    with store.transaction() as conn:
        states = dict(conn.execute(select(deliveries.c.id, deliveries.c.state)).all())
        assert [states[i] for i in ids] == ["done", "failed", "dead"]
        known, hashes, touched = ops.load_known(conn, "t", ["c0", "c1", "c2"])
        assert known["c0"].target_id == "7" and known["c0"].memberships == {
            "p": frozenset({"A", "B"})
        }
        assert hashes["c0"] == "h" and touched == {"c0", "c1"}  # c1: a write may have landed
        assert known["c1"].target_id is None
        attempts = dict(conn.execute(select(deliveries.c.id, deliveries.c.attempts)).all())
        assert attempts[ids[1]] == 1
        assert conn.execute(select(func.count()).select_from(delivery_log)).scalar_one() == 3
        assert dlq_ops.counts_by_state(conn) == {"p": {"done": 1, "failed": 1, "dead": 1}}


def test_forget_drops_id_map_and_every_membership(store: Store) -> None:
    add(store, "c1")
    with store.transaction() as conn:
        [row] = ops.claim(conn, "t", "w", 10, time.time(), 60)
        ops.record_outcomes(
            conn,
            "t",
            [
                ops.RowResult(
                    row,
                    "done",
                    "created",
                    "c1",
                    target_id="1",
                    set_id_map=True,
                    memberships=frozenset({"A"}),
                )
            ],
            time.time(),
            None,
        )
    add(store, "c1", action="delete")
    with store.transaction() as conn:
        [row] = ops.claim(conn, "t", "w", 10, time.time(), 60)
        ops.record_outcomes(
            conn, "t", [ops.RowResult(row, "done", "deleted", "c1", forget=True)], time.time(), None
        )
        assert conn.execute(select(func.count()).select_from(id_map)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(memberships)).scalar_one() == 0


def test_a_forget_after_an_upsert_in_one_batch_leaves_no_membership(store: Store) -> None:
    """Regression (chaos suite): a batch held a customer's upsert (groups A, B) and then its
    leave, which deleted the contact (forget). The forget dropped what was stored, but the
    upsert's memberships of the same batch were written after it, so the next pipeline to
    write the contact put it back in A and B."""
    add(store, "c1")
    add(store, "c1", action="leave")
    with store.transaction() as conn:
        upsert, leave = ops.claim(conn, "t", "w", 10, time.time(), 60)
        ops.record_outcomes(
            conn,
            "t",
            [
                ops.RowResult(
                    upsert,
                    "done",
                    "updated",
                    "c1",
                    target_id="1",
                    set_id_map=True,
                    memberships=frozenset({"A", "B"}),
                ),
                ops.RowResult(leave, "done", "left", "c1", memberships=frozenset(), forget=True),
            ],
            time.time(),
            None,
        )
        assert conn.execute(select(func.count()).select_from(id_map)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(memberships)).scalar_one() == 0


def test_dlq_list_and_retry_keep_one_open_row_per_customer(store: Store) -> None:
    old = add(store, "c1", state="dead", last_error="422 old")
    new = add(store, "c1", state="dead", last_error="422 new")
    superseded = add(store, "c2", state="dead", last_error="422")
    open_row = add(store, "c2")
    other = add(store, "c3", pipeline="q", state="dead", last_error="x")
    with store.transaction() as conn:
        listed = dlq_ops.dlq_list(conn, pipeline="p")
        assert [d.id for d in listed] == sorted([old, new, superseded], reverse=True)
        assert dlq_ops.dlq_retry(conn, time.time(), pipeline="p") == (1, 2)
        states = dict(conn.execute(select(deliveries.c.id, deliveries.c.state)).all())
    assert states[new] == "pending" and states[old] == "done"
    assert states[superseded] == "done" and states[open_row] == "pending"
    assert states[other] == "dead"
    with store.transaction() as conn:
        assert dlq_ops.dlq_retry(conn, time.time(), ids=[other]) == (1, 0)


def test_entities_load_in_one_query_per_kind(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(
            insert(entities),
            [
                {
                    "entity_type": "customer",
                    "entity_id": "c1",
                    "customer_id": None,
                    "payload": json.dumps({"id": "c1"}),
                    "version": 1,
                    "updated_at": "",
                    "deleted": False,
                },
                {
                    "entity_type": "event",
                    "entity_id": "e1",
                    "customer_id": "c1",
                    "payload": json.dumps({"id": "e1"}),
                    "version": 0,
                    "updated_at": "",
                    "deleted": False,
                },
            ],
        )
        found = ops.load_entities(conn, [("customer", "c1"), ("event", "e1"), ("event", "x")])
    assert found[("event", "e1")].customer_id == "c1" and ("event", "x") not in found


def test_dlq_retry_never_resurrects_a_customer_whose_delete_is_done(store: Store) -> None:
    """Issue 14, defect 3: `dlq retry` put an old dead upsert back to pending although a newer
    delete of the customer was done: the retry re-created a deleted customer."""
    dead = add(store, "c1", state="dead", last_error="422")
    delete_done = add(store, "c1", action="delete", state="done")
    with store.transaction() as conn:
        assert dlq_ops.dlq_retry(conn, time.time(), pipeline="p") == (0, 1)
        states = dict(conn.execute(select(deliveries.c.id, deliveries.c.state)).all())
    assert states == {dead: "done", delete_done: "done"}


def _statements_recording_shared_writes(store: Store, pairs: int) -> tuple[int, list[str]]:
    """Two customers per contact, both written in one batch (their calls ran at once): the
    newer of each pair is queued again. Returns the statements ``record_outcomes`` ran and
    the customers that got a new pending row."""
    from sqlalchemy import event

    with store.transaction() as conn:
        conn.execute(deliveries.delete())
        conn.execute(id_map.delete())
        conn.execute(entities.delete())
        conn.execute(
            insert(entities),
            [
                {
                    "entity_type": "customer",
                    "entity_id": f"c{i}-{side}",
                    "payload": "{}",
                    "updated_at": f"2026-01-0{1 + side}T00:00:00Z",
                    "pipelines": "p",
                }
                for i in range(pairs)
                for side in (0, 1)
            ],
        )
    for i in range(pairs):
        for side in (0, 1):
            add(store, f"c{i}-{side}")
    with store.transaction() as conn:
        rows = ops.claim(conn, "t", "w", 10 * pairs, time.time(), 60)
    results = [
        ops.RowResult(
            r,
            "done",
            "updated",
            r.entity_id,
            target_id=f"k{r.entity_id.split('-')[0]}",
            set_id_map=True,
        )
        for r in rows
    ]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = store.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        with store.transaction() as conn:
            ops.record_outcomes(conn, "t", results, time.time(), "run")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    with store.reader() as conn:
        again = conn.execute(
            select(deliveries.c.entity_id).where(deliveries.c.state == "pending")
        ).scalars()
        return len(statements), sorted(again)


def test_a_batch_of_shared_contacts_queues_each_newest_in_a_fixed_number_of_statements(
    store: Store,
) -> None:
    """Regression (np6-imports bench: 50,000 rows, 18,000 e-mails shared by two customers):
    the newer customer of each contact was queued again with four statements per customer, and
    matched to its writers by a scan of the whole batch per contact, inside the transaction
    that records the batch: it held SQLite's write lock for minutes ("could not renew claims:
    database is locked") and the bench's import never finished. The statements no longer grow
    with the customers queued."""
    few, queued_few = _statements_recording_shared_writes(store, 3)
    many, queued_many = _statements_recording_shared_writes(store, 40)
    assert queued_few == [f"c{i}-1" for i in range(3)]
    assert queued_many == sorted(f"c{i}-1" for i in range(40))
    assert many == few
