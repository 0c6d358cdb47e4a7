"""The claim protocol under concurrency: deterministic interleavings of two connections.

Each test pauses one transaction at a chosen point (it stays open, holding what it holds)
while a second connection runs, and on PostgreSQL waits until that second connection is
really blocked on a lock (``pg_stat_activity``) before letting the first go on: no sleeps
decide the order. Each test failed on the code before the claims table (commit 647e33d).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from syncer.state import delivery_ops as ops
from syncer.state import ingest_ops
from syncer.state.schema import deliveries
from syncer.state.store import Store


def add(store: Store, entity: str, **kw: Any) -> int:
    now = time.time()
    row = {
        "pipeline": "p",
        "target": "t",
        "entity_type": "customer",
        "entity_id": entity,
        "subject_id": entity,
        "action": "upsert",
        "state": "pending",
        "attempts": 0,
        "due_at": now - 1,
        "created_at": now,
        "updated_at": now,
        **kw,
    }
    with store.transaction() as conn:
        return int(conn.execute(insert(deliveries).values(**row)).inserted_primary_key[0])


def claim_ids(store: Store, worker: str, limit: int = 10, lease: float = 60) -> list[int]:
    with store.transaction() as conn:
        return [r.id for r in ops.claim(conn, "t", worker, limit, ops.db_now(conn), lease)]


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # surfaced by the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def wait_until_blocked(store: Store, thread: threading.Thread) -> None:
    """Return once another backend waits on a lock (PostgreSQL), or the thread ended."""
    deadline = time.monotonic() + 30  # a hang, not a speed limit: fails loudly
    while time.monotonic() < deadline and thread.is_alive():
        with store.reader() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.01)


@pytest.fixture
def pg_store(pg_url: str) -> Store:
    return Store(pg_url)


@pytest.fixture
def store(state_url: str) -> Store:
    return Store(state_url)


def test_an_event_row_and_a_customer_row_of_one_customer_never_fly_at_once(
    store: Store,
) -> None:
    """Defect 3: `busy` compared entity ids, so a customer row and an event row of the same
    customer were claimed by two batches at once."""
    customer = add(store, "c1")
    event = add(store, "e1", entity_type="event", pipeline="orders", subject_id="c1")
    first = claim_ids(store, "w", limit=1)
    assert first == [customer, event]  # the claim holds the customer: all its due rows
    assert claim_ids(store, "w") == []


def test_a_second_replica_waits_for_the_first_ones_uncommitted_claim(pg_store: Store) -> None:
    """Defect 2: FOR UPDATE SKIP LOCKED skipped the other replica's uncommitted claim and the
    snapshot `busy` check could not see it, so replica B claimed the same customer's row of
    another pipeline while A held the first."""
    r1 = add(pg_store, "c1")
    r2 = add(pg_store, "c1", pipeline="q")
    with pg_store.transaction() as conn_a:
        claimed_a = ops.claim(conn_a, "t", "replica-a", 1, ops.db_now(conn_a), 60)
        thread, box = in_thread(lambda: claim_ids(pg_store, "replica-b"))
        wait_until_blocked(pg_store, thread)
        assert thread.is_alive(), "replica B must wait for A's claim, not go past it"
    thread.join(30)
    assert [r.id for r in claimed_a] == [r1, r2]
    assert "error" not in box and box["value"] == []


def test_ingest_rewriting_an_open_row_is_never_lost_to_a_concurrent_claim(
    pg_store: Store,
) -> None:
    """Defect 1: ingest read R1 as pending without a lock, a worker claimed R1, and ingest's
    rewrite of R1 into a delete matched nothing: the worker sent the old state and the delete
    never got a delivery. Ingest now locks what it rewrites; the claim takes it as it is."""
    r1 = add(pg_store, "c1")
    with pg_store.transaction() as ingest:
        found = ingest_ops.open_customer_deliveries(ingest, ["c1"])
        assert found == {("p", "c1"): r1}
        thread, box = in_thread(lambda: _claim_rows(pg_store))
        wait_until_blocked(pg_store, thread)
        ingest_ops.reopen_deliveries(ingest, [(r1, "delete")], time.time() - 1)
    thread.join(30)
    assert "error" not in box
    assert [(r.id, r.action) for r in box["value"]] == [(r1, "delete")]


def _claim_rows(store: Store) -> list[ops.ClaimedRow]:
    with store.transaction() as conn:
        return ops.claim(conn, "t", "worker", 10, ops.db_now(conn), 60)


def test_a_worker_whose_claim_expired_cannot_record_over_the_new_owner(store: Store) -> None:
    """Defect 4: outcomes were recorded without checking the claim, so a call that outlived
    its lease overwrote the outcome of the worker that had taken the customer over since."""
    row_id = add(store, "c1")
    with store.transaction() as conn:
        [old] = ops.claim(conn, "t", "slow", 10, ops.db_now(conn), 0.01)
    time.sleep(0.05)  # the slow worker's lease runs out (no renewal: it is "paused")
    with store.transaction() as conn:
        [new] = ops.claim(conn, "t", "fast", 10, ops.db_now(conn), 60)
        assert new.id == row_id and new.taken_over and new.token != old.token
        assert ops.renew_claims(conn, "t", [old.token], ops.db_now(conn), 60) == set()
    with store.transaction() as conn:  # the slow worker's late answer is fenced off...
        lost = ops.record_outcomes(
            conn, "t", [ops.RowResult(old, "dead", "dead", "c1", error="late")], time.time(), None
        )
        assert [r.row.id for r in lost] == [row_id]
        state = conn.execute(select(deliveries.c.state).where(deliveries.c.id == row_id))
        assert state.scalar_one() == "in_flight"
        # ...and, as its call may have landed after the new owner's, the customer is re-sent
        pending = conn.execute(
            select(deliveries.c.id).where(deliveries.c.state == "pending")
        ).scalars()
        assert len(list(pending)) == 1
    with store.transaction() as conn:
        assert (
            ops.record_outcomes(
                conn, "t", [ops.RowResult(new, "done", "updated", "c1")], time.time(), None
            )
            == []
        )
        state = conn.execute(select(deliveries.c.state).where(deliveries.c.id == row_id))
        assert state.scalar_one() == "done"


def test_renewal_keeps_a_long_call_s_claim(store: Store) -> None:
    """Defect 4: the lease was never renewed, so any call longer than it was taken over."""
    add(store, "c1")
    with store.transaction() as conn:
        [row] = ops.claim(conn, "t", "w", 10, ops.db_now(conn), 0.2)
    for _ in range(3):  # renewed past several leases' worth of time
        time.sleep(0.1)
        with store.transaction() as conn:
            assert ops.renew_claims(conn, "t", [row.token], ops.db_now(conn), 0.2) == {row.token}
    assert claim_ids(store, "other") == []


def test_db_now_is_the_database_clock(store: Store) -> None:
    with store.reader() as conn:
        assert abs(ops.db_now(conn) - time.time()) < 60  # same host here, same clock


def test_concurrent_migrations_take_turns(pg_url: str) -> None:
    """Defect 10: every pod's init container runs `db upgrade` at once, with no lock: two
    processes creating the same tables, one of them failing half-way."""
    from syncer.state import db

    engines = [db.create_state_engine(pg_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))

    def migrate(engine: Any) -> str | None:
        barrier.wait()
        db.upgrade(engine)
        return db.current_revision(engine)

    runs = [in_thread(lambda e=e: migrate(e)) for e in engines]
    for thread, _ in runs:
        thread.join(60)
    assert [box.get("error") for _, box in runs] == [None] * len(engines)
    assert {box["value"] for _, box in runs} == {db.head_revision()}
    for engine in engines:
        engine.dispose()


def test_kv_lock_excludes_other_processes_without_an_open_transaction(pg_url: str) -> None:
    """Defect 9: kv_lock kept a transaction open (a row lock) for a whole NP6 import: idle in
    transaction for up to 30 minutes. It is an advisory lock now: exclusive across stores
    (processes), and no transaction stays open while it is held."""
    first, second = Store(pg_url), Store(pg_url)
    with first.kv_lock("np6", "import"):
        with first.reader() as conn:
            idle = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction'"
                )
            ).scalar_one()
        assert idle == 0
        thread, box = in_thread(lambda: _locked(second))
        wait_until_blocked(first, thread)
        assert thread.is_alive() and "value" not in box  # waits for the first holder
    thread.join(30)
    assert box.get("value") == "got it"


def _locked(store: Store) -> str:
    with store.kv_lock("np6", "import"):
        return "got it"


def test_one_statement_takes_the_free_and_expired_claims_and_leaves_the_live_ones(
    store: Store,
) -> None:
    """The claims of a batch go in multi-row statements (a 50,000-row NP6 claim): each
    customer is still won only when free or expired."""
    with store.transaction() as conn:
        now = ops.db_now(conn)
        assert ops._take_claims(conn, "t", ["c1", "c2"], "a", "ta", now + 60, now) == {"c1", "c2"}
        assert ops._take_claims(conn, "t", ["c3"], "a", "tb", now - 1, now - 2) == {"c3"}
    with store.transaction() as conn:  # c1, c2 live; c3 expired
        now = ops.db_now(conn)
        won = ops._take_claims(conn, "t", ["c1", "c2", "c3", "c4"], "b", "tc", now + 60, now)
    assert won == {"c3", "c4"}
