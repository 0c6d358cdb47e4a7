"""Retention (``syncer db prune``, the daemon's prune job), on SQLite and PostgreSQL: old done
deliveries, inbox rows and log lines go; open and dead rows, and a done row a dead one needs,
stay; 0 days keeps everything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert, select

from syncer.state import ingest_ops, retention_ops
from syncer.state.schema import deliveries, delivery_log, inbox
from syncer.state.store import Store

DAY = 86400.0
NOW = 1_800_000_000.0


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    s = Store(state_url)
    yield s
    s.close()


def row(store: Store, subject: str, state: str, age_days: float, **kw: Any) -> int:
    at = NOW - age_days * DAY
    values = {
        "pipeline": "p",
        "target": "t",
        "entity_type": "customer",
        "entity_id": subject,
        "subject_id": subject,
        "action": "upsert",
        "state": state,
        "attempts": 1,
        "due_at": at,
        "created_at": at,
        "updated_at": at,
        **kw,
    }
    with store.transaction() as conn:
        return int(conn.execute(insert(deliveries).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def ids(store: Store, table: Any) -> list[int]:
    with store.reader() as conn:
        return sorted(conn.execute(select(table.c.id)).scalars())


def prune(store: Store, days: float = 30, chunk: int = 5000) -> retention_ops.PruneResult:
    return retention_ops.prune(
        store,
        done_deliveries_days=days,
        inbox_days=days,
        delivery_log_days=days,
        now=NOW,
        chunk=chunk,
    )


def test_old_done_deliveries_go_open_dead_and_recent_ones_stay(store: Store) -> None:
    old_done = [row(store, f"c{i}", "done", 40) for i in range(5)]
    old_done.append(row(store, "e1", "done", 31, target="u"))
    keep = [
        row(store, "c10", "done", 10),  # recent
        row(store, "c11", "pending", 90),  # open, whatever its age
        row(store, "c12", "failed", 90),
        row(store, "c13", "in_flight", 90),
        row(store, "c14", "dead", 90),
    ]
    dead = row(store, "c15", "dead", 90)  # a dead row ...
    keep += [dead, row(store, "c15", "done", 60)]  # ... keeps the newer done row that closes it
    result = prune(store, chunk=2)  # several chunks, several targets
    assert result.done_deliveries == len(old_done)
    assert ids(store, deliveries) == sorted(keep)


def test_inbox_and_log_rows_older_than_their_days_go(store: Store) -> None:
    with store.transaction() as conn:
        ingest_ops.insert_inbox(
            conn,
            [
                ("s", i, 0, "stream", "customer", f"c{i}", "UPDATE", "{}", NOW - age * DAY)
                for i, age in enumerate([45, 40, 31, 29, 1])
            ],
        )
        conn.execute(
            insert(delivery_log),
            [
                {"at": NOW - age * DAY, "pipeline": "p", "target": "t", "entity_id": "c"}
                | {"outcome": "created"}
                for age in (35, 31, 2)
            ],
        )
    result = prune(store, chunk=2)
    assert (result.inbox, result.delivery_log) == (3, 2)
    with store.reader() as conn:
        left = sorted(conn.execute(select(inbox.c.entity_id)).scalars())
        log_ages = conn.execute(select(delivery_log.c.at)).scalars().all()
    assert left == ["c3", "c4"]
    assert [round((NOW - at) / DAY) for at in log_ages] == [2]


def test_zero_days_keeps_everything(store: Store) -> None:
    done = row(store, "c1", "done", 400)
    with store.transaction() as conn:
        ingest_ops.insert_inbox(
            conn, [("s", 1, 0, "stream", "customer", "c1", "UPDATE", "{}", NOW - 400 * DAY)]
        )
    result = prune(store, days=0)
    assert result.as_dict() == {
        "scrubbed": 0,
        "done_deliveries": 0,
        "inbox": 0,
        "delivery_log": 0,
    }
    assert ids(store, deliveries) == [done] and len(ids(store, inbox)) == 1


def test_prune_scrubs_acknowledged_erasures(store: Store) -> None:
    with store.transaction() as conn:
        ingest_ops.insert_inbox(
            conn, [("s", 1, 0, "stream", "customer", "c1", "CREATE", '{"e":"a@b.c"}', NOW)]
        )
        ingest_ops.suppress(conn, ["c1"], "deleted in Contacthub", NOW)
    row(store, "c1", "done", 0, action="delete")
    assert prune(store).scrubbed == 1
    assert ids(store, inbox) == []


def test_a_bounded_scrub_leaves_the_rest_for_the_next_run(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncer.state import erasure_ops
    from syncer.state.schema import erasures

    monkeypatch.setattr(erasure_ops, "SCRUB_BATCH", 2)
    with store.transaction() as conn:
        ingest_ops.suppress(conn, [f"c{i}" for i in range(5)], "deleted in Contacthub", NOW)
    assert retention_ops.scrub(store, NOW, max_batches=1) == 2  # the daemon's bounded run
    assert retention_ops.scrub(store, NOW) == 3  # db prune: all the rest
    with store.reader() as conn:
        assert conn.execute(select(erasures.c.scrubbed_at)).scalars().all() == [NOW] * 5
