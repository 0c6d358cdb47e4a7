"""The Octopush target against the Octopush simulator over real HTTP."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from octopush_np6_fakes import MemoryContext, admin, by_id, change, known_after

from syncer.errors import AuthError
from syncer.sandbox.octopush import OctopushError, OctopushSimulator
from syncer.sandbox.serve import ServedApp
from syncer.targets.base import Known
from syncer.targets.octopush import OctopushClient, OctopushTarget

API = "/v1/public"


class PoisonOctopush(OctopushSimulator):
    """Rejects a whole ``contact/create`` (400/117) when it holds a poisoned number."""

    def __init__(self) -> None:
        super().__init__()
        self.poison: set[str] = set()

    async def contact_create(self, body: dict[str, Any]) -> Any:
        contacts = body.get("contacts") or []
        bad = [c.get("phone_number") for c in contacts if c.get("phone_number") in self.poison]
        if bad:
            raise OctopushError(400, 117, f"Invalid phone number(s): {', '.join(bad)}")
        return await super().contact_create(body)


def phone(i: int) -> str:
    return f"+336{i:08d}"


@pytest.fixture(scope="module")
def sim() -> PoisonOctopush:
    return PoisonOctopush()


@pytest.fixture(scope="module")
def served(sim: PoisonOctopush) -> Iterator[ServedApp]:
    with ServedApp(sim.asgi()) as app:
        yield app


@pytest.fixture
def http(served: ServedApp, sim: PoisonOctopush) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        client.post(served.url + "/_sandbox/reset").raise_for_status()
        sim.poison = set()
        yield client


def make_target(served: ServedApp, http: httpx.Client, batch_size: int = 500) -> OctopushTarget:
    client = OctopushClient(http, served.url + API, sim_login(), "sandbox-octopush-key")
    return OctopushTarget("octo", client, batch_size)


def sim_login() -> str:
    return "sandbox@example.com"


def state(served: ServedApp, http: httpx.Client) -> dict[str, Any]:
    return admin(http, served.url + "/_sandbox/state")


def counts(served: ServedApp, http: httpx.Client) -> dict[str, int]:
    data: dict[str, int] = admin(http, served.url + "/_sandbox/requests")["counts"]
    return data


def add(i: int, list_name: str = "VIP IT", **kw: Any) -> Any:
    fields = {"phone_number": phone(i), "first_name": f"N{i}"}
    return change(f"c{i}", fields, list_name=list_name, **kw)


def test_adds_create_the_list_once_and_report_item_status(
    served: ServedApp, http: httpx.Client
) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    first = [add(i) for i in range(3)]
    outcomes = target.apply(first, ctx)
    assert [o.status for o in outcomes] == ["done"] * 3
    assert {o.detail for o in outcomes} == {"created"}
    assert outcomes[0].target_key == phone(0) and outcomes[0].memberships == {"VIP IT"}
    again = target.apply([add(i) for i in range(4)], ctx)
    assert [o.detail for o in again] == ["updated"] * 3 + ["created"]
    assert counts(served, http) == {
        f"POST {API}/contact-list/create": 1,
        f"POST {API}/contact/create": 2,
    }
    assert state(served, http)["lists"]["VIP IT"] == sorted(phone(i) for i in range(4))


@pytest.mark.parametrize(("n", "lists", "batch"), [(1050, 1, 500), (1000, 3, 500), (77, 2, 10)])
def test_call_budget_for_adds(
    served: ServedApp, http: httpx.Client, n: int, lists: int, batch: int
) -> None:
    target, ctx = make_target(served, http, batch), MemoryContext()
    changes = [add(i, list_name=f"L{i % lists}") for i in range(n)]
    assert all(o.status == "done" for o in target.apply(changes, ctx))
    calls = counts(served, http)
    creates = calls[f"POST {API}/contact/create"]
    assert calls[f"POST {API}/contact-list/create"] == lists
    # contact/create: one list per call, so per-list remainders add at most lists - 1 calls
    assert creates <= math.ceil(n / batch) + lists - 1
    # once the lists exist (remembered in ctx.kv), n adds cost <= ceil(n / batch) + lists
    http.delete(served.url + "/_sandbox/requests")
    target.apply([add(i, list_name=f"L{i % lists}") for i in range(n)], ctx)
    assert sum(counts(served, http).values()) <= math.ceil(n / batch) + lists
    assert sum(len(v) for v in state(served, http)["lists"].values()) == n


def test_phone_change_leaves_under_old_number_and_list_change_leaves_old_list(
    served: ServedApp, http: httpx.Client
) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    [created] = target.apply([add(1, list_name="A")], ctx)
    known = known_after(created)
    moved = change("c1", {"phone_number": phone(2)}, list_name="A", known=known)
    [outcome] = target.apply([moved], ctx)
    assert outcome.status == "done" and outcome.member_key == phone(2)
    assert state(served, http)["lists"]["A"] == [phone(2)]
    renamed = change("c1", {"phone_number": phone(2)}, list_name="B", known=known_after(outcome))
    [outcome] = target.apply([renamed], ctx)
    lists = state(served, http)["lists"]
    assert lists["A"] == [] and lists["B"] == [phone(2)]
    assert outcome.memberships == {"B"}


def test_list_kept_when_another_pipeline_holds_it(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    target.apply([add(1, list_name="A")], ctx)
    known = Known(
        target_key=phone(1),
        memberships={"p1": frozenset({"A"}), "p2": frozenset({"A"})},
        member_keys={"p1": phone(1), "p2": phone(1)},
    )
    [left] = target.apply([change("c1", None, action="leave", known=known)], ctx)
    assert left.status == "done" and left.memberships == frozenset()
    assert state(served, http)["lists"]["A"] == [phone(1)]


def test_invalid_records_do_not_fail_the_batch(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    bad_phone = change("x1", {"phone_number": "0612345678"}, list_name="A")
    no_phone = change("x2", {"first_name": "Ana"}, list_name="A")
    long_list = change("x3", {"phone_number": phone(3)}, list_name="L" * 31)
    long_tag = change("x4", {"phone_number": phone(4)}, list_name="A", tag="T" * 21)
    good = add(5, list_name="A")
    out = by_id(target.apply([bad_phone, no_phone, long_list, long_tag, good], ctx))
    assert out[bad_phone.delivery_id].status == "invalid"
    assert "E.164" in (out[bad_phone.delivery_id].error or "")
    assert out[no_phone.delivery_id].status == "invalid"
    assert "31 characters" in (out[long_list.delivery_id].error or "")
    assert "tag" in (out[long_tag.delivery_id].error or "")
    assert out[good.delivery_id].status == "done"
    assert state(served, http)["lists"]["A"] == [phone(5)]


def test_whole_batch_rejection_is_split_to_isolate_bad_contacts(
    served: ServedApp, http: httpx.Client, sim: PoisonOctopush
) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    changes = [add(i) for i in range(16)]
    sim.poison = {phone(3), phone(11)}
    out = by_id(target.apply(changes, ctx))
    dead = {c.entity_id for c in changes if out[c.delivery_id].status == "dead"}
    assert dead == {"c3", "c11"}
    assert "117" in (out[changes[3].delivery_id].error or "")
    assert len(state(served, http)["lists"]["VIP IT"]) == 14
    assert counts(served, http)[f"POST {API}/contact/create"] <= 1 + 2 * 2 * 4


def test_leave_and_delete(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    created = by_id(target.apply([add(1, list_name="A"), add(2, list_name="A")], ctx))
    k1, k2 = (known_after(o) for o in created.values())
    leave = change("c1", None, action="delete", on_delete="remove_from_list", known=k1)
    delete = change("c2", None, action="delete", on_delete="delete", known=k2)
    out = by_id(target.apply([leave, delete], ctx))
    assert out[leave.delivery_id].detail == "left"
    assert out[delete.delivery_id].detail == "deleted" and out[delete.delivery_id].forget
    st = state(served, http)
    assert st["lists"]["A"] == [] and list(st["contacts"]) == [phone(1)]


def test_delete_chunks_of_200(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    outcomes = target.apply([add(i, list_name="A") for i in range(450)], ctx)
    leaves = [
        change(f"c{i}", None, action="leave", known=known_after(o)) for i, o in enumerate(outcomes)
    ]
    assert all(o.status == "done" for o in target.apply(leaves, ctx))
    assert counts(served, http)[f"DELETE {API}/contact/delete"] == 3
    assert state(served, http)["lists"]["A"] == []


def test_vanished_list_is_created_again(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    target.apply([add(1, list_name="A")], ctx)
    http.request(
        "DELETE",
        served.url + API + "/contact-list/delete",
        json={"list_name": "A"},
        headers={"api-login": sim_login(), "api-key": "sandbox-octopush-key"},
    )
    [outcome] = target.apply([add(2, list_name="A")], ctx)
    assert outcome.status == "done"
    assert state(served, http)["lists"]["A"] == [phone(2)]


def test_rate_limit_and_server_errors_are_retries(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    http.put(served.url + "/_sandbox/faults", json={"rate_limit": 1.0}).raise_for_status()
    outcomes = target.apply([add(1, list_name="A"), add(2, list_name="B")], ctx)
    limited = [o for o in outcomes if o.status == "retry"]
    assert limited and all(o.rate_limited and (o.retry_after or 0) >= 1 for o in limited)
    http.put(served.url + "/_sandbox/faults", json={"outage": True}).raise_for_status()
    [down] = target.apply([add(3, list_name="A")], ctx)
    assert down.status == "retry" and not down.rate_limited


def test_check_and_bad_credentials(served: ServedApp, http: httpx.Client) -> None:
    make_target(served, http).check()
    bad = OctopushTarget("octo", OctopushClient(http, served.url + API, "x@y", "wrong"))
    with pytest.raises(AuthError):
        bad.check()
    with pytest.raises(AuthError):
        bad.apply([add(1)], MemoryContext())
