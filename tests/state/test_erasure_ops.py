"""The erasure ledger and the scrub, on SQLite and PostgreSQL: ingest opens an erasure with the
customer's suppression, a done ``delete`` delivery is its target's acknowledgement (fenced like
every outcome), and once every target acknowledged, no e-mail or phone of the customer is left
in any text column of any table."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Text, insert, inspect, select

from syncer.state import delivery_ops, erasure_ops, ingest_ops, retention_ops, search_ops
from syncer.state.schema import (
    deliveries,
    delivery_log,
    entities,
    erasure_acks,
    erasures,
    id_map,
    inbox,
    memberships,
    metadata,
)
from syncer.state.store import Store

EMAIL, PHONE = "ada.lovelace@example.org", "+393331234567"
OTHER_EMAIL = "grace.hopper@example.org"


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    s = Store(state_url)
    yield s
    s.close()


def customer_doc(cid: str, email: str, phone: str) -> str:
    return (
        f'{{"id": "{cid}", "base": {{"contacts": {{"email": "{email}", '
        f'"mobilePhone": "{phone}"}}}}}}'
    )


def seed_customer(store: Store, cid: str, email: str, phone: str) -> None:
    """What ingest and delivery leave for a customer with an order event: its document and the
    event's in entities and inbox, id map and membership rows keyed by its e-mail and phone, a
    log line (its error, what was sent, the record it landed on) and a delivery error quoting
    them."""
    now = time.time()
    doc, event_id = customer_doc(cid, email, phone), f"ev-{cid}"
    event = f'{{"id": "{event_id}", "customerId": "{cid}", "properties": {{"email": "{email}"}}}}'
    with store.transaction() as conn:
        ingest_ops.insert_inbox(
            conn,
            [
                ("s", 1, 0, "stream", "customer", cid, "CREATE", doc, now),
                ("s", 1, 1, "stream", "event", event_id, "CREATE", event, now),
            ],
        )
        ingest_ops.upsert_newer_entities(
            conn, [("customer", cid, None, doc, 1, "2026-01-01", False, "p")]
        )
        ingest_ops.insert_entities_if_absent(
            conn, [("event", event_id, cid, event, 0, "", False, None)]
        )
        conn.execute(
            insert(id_map).values(
                target="t", entity_id=cid, target_id="42", target_key=email, updated_at=now
            )
        )
        conn.execute(
            insert(memberships).values(
                target="t", entity_id=cid, pipeline="p", name="all", member_key=phone
            )
        )
        conn.execute(
            insert(delivery_log).values(
                at=now,
                pipeline="p",
                target="t",
                entity_id=cid,
                outcome="retry",
                detail=f"422 {email} already taken",
                sent=f'{{"action": "upsert", "fields": {{"email": "{email}"}}}}',
                target_id=email,  # NP6: the record is addressed by its e-mail
            )
        )
        conn.execute(
            insert(deliveries).values(
                pipeline="p",
                target="t",
                entity_type="customer",
                entity_id=cid,
                subject_id=cid,
                action="upsert",
                state="done",
                attempts=2,
                due_at=now,
                created_at=now,
                updated_at=now,
                last_error=f"422 {phone} invalid",
            )
        )
    search_ops.catch_up(store)  # the console's search keys (e-mail, phone) of both documents


def forget(store: Store, cid: str, targets: tuple[str, ...] = ("t",)) -> list[int]:
    """What ingest does with a delete: suppression, the erasure, a delete row per target."""
    now = time.time()
    with store.transaction() as conn:
        ingest_ops.suppress(conn, [cid], "deleted in Contacthub", now)
        ingest_ops.insert_deliveries(
            conn,
            [
                ("p", t, "customer", cid, "delete", "pending", 0, now - 1, now, now, cid)
                for t in targets
            ],
        )
        rows = conn.execute(
            select(deliveries.c.id).where(
                deliveries.c.subject_id == cid, deliveries.c.action == "delete"
            )
        )
        return sorted(rows.scalars())


def finish(store: Store, target: str, state: str = "done", error: str | None = None) -> None:
    """Claim the due rows of ``target`` and record them as ``state`` (as the engine does)."""
    with store.transaction() as conn:
        now = delivery_ops.db_now(conn)
        rows = delivery_ops.claim(conn, target, "w", 100, now, 60)
        results = [
            delivery_ops.RowResult(
                row=r,
                state=state,
                outcome="deleted" if state == "done" else "retry",
                subject_id=r.subject_id,
                due_at=now + 3600 if state == "failed" else None,
                error=error,
                forget=state == "done",
            )
            for r in rows
        ]
        assert delivery_ops.record_outcomes(conn, target, results, now, "run") == []


def text_values(store: Store) -> list[tuple[str, str, str]]:
    """``(table, column, value)`` of every text column of every table of the state."""
    out = []
    with store.reader() as conn:
        tables = inspect(conn).get_table_names()
        assert set(metadata.tables) <= set(tables)
        for name in tables:
            if name == "alembic_version":
                continue
            table = metadata.tables[name]
            for column in table.columns:
                if isinstance(column.type, Text) or hasattr(column.type, "length"):
                    for value in conn.execute(select(column)).scalars():
                        if value is not None:
                            out.append((name, column.name, str(value)))
    return out


def leaks(store: Store, *needles: str) -> list[tuple[str, str]]:
    return [(t, c) for t, c, v in text_values(store) if any(n in v for n in needles)]


def test_ingest_opens_one_erasure_per_forgotten_customer(store: Store) -> None:
    forget(store, "c1")
    with store.transaction() as conn:  # a second delete of the same customer changes nothing
        ingest_ops.suppress(conn, ["c1"], "deleted in Contacthub", time.time() + 100)
    with store.reader() as conn:
        rows = conn.execute(select(erasures)).all()
        [record] = erasure_ops.ledger(conn)
        count, oldest = erasure_ops.pending_summary(conn)
    assert [(r.entity_id, r.scrubbed_at) for r in rows] == [("c1", None)]
    assert record.state == "pending" and record.pending
    assert [(t.target, t.state) for t in record.targets] == [("t", "pending")]
    assert count == 1 and oldest == rows[0].requested_at


def test_done_delete_is_the_targets_acknowledgement(store: Store) -> None:
    forget(store, "c1", targets=("t", "u"))
    finish(store, "u", "failed", error="503 Service Unavailable")
    with store.reader() as conn:
        [record] = erasure_ops.ledger(conn)
    by_target = {t.target: t for t in record.targets}
    assert by_target["u"].state == "failed"
    assert by_target["u"].last_error == "503 Service Unavailable"
    assert by_target["u"].attempts == 1
    finish(store, "t")
    with store.reader() as conn:
        [record] = erasure_ops.ledger(conn, pending_only=True)
        acks = conn.execute(select(erasure_acks)).all()
    by_target = {t.target: t for t in record.targets}
    assert by_target["t"].state == "done" and by_target["t"].outcome == "deleted"
    assert by_target["t"].acked_at is not None
    assert [(a.entity_id, a.pipeline, a.target) for a in acks] == [("c1", "p", "t")]
    assert record.pending and record.acknowledged_at is None


def test_acknowledgement_outlives_the_pruned_delivery(store: Store) -> None:
    forget(store, "c1")
    finish(store, "t")
    with store.transaction() as conn:
        conn.execute(deliveries.delete())  # retention pruned the done row
    with store.reader() as conn:
        [record] = erasure_ops.ledger(conn)
        assert erasure_ops.pending_summary(conn) == (0, None)
    assert record.state == "acknowledged" and record.acknowledged_at is not None
    assert [(t.target, t.state, t.outcome) for t in record.targets] == [("t", "done", "deleted")]


def test_a_lost_claim_writes_no_acknowledgement(store: Store) -> None:
    [row_id] = forget(store, "c1")
    with store.transaction() as conn:
        now = delivery_ops.db_now(conn)
        [row] = delivery_ops.claim(conn, "t", "w1", 10, now, 0.01)
    time.sleep(0.05)  # the claim expires: another worker takes the customer over
    with store.transaction() as conn:
        [again] = delivery_ops.claim(conn, "t", "w2", 10, delivery_ops.db_now(conn), 60)
    assert again.id == row_id
    late = delivery_ops.RowResult(row=row, state="done", outcome="deleted", subject_id="c1")
    with store.transaction() as conn:
        lost = delivery_ops.record_outcomes(conn, "t", [late], delivery_ops.db_now(conn), None)
        assert lost == [late]
        assert conn.execute(select(erasure_acks)).all() == []


def test_scrub_leaves_no_email_or_phone_once_every_target_acknowledged(store: Store) -> None:
    seed_customer(store, "c1", EMAIL, PHONE)
    seed_customer(store, "c2", OTHER_EMAIL, "+393339999999")  # not deleted: stays
    forget(store, "c1", targets=("t", "u"))
    assert leaks(store, EMAIL, PHONE)  # the check finds them while they are there
    finish(store, "t")
    with store.transaction() as conn:  # one target has not acknowledged: nothing scrubbed
        assert erasure_ops.scrub_completed(conn, time.time()) == []
    assert leaks(store, EMAIL, PHONE)
    finish(store, "u")
    with store.transaction() as conn:
        assert erasure_ops.scrub_completed(conn, time.time()) == ["c1"]
    assert leaks(store, EMAIL, PHONE) == []
    assert ("entities", "payload") in leaks(store, OTHER_EMAIL)
    with store.reader() as conn:
        payload = conn.execute(
            select(entities.c.payload).where(entities.c.entity_id == "c1")
        ).scalar_one()
        inbox_ids = set(conn.execute(select(inbox.c.entity_id)).scalars())
        [record] = erasure_ops.ledger(conn, ids=["c1"])
        suppressed = ingest_ops.suppressed(conn, ["c1", "c2"])
    assert payload == '{"id":"c1"}'
    assert inbox_ids == {"c2", "ev-c2"}
    assert record.state == "scrubbed" and {t.state for t in record.targets} == {"done"}
    assert suppressed == {"c1"}  # the id stays: the customer never comes back
    with store.transaction() as conn:  # scrubbed once
        assert erasure_ops.scrub_completed(conn, time.time()) == []


@pytest.mark.parametrize("blocker", ["dead delete", "discarded delete", "open upsert"])
def test_no_scrub_while_a_delete_is_dead_or_a_row_is_open(store: Store, blocker: str) -> None:
    seed_customer(store, "c1", EMAIL, PHONE)
    forget(store, "c1")
    if blocker in ("dead delete", "discarded delete"):
        finish(store, "t", "dead", error="500 gave up")
    if blocker == "discarded delete":  # the console's Discard: closed unsent, no receipt
        with store.transaction() as conn:
            conn.execute(
                deliveries.update().where(deliveries.c.state == "dead").values(state="discarded")
            )
    if blocker == "open upsert":
        finish(store, "t")
        now = time.time()
        with store.transaction() as conn:  # e.g. an event row still to send
            ingest_ops.insert_deliveries(
                conn,
                [("q", "t", "event", "ev-c1", "upsert", "pending", 0, now + 99, now, now, "c1")],
            )
    with store.transaction() as conn:
        assert erasure_ops.scrub_completed(conn, time.time()) == []
        [record] = erasure_ops.ledger(conn)
    expected = {"dead delete": "dead", "discarded delete": "discarded"}
    assert record.state == expected.get(blocker, "acknowledged")
    if blocker != "open upsert":
        assert record.acknowledged_at is None
    assert leaks(store, EMAIL, PHONE)


def test_a_customer_no_target_had_is_complete_at_once(store: Store) -> None:
    seed_customer(store, "c1", EMAIL, PHONE)
    with store.transaction() as conn:
        ingest_ops.suppress(conn, ["c1"], "deleted in Contacthub", time.time())
        assert erasure_ops.pending_summary(conn) == (0, None)
        assert erasure_ops.scrub_completed(conn, time.time()) == ["c1"]
    assert leaks(store, EMAIL, PHONE) == []


def test_upgrade_to_0006_backfills_the_ledger_from_suppression(state_url: str) -> None:
    """Every suppressed customer becomes an erasure; its done delete deliveries, its
    acknowledgements (the newest per pipeline and target); downgrade drops both tables."""
    from alembic import command

    from syncer.state import db

    engine = db.create_state_engine(state_url)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.exec_driver_sql(
            "INSERT INTO suppression (entity_id, reason, suppressed_at) VALUES "
            "('a', 'deleted in Contacthub', 10), ('b', 'deleted in Contacthub', 20)"
        )
        conn.exec_driver_sql(
            "INSERT INTO deliveries (pipeline, target, entity_type, entity_id, subject_id, "
            "action, state, attempts, due_at, created_at, updated_at) VALUES "
            "('p', 't', 'customer', 'a', 'a', 'delete', 'done', 1, 11, 11, 12), "
            "('p', 't', 'customer', 'a', 'a', 'delete', 'done', 1, 13, 13, 14), "
            "('p', 'u', 'customer', 'a', 'a', 'delete', 'failed', 2, 15, 11, 15), "
            "('p', 't', 'customer', 'z', 'z', 'upsert', 'done', 1, 11, 11, 12)"
        )
    db.upgrade(engine)
    store = Store(state_url)
    with store.reader() as conn:
        requests = conn.execute(
            select(erasures.c.entity_id, erasures.c.requested_at).order_by(erasures.c.entity_id)
        ).all()
        acks = conn.execute(select(erasure_acks)).all()
        records = {r.entity_id: r for r in erasure_ops.ledger(conn)}
        assert erasure_ops.pending_summary(conn) == (1, 10)
    store.close()
    assert [tuple(r) for r in requests] == [("a", 10), ("b", 20)]
    assert [(a.entity_id, a.target, a.delivery_id, a.acked_at) for a in acks] == [("a", "t", 2, 14)]
    assert {t.target: t.state for t in records["a"].targets} == {"t": "done", "u": "failed"}
    assert records["b"].state == "acknowledged" and records["b"].targets == []
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert not {"erasures", "erasure_acks"} & tables


def test_a_scrubbed_customer_is_not_left_in_the_sqlite_file(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Freed pages and the write-ahead log keep deleted content unless it is overwritten
    (``secure_delete``) and the log emptied after the scrub (``Store.truncate_wal``)."""
    store = Store(sqlite_url)
    seed_customer(store, "c1", EMAIL, PHONE)
    forget(store, "c1")
    finish(store, "t")

    def in_file() -> bool:
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
        return EMAIL.encode() in raw or PHONE.encode() in raw

    assert in_file()  # the search finds them while they are there
    assert retention_ops.scrub(store) == 1
    assert not in_file()
    store.close()


