"""What Octopush answers per item, and adds of known contacts whose answer was lost.

* ``contact/create`` answers 201 with one ``status`` per contact (``added``, ``updated``,
  ``skipped``; octopush-contact-create.es.txt). syncer never sends ``do_not_overwrite``, so a
  ``skipped`` item was not applied: that customer is dead with the reason, the others of the
  call are done. The simulator's ``invalid_number=skip_item`` answers so for a number the
  account refuses (``refused_numbers``); ``refuse_call`` (400 for the whole call) is split
  until the bad number is alone: same outcome.
* A known contact (confirmed in list A) moves to list B; that add reaches Octopush but its
  answer is lost, and the customer moves on to C before the retry: the number must end in C
  only, not stay in B.

Real ``Applier`` and ``Deliverer``, SQLite state, the Octopush simulator over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract import TARGET, Harness, one_target_config
from octopush_np6_fakes import OCTOPUSH_KEY, OCTOPUSH_LOGIN, octopush_target

from syncer.config import SyncerConfig
from syncer.engine.deliver import TargetStats
from syncer.errors import RetryableError
from syncer.sandbox.octopush import OctopushBehaviour, OctopushSimulator
from syncer.sandbox.serve import ServedApp
from syncer.state.store import Store
from syncer.targets.octopush import OctopushClient

ONE, TWO, THREE, FOUR = "+33600000001", "+33600000002", "+33600000003", "+33600000004"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OctopushSimulator, str]]:
    sim = OctopushSimulator(api_login=OCTOPUSH_LOGIN, api_key=OCTOPUSH_KEY)
    with ServedApp(sim.asgi()) as app:
        yield sim, app.url


@pytest.fixture
def sim(served: tuple[OctopushSimulator, str]) -> Iterator[str]:
    simulator, url = served
    httpx.post(url + "/_sandbox/reset").raise_for_status()
    simulator.behaviour = OctopushBehaviour()
    yield url
    simulator.behaviour = OctopushBehaviour()
    httpx.put(url + "/_sandbox/faults", json={}).raise_for_status()


def state(sim: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(sim + "/_sandbox/state").json()
    return data


def config(sim: str) -> SyncerConfig:
    pipeline = {
        "name": "a",
        "target": TARGET,
        "entity": "customer",
        "when": {"tags_any": ["a"]},
        "fields": {"phone_number": "base.contacts.mobilePhone"},
        "list": "List {{ base.address.country }}",
        "on_delete": "remove_from_list",
    }
    return one_target_config(
        octopush_target(sim, max_attempts=6),
        [pipeline],
        {"batch_size": 50, "backoff_base": 0.05, "backoff_max": 0.2},
    )


def doc(phone: str, country: str = "FR") -> dict[str, Any]:
    return {"base": {"contacts": {"mobilePhone": phone}, "address": {"country": country}}}


@pytest.fixture
def harness(sim: str, tmp_path: Path) -> Iterator[Harness]:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    h = Harness(config(sim), store)
    yield h
    h.deliverer.close()
    store.close()


@pytest.mark.parametrize("reading", ["skip_item", "refuse_call"])
def test_an_item_octopush_did_not_apply_is_dead_with_its_reason(
    harness: Harness, sim: str, reading: str
) -> None:
    httpx.put(sim + "/_sandbox/behaviour", json={"invalid_number": reading}).raise_for_status()
    httpx.post(sim + "/_sandbox/load", json={"refused_numbers": [TWO]}).raise_for_status()
    for n, phone in enumerate((ONE, TWO, THREE)):
        harness.put(f"c{n}", doc(phone), {"a"})
    stats = harness.run(wait=0)
    assert (stats.created, stats.dead, stats.skipped) == (2, 1, 0), stats
    [dead] = harness.dead()
    assert dead.entity_id == "c1"
    expected = "skipped" if reading == "skip_item" else "117"
    assert TWO in (dead.last_error or "") and expected in (dead.last_error or ""), dead
    assert state(sim)["lists"]["List FR"] == [ONE, THREE]


def run_with_adds_lost(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> TargetStats:
    """One delivery run where every ``contact/create`` is applied but its answer is lost (as
    the simulator's ``lost_response_rate`` does, without also losing the other calls)."""
    real = OctopushClient.create_contacts

    def lost(self: OctopushClient, *args: Any, **kw: Any) -> Any:
        real(self, *args, **kw)
        raise RetryableError("Octopush POST /contact/create: RemoteProtocolError (test)")

    with monkeypatch.context() as patch:
        patch.setattr(OctopushClient, "create_contacts", lost)
        return harness.run(wait=0)


def test_lost_add_of_a_known_contact_then_a_list_change(
    harness: Harness, sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.put("c0", doc(FOUR, "IT"), {"a"})  # the lists exist before the faults
    harness.put("c1", doc(ONE, "FR"), {"a"})
    harness.put("c2", doc(THREE, "ES"), {"a"})
    assert harness.run().created == 3

    harness.put("c1", doc(ONE, "ES"), {"a"})  # FR -> ES: applied, answer lost
    first = run_with_adds_lost(harness, monkeypatch)
    assert (first.retry, first.done) == (1, 0), first
    assert ONE in state(sim)["lists"]["List ES"]

    harness.put("c1", doc(ONE, "IT"), {"a"})  # ES -> IT before the retry
    stats = harness.run(wait=10)
    assert (stats.waiting, stats.dead) == (0, 0), stats
    lists = state(sim)["lists"]
    assert state(sim)["contacts"][ONE]["lists"] == ["List IT"], lists


def test_lost_add_of_a_known_contact_then_a_phone_and_list_change(
    harness: Harness, sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.put("c1", doc(ONE, "FR"), {"a"})
    harness.put("c9", doc(FOUR, "ES"), {"a"})  # the lists exist before the faults
    harness.put("c8", doc(THREE, "IT"), {"a"})
    assert harness.run().created == 3

    harness.put("c1", doc(TWO, "ES"), {"a"})  # new phone and list: applied, answer lost
    first = run_with_adds_lost(harness, monkeypatch)
    assert (first.retry, first.done) == (1, 0), first
    assert TWO in state(sim)["lists"]["List ES"] and state(sim)["contacts"][ONE]["lists"] == []

    harness.put("c1", doc(TWO, "IT"), {"a"})  # ES -> IT before the retry
    stats = harness.run(wait=10)
    assert (stats.waiting, stats.dead) == (0, 0), stats
    contacts = state(sim)["contacts"]
    assert contacts[TWO]["lists"] == ["List IT"], contacts[TWO]
    assert contacts[ONE]["lists"] == []
    assert state(sim)["lists"]["List ES"] == [FOUR]


def test_the_plan_of_a_known_contact_with_an_unconfirmed_add() -> None:
    from octopush_np6_fakes import change

    from syncer.targets.base import Known
    from syncer.targets.octopush.plan import identity_key, plan_change

    known = Known(
        target_id=ONE,
        target_key=identity_key(ONE, "List ES"),  # the add into ES whose answer was lost
        memberships={"p1": frozenset({"List FR"})},
        member_keys={"p1": ONE},
    )
    plan = plan_change(change("c1", {"phone_number": ONE}, list_name="List IT", known=known))
    assert [(lv.phone, lv.list_name) for lv in plan.leaves] == [(ONE, "List ES"), (ONE, "List FR")]
    # the retry of that very add: only the confirmed list is left
    plan = plan_change(change("c1", {"phone_number": ONE}, list_name="List ES", known=known))
    assert [(lv.phone, lv.list_name) for lv in plan.leaves] == [(ONE, "List FR")]
    # a confirmed contact's key is its phone: nothing unconfirmed
    confirmed = Known(target_id=ONE, target_key=ONE, memberships=known.memberships)
    plan = plan_change(change("c1", {"phone_number": ONE}, list_name="List FR", known=confirmed))
    assert plan.leaves == []
