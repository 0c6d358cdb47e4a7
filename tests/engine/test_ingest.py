"""Ingest over real HTTP against the Contacthub simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import (
    STREAM,
    api,
    config,
    customer_body,
    served_contacthub,
    source,
    stream_entries,
    write_config,
)

from syncer.engine.apply import Applier, rules_from_config
from syncer.engine.ingest import Ingestor
from syncer.state.store import Store

CH = "/hub/v1/workspaces/7e1a5ad4-2e1c-4f5e-9a51-5a4d1b0c0001"


class World:
    """A served simulator, a store and an ingestor over them."""

    def __init__(self, sim: Any, served: Any, store: Store, tmp_path: Path, page_size: int) -> None:
        self.sim, self.store = sim, store
        self.http = api(served)
        cfg = config(write_config(tmp_path, served.url, store.url, page_size=page_size))
        self.ingestor = Ingestor(
            store, source(served), Applier(rules_from_config(cfg)), page_size=page_size
        )

    def create(self, ext: str, **kw: Any) -> str:
        resp = self.http.post(f"{CH}/customers", json=customer_body(ext, **kw))
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def patch(self, cid: str, body: dict[str, Any]) -> None:
        assert self.http.patch(f"{CH}/customers/{cid}", json=body).status_code == 200

    def event(self, cid: str, kind: str = "completedOrder") -> str:
        body = {"customerId": cid, "type": kind, "context": "ECOMMERCE", "properties": {}}
        resp = self.http.post(f"{CH}/events", json=body)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]

    def deliveries(self) -> list[tuple[Any, ...]]:
        return self.rows("SELECT pipeline, entity_id, action, state FROM deliveries ORDER BY id")


@pytest.fixture
def world(state_url: str, tmp_path: Path) -> Iterator[World]:
    with served_contacthub() as (sim, served):
        store = Store(state_url)
        yield World(sim, served, store, tmp_path, page_size=3)
        store.close()


def test_pages_land_in_inbox_entities_and_deliveries_with_the_offset(world: World) -> None:
    ids = [world.create(f"c{i}") for i in range(7)]
    result = world.ingestor.run_to_end()
    assert (result.pages, result.updates, result.reason) == (3, 7, "caught_up")
    assert world.store.checkpoint(STREAM).offset == 7  # type: ignore[union-attr]
    inbox = world.rows("SELECT entity_id, origin, operation FROM inbox ORDER BY id")
    assert inbox == [(i, "stream", "CREATE") for i in ids]
    assert len(world.rows("SELECT 1 FROM entities WHERE entity_type = 'customer'")) == 7
    rows = world.deliveries()
    assert {(p, a, s) for p, _, a, s in rows} == {
        ("newsletter", "upsert", "pending"),
        ("everyone", "upsert", "pending"),
    }
    assert len(rows) == 14
    full = world.rows("SELECT target, entity_type, attempts, due_at, created_at FROM deliveries")
    assert all(r[0] == "nrs" and r[1] == "customer" and r[2] == 0 and r[3] > 0 for r in full)
    assert world.ingestor.run_to_end().updates == 0  # caught up: nothing new, nothing twice


def test_changes_coalesce_into_the_open_row_and_a_lost_match_leaves(world: World) -> None:
    cid = world.create("a")
    world.ingestor.run_to_end()
    world.patch(cid, {"base": {"lastName": "x"}})
    world.ingestor.run_to_end()
    assert len(world.deliveries()) == 2  # one open row per (pipeline, customer)
    with world.store.transaction() as conn:
        conn.execute(text("UPDATE deliveries SET state = 'done'"))
    consent = {"status": False, "limitation": False, "objection": False}
    world.patch(cid, {"consents": {"marketing": {"automatic": {"email": consent}}}})
    world.ingestor.run_to_end()
    new = [d for d in world.deliveries() if d[3] == "pending"]
    assert sorted(new) == [
        ("everyone", cid, "upsert", "pending"),
        ("newsletter", cid, "leave", "pending"),
    ]
    assert world.rows("SELECT pipelines FROM entities WHERE entity_type = 'customer'") == [
        ("everyone",)
    ]


def test_an_in_flight_row_is_never_rewritten(world: World) -> None:
    cid = world.create("a")
    world.ingestor.run_to_end()
    with world.store.transaction() as conn:
        conn.execute(text("UPDATE deliveries SET state = 'in_flight'"))
    world.patch(cid, {"base": {"lastName": "y"}})
    world.ingestor.run_to_end()
    states = sorted(d[3] for d in world.deliveries())
    assert states == ["in_flight", "in_flight", "pending", "pending"]


def test_a_deleted_customer_is_suppressed_and_never_recreated(world: World) -> None:
    cid = world.create("gone")
    world.ingestor.run_to_end()  # pending upserts for newsletter and everyone
    assert world.http.delete(f"{CH}/customers/{cid}").status_code == 200
    world.ingestor.run_to_end()
    # newsletter (on_delete: delete) gets a delete; everyone (ignore) loses its unsent upsert
    assert [(d[0], d[2]) for d in world.deliveries()] == [("newsletter", "delete")]
    assert world.rows("SELECT entity_id FROM suppression") == [(cid,)]
    # A late update of the deleted customer reaches the stream: recorded, not delivered.
    late = {**customer_body("gone"), "id": cid, "version": 9, "updatedAt": "2030-01-01T00:00:00Z"}
    world.http.post("/_sandbox/load", json={"customers": [late], "append_updates": True})
    world.ingestor.run_to_end()
    assert [(d[0], d[2]) for d in world.deliveries()] == [("newsletter", "delete")]
    inbox = world.rows(f"SELECT operation FROM inbox WHERE entity_id = '{cid}' ORDER BY id")
    assert inbox == [("CREATE",), ("DELETE",), ("CREATE",)]
    assert world.rows(f"SELECT deleted FROM entities WHERE entity_id = '{cid}'") == [(True,)]


def test_events_are_deduplicated_and_their_customer_is_fetched_once(world: World) -> None:
    customer = {**customer_body("quiet"), "id": "11111111-2222-4333-8444-555555555555"}
    customer.update(registeredAt="2020-01-01T00:00:00.000Z", updatedAt="2020-01-01T00:00:00.000Z")
    world.http.post("/_sandbox/load", json={"customers": [customer]})  # not in the stream
    first = world.event(customer["id"])
    world.event(customer["id"], "viewedPage")
    world.event(customer["id"])
    event = world.sim.workspaces["7e1a5ad4-2e1c-4f5e-9a51-5a4d1b0c0001"].events[first]
    world.http.post("/_sandbox/load", json={"events": [event], "append_updates": True})
    world.http.delete("/_sandbox/requests")
    result = world.ingestor.run_to_end()
    assert result.stats.duplicate_events == 1
    orders = [d for d in world.deliveries() if d[0] == "orders"]
    assert len(orders) == 2  # two completedOrder events; the repeat and viewedPage give none
    fetched = world.rows("SELECT entity_id, origin FROM inbox WHERE origin = 'fetch'")
    assert fetched == [(customer["id"], "fetch")]
    counts = world.http.get("/_sandbox/requests").json()["counts"]
    assert counts.get("GET /hub/v1/workspaces/{id}/customers/{id}") == 1
    # the fetched customer went through the customer pipelines like a scanned one
    assert {d[0] for d in world.deliveries() if d[1] == customer["id"]} == {
        "newsletter",
        "everyone",
    }


def test_the_inbox_mirrors_the_stream_in_order(world: World) -> None:
    a, b = world.create("a"), world.create("b")
    world.patch(a, {"base": {"lastName": "z"}})
    world.event(b)
    world.http.delete(f"{CH}/customers/{a}")
    world.ingestor.run_to_end()
    inbox = world.rows(
        "SELECT operation, entity_type, entity_id FROM inbox WHERE origin = 'stream' ORDER BY id"
    )
    assert inbox == stream_entries(world.sim)


ORDERS_OF_MAILABLE = """
- name: orders
  target: nrs
  entity: event
  event_types: [completedOrder]
  when: {present: [customer.base.contacts.email]}
  fields: {email: customer.base.contacts.email}
