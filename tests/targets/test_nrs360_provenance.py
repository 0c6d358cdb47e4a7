"""360NRS contacts syncer did not create (issue 14, defect 5), against the simulator.

A contact on the account before syncer (found by the listing, a lookup, or a create refused as
taken) keeps the groups syncer does not manage, and a leave never deletes it: syncer removes
its own groups and keeps the contact. A contact syncer created is deleted when it leaves its
last group (360NRS cannot hold a contact in no group through its API). Provenance is kept in
the id map (``origin``); unknown provenance (rows from before revision 0005) counts as not
created by syncer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract import TARGET, Harness, one_target_config
from sqlalchemy import select

from syncer.sandbox.nrs360 import Nrs360Simulator
from syncer.sandbox.serve import ServedApp
from syncer.state import delivery_ops as ops
from syncer.state.schema import id_map
from syncer.state.store import Store

USER, PASSWORD = "sandbox-user", "sandbox-api-password"


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    # default behaviour: a second contact with a taken e-mail is refused (422 "taken")
    with ServedApp(Nrs360Simulator(username=USER, api_password=PASSWORD).asgi()) as app:
        yield app.url


@pytest.fixture
def sim(served: str) -> str:
    httpx.post(served + "/_sandbox/reset").raise_for_status()
    return served


@pytest.fixture
def make(sim: str, tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def build(groups_a: tuple[str, ...] = ("Newsletter",), **target: Any) -> Harness:
        pipelines = [
            {
                "name": name,
                "target": TARGET,
                "entity": "customer",
                "when": {"tags_any": [name]},
                "fields": {"email": "email", "name": "name"},
                "groups": list(groups),
                "on_delete": "delete",
            }
            for name, groups in (("a", groups_a), ("b", ("VIP",)))
        ]
        settings = {
            "type": "360nrs",
            "base_url": sim + "/api/rest",
            "username": USER,
            "api_password": PASSWORD,
            **target,
        }
        cfg = one_target_config(settings, pipelines, {"backoff_base": 0.05, "backoff_max": 0.2})
        harness = Harness(cfg, Store(f"sqlite:///{tmp_path / f's{len(made)}.db'}"))
        made.append(harness)
        return harness

    yield build
    for h in made:
        h.deliverer.close()
        h.store.close()


def load_staff_contact(sim: str) -> None:
    """Contact 1, ``c1@example.com``, in the marketing team's own group ``Staff``."""
    httpx.post(
        sim + "/_sandbox/load",
        json={
            "groups": [{"id": 1, "name": "Staff"}],
            "contacts": [{"id": 1, "email": "c1@example.com", "name": "Old", "groupsIds": [1]}],
        },
    ).raise_for_status()


def contacts(sim: str) -> dict[str, tuple[int, set[str]]]:
    state = httpx.get(sim + "/_sandbox/state").json()
    return {c["email"]: (c["id"], {g["name"] for g in c["groups"]}) for c in state["contacts"]}


def origin(h: Harness, cid: str) -> str | None:
    with h.store.transaction() as conn:
        return conn.execute(select(id_map.c.origin).where(id_map.c.entity_id == cid)).scalar()


def doc(name: str = "Ana") -> dict[str, Any]:
    return {"email": "c1@example.com", "name": name}


@pytest.mark.parametrize("lookup", [True, False], ids=["listing", "create-refused-as-taken"])
def test_a_contact_from_before_syncer_keeps_its_groups_and_is_kept_on_leave(
    make: Callable[..., Harness], sim: str, lookup: bool
) -> None:
    load_staff_contact(sim)
    h = make(lookup_before_create=lookup)
    h.put("c1", doc(), {"a"})
    assert h.run().done == 1
    assert contacts(sim) == {"c1@example.com": (1, {"Staff", "Newsletter"})}
    assert origin(h, "c1") == "found"
    h.put("c1", doc("Eva"), {"a", "b"})  # known id: read, then written with Staff kept
    assert h.run().updated == 2
    assert contacts(sim) == {"c1@example.com": (1, {"Staff", "Newsletter", "VIP"})}
    h.put("c1", doc("Eva"), set())  # leaves both pipelines: syncer's groups go, the contact stays
    stats = h.run()
    assert (stats.left, stats.dead) == (2, 0), stats
    assert contacts(sim) == {"c1@example.com": (1, {"Staff"})}
    assert origin(h, "c1") == "found"
    h.delete("c1")  # forgotten in Contacthub: on_delete: delete removes it, whoever made it
    assert h.run().deleted >= 1
    assert contacts(sim) == {}


