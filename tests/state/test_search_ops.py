"""The console's search keys, on SQLite and PostgreSQL: read from the inbox behind the stream
(not in ingest's transaction), found before they are read (the inbox tail), kept for earlier
versions, never written for a forgotten customer, and built from the stored customers by the
upgrade to 0011."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, select

from syncer.console import debugger
from syncer.state import db, ingest_ops, search_ops
from syncer.state.schema import entities, inbox, search_cursor, search_keys
from syncer.state.store import Store


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    s = Store(state_url)
    yield s
    s.close()


def doc(cid: str, email: str, mobile: str | None = None, external: str | None = None) -> str:
    contacts: dict[str, str] = {"email": email}
    if mobile:
        contacts["mobilePhone"] = mobile
    body: dict[str, object] = {"id": cid, "base": {"contacts": contacts}}
    if external:
        body["externalId"] = external
    return json.dumps(body)


def ingest(store: Store, *versions: tuple[str, str]) -> None:
    """What ingest writes for customer versions ``(id, document)``: inbox rows and entities."""
    now = time.time()
    with store.transaction() as conn:
        ingest_ops.insert_inbox(
            conn,
            [
                ("s", n, 0, "stream", "customer", cid, "UPDATE", payload, now)
                for n, (cid, payload) in enumerate(versions)
            ],
        )
        for n, (cid, payload) in enumerate(versions, start=1):
            ingest_ops.upsert_newer_entities(
                conn, [("customer", cid, None, payload, n, "", False, "p")]
            )


def found(store: Store, query: str) -> list[tuple[str, str]]:
    with store.reader() as conn:
        return sorted((h.entity_id, h.matched) for h in debugger.search(conn, query))


def test_keys_follow_the_inbox_and_the_tail_is_found_before(store: Store) -> None:
    ingest(store, ("c1", doc("c1", "Ada@Example.org", "+393331234567", "CRM-1")))
    with store.reader() as conn:
        assert conn.execute(select(search_keys)).all() == []  # ingest wrote no key
    # not read yet: found in the inbox tail, by every kind of key
    assert found(store, "ada@example.ORG") == [("c1", "email")]
    assert found(store, "+39 333 1234567") == [("c1", "mobilePhone")]
    assert found(store, "CRM-1") == [("c1", "externalId")]
    assert search_ops.catch_up(store) == 1
    with store.reader() as conn:
        keys = set(conn.execute(select(search_keys.c.key, search_keys.c.entity_id)).all())
        assert search_ops.cursor(conn) == conn.execute(select(inbox.c.id)).scalar()
    assert keys == {
        ("email:ada@example.org", "c1"),
        ("mobilePhone:+393331234567", "c1"),
        ("externalId:CRM-1", "c1"),
    }
    assert found(store, "ADA@example.org") == [("c1", "email")]
    assert found(store, "CRM-1") == [("c1", "externalId")]
    assert found(store, "nobody@example.org") == []
    assert search_ops.catch_up(store) == 0  # nothing new


def test_an_earlier_email_still_finds_the_customer(store: Store) -> None:
    ingest(store, ("c1", doc("c1", "old@example.org")), ("c1", doc("c1", "new@example.org")))
    search_ops.catch_up(store)
    assert found(store, "old@example.org") == [("c1", "email")]
    assert found(store, "new@example.org") == [("c1", "email")]


def test_a_non_ascii_email_is_found_in_any_case_before_and_after(store: Store) -> None:
    ingest(store, ("c1", doc("c1", "JOSÉ.Núñez@Example.es")))
    assert found(store, "josé.núñez@example.es") == [("c1", "email")]  # the tail
    search_ops.catch_up(store)
    assert found(store, "JOSÉ.NÚÑEZ@EXAMPLE.ES") == [("c1", "email")]


def test_no_key_for_a_suppressed_customer(store: Store) -> None:
    ingest(store, ("c1", doc("c1", "ada@example.org")), ("c2", doc("c2", "bob@example.org")))
    with store.transaction() as conn:
        ingest_ops.suppress(conn, ["c1"], "deleted in Contacthub", time.time())
    search_ops.catch_up(store)
    with store.reader() as conn:
        ids = set(conn.execute(select(search_keys.c.entity_id)).scalars())
    assert ids == {"c2"}


def test_the_cursor_never_moves_back(store: Store) -> None:
    ingest(store, *((f"c{i}", doc(f"c{i}", f"p{i}@example.org")) for i in range(3)))
    search_ops.catch_up(store)
    with store.transaction() as conn:
        newest = search_ops.cursor(conn)
        search_ops._move_cursor(conn, 1)  # a slower process finishing an older batch
        assert search_ops.cursor(conn) == newest


def test_catch_up_reads_in_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_ops, "BATCH", 2)
    ingest(store, *((f"c{i}", doc(f"c{i}", f"p{i}@example.org")) for i in range(5)))
    assert search_ops.catch_up(store, max_batches=1) == 2  # the daemon's bounded run
    assert found(store, "p4@example.org") == [("c4", "email")]  # still in the tail
    assert search_ops.catch_up(store) == 3
    with store.reader() as conn:
        assert len(conn.execute(select(search_keys)).all()) == 5


def test_upgrade_to_0011_builds_the_keys_of_the_stored_customers(state_url: str) -> None:
    engine = create_engine(state_url)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
        conn.execute(
            insert(entities),
            [
                {
                    "entity_type": "customer",
                    "entity_id": "c1",
                    "payload": doc("c1", "Ada@Example.org", "+393331234567"),
                    "version": 1,
                    "updated_at": "",
                    "deleted": False,
                },
                {  # a forgotten customer keeps its id only
                    "entity_type": "customer",
                    "entity_id": "c2",
                    "payload": '{"id":"c2"}',
                    "version": 1,
                    "updated_at": "",
                    "deleted": True,
                },
            ],
        )
        ingest_ops.insert_inbox(
            conn, [("s", 7, 0, "stream", "customer", "c1", "UPDATE", "{}", time.time())]
        )
        command.upgrade(cfg, "0011")
        keys = set(conn.execute(select(search_keys.c.key, search_keys.c.entity_id)).all())
        cursor = conn.execute(select(search_cursor.c.inbox_id)).scalar_one()
        newest = conn.execute(select(inbox.c.id)).scalar_one()
        command.downgrade(cfg, "0010")
        command.upgrade(cfg, "head")
    engine.dispose()
    assert keys == {("email:ada@example.org", "c1"), ("mobilePhone:+393331234567", "c1")}
    assert cursor == newest  # what the inbox holds now was read by the upgrade