"""


def test_an_event_before_its_customers_update_in_one_page_sees_the_stored_customer(
    state_url: str, tmp_path: Path
) -> None:
    """Regression (chaos suite): an order followed, in the same page, by an update of its
    customer was evaluated without the customer (only the batch's customers were looked at,
    and this one was not there yet), so a `when` on the customer dropped the order."""
    with served_contacthub() as (sim, served):
        store = Store(state_url)
        try:
            cfg = config(
                write_config(tmp_path, served.url, state_url, pipelines=ORDERS_OF_MAILABLE)
            )
            ingestor = Ingestor(
                store, source(served), Applier(rules_from_config(cfg)), page_size=50
            )
            world = World(sim, served, store, tmp_path, page_size=50)
            cid = world.create("buyer")
            ingestor.run_to_end()  # the customer is stored
            world.event(cid)  # the order, then an update of its customer: one page
            world.patch(cid, {"base": {"firstName": "Later"}})
            stale = world.create("other")
            world.event(stale)
            ingestor.run_to_end()
            orders = world.rows("SELECT entity_type FROM deliveries WHERE pipeline = 'orders'")
            assert orders == [("event",), ("event",)]
        finally:
            store.close()


def test_a_backlog_is_committed_in_growing_groups_of_whole_pages(
    state_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seven full pages of 2: the run commits page 1 alone, then pages 2-3, then 4-7 (a group
    may hold twice the last one's updates, at most 8 here). ``on_page`` runs once per group
    with no transaction open, so it can write (the daemon renews its lease there)."""
    from sqlalchemy import event

    from syncer.engine import ingest

    monkeypatch.setattr(ingest, "GROUP_MAX_UPDATES", 8)
    with served_contacthub() as (sim, served):
        store = Store(state_url)
        try:
            world = World(sim, served, store, tmp_path, page_size=2)
            for n in range(14):
                world.create(f"c{n}")
            commits: list[int] = []
            event.listen(store.engine, "commit", lambda conn: commits.append(1))
            groups: list[int] = []

            def on_page() -> None:
                store.heartbeat("ingest", "test", 1.0)  # a write: would wait on an open group
                groups.append(1)

            world.ingestor.on_page = on_page
            before = len(commits)
            result = world.ingestor.run_to_end()
            assert (result.pages, result.updates, result.offset) == (7, 14, 14)
            assert len(groups) == 3
            page_commits = len(commits) - before - len(groups)  # each heartbeat commits too
            assert page_commits == 4  # the offset read, then three groups
            assert world.rows("SELECT COUNT(*) FROM inbox") == [(14,)]
        finally:
            store.close()


