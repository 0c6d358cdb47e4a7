"""Octopush adds whose answer was lost, followed by a phone (or list) change.

``contact/create`` put the number in the list but its answer never reached syncer (the
simulator's applied-but-response-lost fault, or a process killed before recording the
outcome). Before the fix, the re-send was mapped from the newer customer (new phone) with no
trace of the first add: it added the new number and the old one stayed in the list for good
(two contacts of one customer in the list). Now the add's identity ``"<phone> <list>"`` is
kept in the id map, and the re-send takes the old number out of the list.

Driven end to end: real ingest ``Applier``, real ``Deliverer``, SQLite state, the Octopush
simulator over HTTP with faults injected through its admin API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract import TARGET, Harness, one_target_config
from octopush_np6_fakes import (
    OCTOPUSH_KEY,
    OCTOPUSH_LOGIN,
    MemoryContext,
    change,
    octopush_target,
)

from syncer.config import SyncerConfig
from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp
from syncer.state import delivery_ops as ops
from syncer.state.store import Store
from syncer.targets.base import Known
from syncer.targets.octopush import OctopushClient, OctopushTarget
from syncer.targets.octopush.plan import identity_key, plan_change

OLD, NEW, OTHER = "+33600000001", "+33600000002", "+33600000099"


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with ServedApp(OctopushSimulator(api_login=OCTOPUSH_LOGIN, api_key=OCTOPUSH_KEY).asgi()) as app:
        yield app.url


@pytest.fixture
def sim(served: str) -> str:
    httpx.post(served + "/_sandbox/reset").raise_for_status()
    httpx.put(served + "/_sandbox/faults", json={}).raise_for_status()
    return served


def faults(sim: str, **plan: Any) -> None:
    httpx.put(sim + "/_sandbox/faults", json=plan).raise_for_status()


def state(sim: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(sim + "/_sandbox/state").json()
    return data


def config(sim: str, max_attempts: int = 6) -> SyncerConfig:
    pipeline = {
        "name": "a",
        "target": TARGET,
        "entity": "customer",
        "when": {"tags_any": ["a"]},
        "fields": {"phone_number": "base.contacts.mobilePhone", "first_name": "base.firstName"},
        "list": "List {{ base.address.country }}",
        "on_delete": "remove_from_list",
    }
    return one_target_config(
        octopush_target(sim, max_attempts=max_attempts),
        [pipeline],
        {"batch_size": 50, "backoff_base": 0.05, "backoff_max": 0.2},
    )


def doc(phone: str, country: str = "FR") -> dict[str, Any]:
    return {
        "base": {
            "firstName": "Ana",
            "contacts": {"mobilePhone": phone},
            "address": {"country": country},
        }
    }


@pytest.fixture
def harness(sim: str, tmp_path: Path) -> Iterator[Harness]:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    h = Harness(config(sim), store)
    h.put("c0", doc(OTHER), {"a"})  # warm up: the list exists and is known before the faults
    assert h.run().created == 1
    yield h
    h.deliverer.close()
    store.close()


def lost_add(h: Harness, sim: str, phone: str = OLD, country: str = "FR") -> None:
    """c1's add reaches Octopush, its answer is lost: the row waits for its retry."""
    h.put("c1", doc(phone, country), {"a"})
    faults(sim, lost_response_rate=1.0)
    first = h.run(wait=0)
    faults(sim)
    assert (first.retry, first.done) == (1, 0), first
    assert phone in state(sim)["lists"][f"List {country}"]  # applied although unanswered


def test_phone_change_while_the_lost_add_waits_for_its_retry(harness: Harness, sim: str) -> None:
    lost_add(harness, sim)
    harness.put("c1", doc(NEW), {"a"})  # coalesces into the failed row
    stats = harness.run(wait=10)
    assert (stats.waiting, stats.dead) == (0, 0), stats
    seen = state(sim)
    assert seen["lists"]["List FR"] == sorted([NEW, OTHER])  # one contact of c1, the new one
    assert seen["contacts"][OLD]["lists"] == []  # the old number left the list


def test_phone_change_after_the_lost_add_was_given_up(sim: str, tmp_path: Path) -> None:
    """The lost add ended dead (attempts spent); the phone change makes a new row."""
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    h = Harness(config(sim, max_attempts=1), store)
    try:
        h.put("c0", doc(OTHER), {"a"})
        assert h.run().created == 1
        h.put("c1", doc(OLD), {"a"})
        faults(sim, lost_response_rate=1.0)
        first = h.run(wait=0)
        faults(sim)
        assert first.dead == 1, first
        assert OLD in state(sim)["lists"]["List FR"]
        h.put("c1", doc(NEW), {"a"})
        stats = h.run(wait=10)
        assert (stats.created, stats.waiting, stats.dead) == (1, 0, 0), stats
        assert state(sim)["lists"]["List FR"] == sorted([NEW, OTHER])
    finally:
        h.deliverer.close()
        store.close()