def _many_customers(store: Store, n: int, versions: int) -> None:
    """``n`` customers, each written ``versions`` times with documents of random sizes: rows
    move between pages as they grow and shrink, as under real churn."""
    rng = random.Random(7)
    for version in range(1, versions + 1):
        rows = []
        for i in range(n):
            doc = customer_doc(f"c{i}", f"person{i:04d}@example.org", f"+3933300{i:05d}")
            doc = doc[:-1] + f', "notes": "{"x" * rng.randint(10, 1500)}"}}'
            rows.append(
                ("customer", f"c{i}", None, doc, version, f"2026-01-{version:02d}", False, "p")
            )
        with store.transaction() as conn:
            ingest_ops.upsert_newer_entities(conn, rows)


def test_no_stale_copy_of_a_scrubbed_customer_is_left_in_rebuilt_pages(
    sqlite_url: str, tmp_path: Path
) -> None:
    """``secure_delete`` zeroes what a statement deletes, but a page rebuilt when rows move
    between pages keeps stale copies in its free area: the scrub rewrites the file."""
    store = Store(sqlite_url)
    _many_customers(store, 2000, versions=4)
    victims = [f"c{i}" for i in range(0, 2000, 5)]
    for cid in victims:
        forget(store, cid, targets=())
    assert retention_ops.scrub(store) == len(victims)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    left = [i for i in range(0, 2000, 5) if f"person{i:04d}@".encode() in raw]
    assert left == []
    assert f"person{1:04d}@".encode() in raw  # the others are there (the search works)
    with store.reader() as conn:
        assert erasure_ops.scrubbed_uncompacted(conn) == []
    store.close()