def test_a_failure_inside_a_group_loses_its_pages_and_a_rerun_applies_them_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncer.engine import ingest

    monkeypatch.setattr(ingest, "GROUP_MAX_UPDATES", 6)
    for n in range(12):
        world.create(f"c{n}")
    applier = world.ingestor.applier
    real_apply, calls = applier.apply, [0]

    def failing_apply(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 3:  # page 3: the second group already holds page 2
            raise RuntimeError("crash inside the group")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(applier, "apply", failing_apply)
    with pytest.raises(RuntimeError, match="crash inside the group"):
        world.ingestor.run_to_end()
    assert world.ingestor.committed_offset() == 3  # the first group (page 1) only
    assert world.rows("SELECT COUNT(*) FROM inbox") == [(3,)]
    monkeypatch.setattr(applier, "apply", real_apply)
    result = world.ingestor.run_to_end()
    assert (result.pages, result.updates, result.offset) == (3, 9, 12)
    assert world.rows("SELECT COUNT(*), COUNT(DISTINCT entity_id) FROM inbox") == [(12, 12)]
    per_customer = len(applier.customer_rules)
    assert world.rows(
        "SELECT COUNT(*), COUNT(DISTINCT pipeline || ':' || entity_id) FROM deliveries"
    ) == [(12 * per_customer, 12 * per_customer)]


def test_no_write_lock_is_held_while_the_next_page_is_fetched(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13, defect 8: an open ingest group kept SQLite's write lock while the next page
    was fetched (with its retries), so delivery outcomes waited on Contacthub. The group now
    commits when its time is up even if the next page has not arrived."""
    import threading

    from syncer.engine import ingest

    monkeypatch.setattr(ingest, "GROUP_MAX_SECONDS", 0.2)
    with served_contacthub() as (sim, served):
        store = Store(sqlite_url)
        try:
            world = World(sim, served, store, tmp_path, page_size=2)
            for n in range(12):
                world.create(f"c{n}")
            client = world.ingestor.client
            real_updates, release, calls = client.updates, threading.Event(), [0]

            def slow_updates(*args: Any, **kwargs: Any) -> Any:
                calls[0] += 1
                if calls[0] == 3:  # page 3 "hangs" (page 2 opened a group) until released
                    release.wait(60)
                return real_updates(*args, **kwargs)

            monkeypatch.setattr(client, "updates", slow_updates)
            runner = threading.Thread(target=world.ingestor.run_to_end, daemon=True)
            runner.start()
            while calls[0] < 3:
                release.wait(0.01)
            writer = threading.Thread(target=lambda: store.heartbeat("deliver", "w", 1.0))
            writer.start()
            writer.join(20)  # with the lock held across the fetch: waits the 30 s busy timeout
            wrote = not writer.is_alive()
            release.set()
            runner.join(60)
            assert wrote, "a writer waited on ingest while it fetched a page"
            assert world.ingestor.committed_offset() == 12
        finally:
            store.close()