def test_phone_change_ingested_while_the_add_is_in_flight(
    harness: Harness, sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change arrives during the call (a new row: in-flight rows are never touched);
    the add's answer is then lost, and both rows are sent with the new phone."""
    real = OctopushClient.create_contacts
    calls: list[int] = []

    def during(self: OctopushClient, *args: Any, **kw: Any) -> Any:
        if not calls:
            harness.put("c1", doc(NEW), {"a"})
        calls.append(1)
        return real(self, *args, **kw)

    monkeypatch.setattr(OctopushClient, "create_contacts", during)
    lost_add(harness, sim)
    assert sorted(r["state"] for r in harness.rows() if r["entity_id"] == "c1") == [
        "failed",
        "pending",
    ]
    stats = harness.run(wait=10)
    assert (stats.waiting, stats.dead) == (0, 0), stats
    assert state(sim)["lists"]["List FR"] == sorted([NEW, OTHER])


def test_crash_after_the_add_then_a_phone_change(
    harness: Harness, sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process died after Octopush applied the add, before the outcome was recorded: only
    the identity noted before the call tells the re-send where the number went."""
    harness.put("c1", doc(OLD), {"a"})
    real = ops.record_outcomes

    def crash(*args: Any, **kw: Any) -> None:
        raise RuntimeError("killed before the commit")

    monkeypatch.setattr(ops, "record_outcomes", crash)
    worker = harness.deliverer.worker(TARGET)
    with pytest.raises(RuntimeError):
        worker.drain(force_flush=True)
    monkeypatch.setattr(ops, "record_outcomes", real)
    assert OLD in state(sim)["lists"]["List FR"]
    with harness.store.transaction() as conn:  # the dead process's claim ends
        ops.expire_claims(conn, TARGET, [worker.worker_id])
    harness.put("c1", doc(NEW), {"a"})
    stats = harness.run(wait=10)
    assert (stats.waiting, stats.dead) == (0, 0), stats
    assert state(sim)["lists"]["List FR"] == sorted([NEW, OTHER])


def test_list_change_while_the_lost_add_waits(harness: Harness, sim: str) -> None:
    """Same phone, another list (the list is a template of the country): the lost add's list
    is left."""
    lost_add(harness, sim)
    harness.put("c1", doc(OLD, country="ES"), {"a"})
    stats = harness.run(wait=10)
    assert (stats.waiting, stats.dead) == (0, 0), stats
    seen = state(sim)
    assert seen["lists"]["List FR"] == [OTHER]
    assert seen["lists"]["List ES"] == [OLD]


def test_leave_with_a_new_phone_after_a_lost_add(harness: Harness, sim: str) -> None:
    """The customer changed phone and left the pipeline before the retry: the number the
    lost add used leaves the list (the new one was never added)."""
    lost_add(harness, sim)
    harness.put("c1", doc(NEW), set())  # the failed row becomes a leave
    stats = harness.run(wait=10)
    assert (stats.left, stats.waiting) == (1, 0), stats
    seen = state(sim)
    assert seen["lists"]["List FR"] == [OTHER]
    assert NEW not in seen["contacts"]


# -- the plan alone -------------------------------------------------------------------------


def test_identity_is_phone_and_list_and_the_retry_answers_it(sim: str) -> None:
    http = httpx.Client(timeout=5)
    target = OctopushTarget(
        "octo", OctopushClient(http, sim + "/v1/public", OCTOPUSH_LOGIN, OCTOPUSH_KEY)
    )
    try:
        add = change("c1", {"phone_number": "+33 6 00 00 00 01"}, list_name="VIP")
        assert target.identity(add) == identity_key(OLD, "VIP") == f"{OLD} VIP"
        assert target.identity(change("c1", {"phone_number": "12"}, list_name="VIP")) is None
        httpx.post(sim + "/_sandbox/load", json={"lists": {"VIP": []}}).raise_for_status()
        faults(sim, lost_response_rate=1.0)
        ctx = MemoryContext()
        ctx.kv_set("octopush:list:VIP", "1")
        [out] = target.apply([add], ctx)
        assert (out.status, out.target_key) == ("retry", f"{OLD} VIP")
    finally:
        faults(sim)
        http.close()


def test_an_unconfirmed_add_is_left_but_a_confirmed_contact_keeps_its_plan() -> None:
    unconfirmed = Known(target_key=identity_key(OLD, "VIP"))
    plan = plan_change(change("c1", {"phone_number": NEW}, list_name="VIP", known=unconfirmed))
    assert [(lv.phone, lv.list_name) for lv in plan.leaves] == [(OLD, "VIP")]
    assert [j.phone for j in plan.joins] == [NEW] and plan.key == NEW
    # a confirmed contact (id known, key a bare phone) is planned as before
    confirmed = Known(
        target_id=OLD,
        target_key=OLD,
        memberships={"p1": frozenset({"VIP"})},
        member_keys={"p1": OLD},
    )
    plan = plan_change(change("c1", {"phone_number": OLD}, list_name="VIP", known=confirmed))
    assert plan.leaves == [] and [j.phone for j in plan.joins] == [OLD]
    # same phone, another list: the lost add's list is left
    plan = plan_change(change("c1", {"phone_number": OLD}, list_name="VIP2", known=unconfirmed))
    assert [(lv.phone, lv.list_name) for lv in plan.leaves] == [(OLD, "VIP")]
    # a delete of a customer whose add is unconfirmed deletes the number it used
    gone = change("c1", None, action="delete", on_delete="delete", known=unconfirmed)
    plan = plan_change(gone)
    assert [(lv.phone, lv.list_name) for lv in plan.leaves] == [(OLD, None)]