def test_a_contact_syncer_created_is_deleted_when_it_leaves_its_last_group(
    make: Callable[..., Harness], sim: str
) -> None:
    h = make()
    h.put("c1", doc(), {"a"})
    assert h.run().created == 1
    assert origin(h, "c1") == "syncer"
    h.put("c1", doc(), set())
    assert h.run().left == 1
    assert contacts(sim) == {}


def test_a_contact_from_before_syncer_left_in_no_group_is_kept_and_dead_lettered(
    make: Callable[..., Harness], sim: str
) -> None:
    httpx.post(
        sim + "/_sandbox/load",
        json={
            "groups": [{"id": 1, "name": "Newsletter"}],
            "contacts": [{"id": 1, "email": "c1@example.com", "groupsIds": [1]}],
        },
    ).raise_for_status()
    h = make()
    h.put("c1", doc(), {"a"})
    h.run()
    h.put("c1", doc(), set())
    stats = h.run()
    assert (stats.left, stats.dead) == (0, 1), stats
    [dead] = h.dead()
    assert "was not created by syncer" in (dead.last_error or ""), dead
    assert "remove it from Newsletter by hand" in (dead.last_error or ""), dead
    assert contacts(sim) == {"c1@example.com": (1, {"Newsletter"})}


def test_unknown_provenance_counts_as_not_created_by_syncer(
    make: Callable[..., Harness], sim: str
) -> None:
    h = make()
    h.put("c1", doc(), {"a", "b"})
    h.run()
    with h.store.transaction() as conn:  # as a row written before revision 0005
        conn.execute(id_map.update().values(origin=None))
    h.put("c1", doc(), {"b"})
    assert h.run().left == 1
    assert contacts(sim)["c1@example.com"][1] == {"VIP"}
    h.put("c1", doc(), set())  # would be left in no group: kept, dead-lettered, not deleted
    assert h.run().dead == 1
    assert set(contacts(sim)) == {"c1@example.com"}


def test_a_create_whose_answer_was_lost_stays_syncers(
    make: Callable[..., Harness], sim: str
) -> None:
    h = make(lookup_before_create=False)
    h.put("c0", {"email": "c0@example.com"}, {"a"})  # the group exists and is known
    h.run()
    httpx.put(sim + "/_sandbox/faults", json={"lost_response_rate": 1.0}).raise_for_status()
    h.put("c1", doc(), {"a"})
    assert h.run(wait=0).retry == 1  # created in 360NRS, the answer lost
    assert origin(h, "c1") == "syncer"  # what the failed write was doing: a create
    httpx.put(sim + "/_sandbox/faults", json={}).raise_for_status()
    assert h.run().updated == 1  # the re-send finds it by lookup: still syncer's
    assert origin(h, "c1") == "syncer"
    h.put("c1", doc(), set())
    assert h.run().left == 1
    assert set(contacts(sim)) == {"c0@example.com"}  # syncer's contact: deleted on its leave


def test_a_create_cut_off_by_a_crash_stays_syncers(make: Callable[..., Harness], sim: str) -> None:
    """The process dies between the create and its commit (the crash suite's SIGKILL): no
    outcome says what the write was doing, but the identity noted before the call is older
    than the contact the re-send finds, so the contact is syncer's and goes on its leave."""
    h = make(lookup_before_create=False)
    h.put("c0", {"email": "c0@example.com"}, {"a"})  # the group exists and is known
    h.run()
    h.put("c1", doc(), {"a"})
    worker = h.deliverer.worker(TARGET)
    with h.store.transaction() as conn:  # what a worker commits before its call
        rows = ops.claim(conn, TARGET, "crashed", 10, time.time(), 0.05)
        known, hashes, touched = ops.load_known(conn, TARGET, ["c1"])
        found = ops.load_entities(conn, [("customer", "c1")])
        [planned] = h.deliverer.planner.plan(rows, found, known, hashes, touched)
        assert planned.change is not None
        key = worker.target.identity(planned.change)  # type: ignore[attr-defined]
        ops.note_identities(conn, TARGET, [("c1", key)], time.time())
    [out] = worker.target.apply([planned.change], worker.ctx)  # then the process dies
    assert out.detail == "created"
    time.sleep(0.1)  # the claim expires
    assert h.run().updated == 1  # the re-send finds the contact by lookup
    assert origin(h, "c1") == "syncer"
    h.put("c1", doc(), set())
    assert h.run().left == 1
    assert set(contacts(sim)) == {"c0@example.com"}  # syncer's contact: deleted on its leave