def test_a_scrub_whose_compaction_could_not_run_is_compacted_by_the_next(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compaction that could not run (the lock busy, the process killed after the scrub)
    leaves stale copies on disk: the next scrub, with nothing new to scrub, compacts them."""
    store = Store(sqlite_url)
    _many_customers(store, 2000, versions=4)
    victims = list(range(0, 2000, 5))
    for i in victims:
        forget(store, f"c{i}", targets=())

    def left() -> list[int]:
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
        return [i for i in victims if f"person{i:04d}@".encode() in raw]

    with monkeypatch.context() as m:
        m.setattr(store, "compact", lambda: False)
        assert retention_ops.scrub(store) == len(victims)
    assert left()  # stale copies of scrubbed rows, until the file is rewritten
    with store.reader() as conn:
        assert len(erasure_ops.scrubbed_uncompacted(conn)) == len(victims)
    assert retention_ops.scrub(store) == 0
    assert left() == []
    with store.reader() as conn:
        compacted = conn.execute(select(erasures.c.compacted_at)).scalars().all()
    assert len(compacted) == len(victims) and None not in compacted
    store.close()


def test_the_daemons_scrub_leaves_the_rewrite_to_its_prune_job(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The scrub job (every minute) does not rewrite the file: the prune job (every
    retention.interval) does, for every scrub since it last did."""
    store = Store(sqlite_url)
    _many_customers(store, 2000, versions=4)
    victims = list(range(0, 2000, 5))
    for i in victims:
        forget(store, f"c{i}", targets=())
    assert retention_ops.scrub(store, max_batches=5, compact=False) == len(victims)
    with store.reader() as conn:
        assert len(erasure_ops.scrubbed_uncompacted(conn)) == len(victims)
    result = retention_ops.prune(
        store, done_deliveries_days=30, inbox_days=30, delivery_log_days=30
    )
    assert result.scrubbed == 0
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert [i for i in victims if f"person{i:04d}@".encode() in raw] == []
    with store.reader() as conn:
        assert erasure_ops.scrubbed_uncompacted(conn) == []
    store.close()


def test_ledger_and_pending_count_of_one_source(store: Store) -> None:
    """Ids are ``<source>:<id>`` except in ``default``; a ``_`` or ``%`` in a source name is
    no wildcard."""
    ids = ["c1", "brand-fr:c1", "brand-fr:c9", "brand_x:c2", "brandyx:c3"]
    with store.transaction() as conn:
        erasure_ops.open_erasures(conn, ids, "deleted", 1e9)
        for cid in ("c1", "brand-fr:c9"):  # their target has not acknowledged the delete yet
            conn.execute(
                insert(deliveries).values(
                    pipeline="p",
                    target="t",
                    entity_type="customer",
                    entity_id=cid,
                    subject_id=cid,
                    action="delete",
                    state="pending",
                    attempts=0,
                    due_at=1e9,
                    created_at=1e9,
                    updated_at=1e9,
                )
            )
    with store.reader() as conn:

        def of(source: str) -> list[str]:
            return sorted(r.entity_id for r in erasure_ops.ledger(conn, source=source))

        assert of("default") == ["c1"]
        assert of("brand-fr") == ["brand-fr:c1", "brand-fr:c9"]
        assert of("brand_x") == ["brand_x:c2"]
        assert erasure_ops.pending_summary(conn) == (2, 1e9)
        assert erasure_ops.pending_summary(conn, "brand-fr") == (1, 1e9)
        assert erasure_ops.pending_summary(conn, "default") == (1, 1e9)
        assert erasure_ops.pending_summary(conn, "brand_x") == (0, None)
        pending = erasure_ops.ledger(conn, pending_only=True, source="brand-fr")
        assert [r.entity_id for r in pending] == ["brand-fr:c9"]