def test_a_create_cut_off_by_a_crash_then_a_leave_deletes_syncers_contact(
    make: Callable[..., Harness], sim: str
) -> None:
    """As above, but the customer leaves the pipeline before the re-send: the leave's lookup
    finds the contact and the identity noted before the create says it is syncer's, so it is
    deleted; it used to count as someone else's, kept and dead-lettered (crash suite)."""
    h = make(lookup_before_create=False)
    h.put("c0", {"email": "c0@example.com"}, {"a"})
    h.run()
    h.put("c1", doc(), {"a"})
    worker = h.deliverer.worker(TARGET)
    with h.store.transaction() as conn:
        rows = ops.claim(conn, TARGET, "crashed", 10, time.time(), 0.05)
        known, hashes, touched = ops.load_known(conn, TARGET, ["c1"])
        found = ops.load_entities(conn, [("customer", "c1")])
        [planned] = h.deliverer.planner.plan(rows, found, known, hashes, touched)
        assert planned.change is not None
        key = worker.target.identity(planned.change)  # type: ignore[attr-defined]
        ops.note_identities(conn, TARGET, [("c1", key)], time.time())
    [out] = worker.target.apply([planned.change], worker.ctx)  # then the process dies
    assert out.detail == "created"
    h.put("c1", doc(), set())  # it leaves while its create is still unrecorded
    time.sleep(0.1)  # the claim expires
    stats = h.run()
    assert (stats.left, stats.dead) == (1, 0), stats
    assert set(contacts(sim)) == {"c0@example.com"}


COUNTRY = ("Newsletter", "Country {{ country }}")


def test_a_contact_from_before_syncer_whose_group_changes_keeps_only_its_own_groups(
    make: Callable[..., Harness], sim: str
) -> None:
    """Moving from Country IT to Country BE drops Country IT and keeps Staff. The check that
    this account's PUT replaces groups used to count the kept Staff as a dropped group that
    stayed, conclude "this account adds groups" and dead-letter the write."""
    load_staff_contact(sim)
    h = make(groups_a=COUNTRY)
    h.put("c1", {**doc(), "country": "IT"}, {"a"})
    assert h.run().done == 1
    assert contacts(sim) == {"c1@example.com": (1, {"Staff", "Newsletter", "Country IT"})}
    h.put("c1", {**doc(), "country": "BE"}, {"a"})
    stats = h.run()
    assert (stats.updated, stats.dead) == (1, 0), (stats, [d.last_error for d in h.dead()])
    assert contacts(sim) == {"c1@example.com": (1, {"Staff", "Newsletter", "Country BE"})}


def test_a_group_a_lost_write_put_there_goes_when_the_customer_moves_on(
    make: Callable[..., Harness], sim: str
) -> None:
    """A write that put the contact in Country FR lost its answer, so the state never held
    it there; the customer then moved to Belgium. Country FR is syncer's group (a pipeline
    renders it), not one somebody added by hand: it goes, Staff stays (two-replica suite)."""
    load_staff_contact(sim)
    h = make(groups_a=COUNTRY)
    h.put("c1", {**doc(), "country": "IT"}, {"a"})
    assert h.run().done == 1
    lose_put_answers = {"lost_response_rate": 1.0, "methods": ["PUT"]}  # the read before works
    httpx.put(sim + "/_sandbox/faults", json=lose_put_answers).raise_for_status()
    h.put("c1", {**doc(), "country": "FR"}, {"a"})
    assert h.run(wait=0).retry == 1  # applied in 360NRS, the answer lost
    assert contacts(sim)["c1@example.com"][1] == {"Staff", "Newsletter", "Country FR"}
    httpx.put(sim + "/_sandbox/faults", json={}).raise_for_status()
    h.put("c1", {**doc(), "country": "BE"}, {"a"})  # folded into the row waiting for its retry
    stats = h.run()
    assert (stats.updated, stats.dead) == (1, 0), (stats, [d.last_error for d in h.dead()])
    assert contacts(sim) == {"c1@example.com": (1, {"Staff", "Newsletter", "Country BE"})}
