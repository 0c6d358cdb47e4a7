"""Two customers, one 360NRS contact: the same e-mail twice (two sources, or one source's
duplicate). Each customer's writes keep the other's groups, and neither a leave nor a forget of
one takes the contact away from the other (found by the two-source demo: a brand-fr customer's
leave deleted the contact a brand-it customer with the same e-mail was still in).

Real engine (ingest ``Applier`` + ``Deliverer``), a 360NRS simulator that refuses a second
contact with one e-mail (its default), over real sockets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from deliver_helpers import PASSWORD, USER, Feed, admin, config, nrs_target, pipeline

from syncer.engine.deliver import Deliverer
from syncer.sandbox.nrs360 import Nrs360Simulator
from syncer.sandbox.serve import ServedApp
from syncer.state import erasure_ops, retention_ops
from syncer.state.store import Store

EMAIL = "shared@example.com"
# which customer's data the contact holds: the newest ``updatedAt`` (docs/sources.md)
ANA_AT, BEA_AT = "2026-03-01T10:00:00.000+0000", "2026-03-02T10:00:00.000+0000"


@pytest.fixture
def nrs() -> Iterator[str]:
    with ServedApp(Nrs360Simulator(username=USER, api_password=PASSWORD).asgi()) as app:
        yield app.url


def contacts(url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = admin(url, "state")["contacts"]
    return [
        {"email": c["email"], "name": c.get("name"), "groups": {g["name"] for g in c["groups"]}}
        for c in found
    ]


def setup(nrs: str, store: Store) -> tuple[Feed, Deliverer]:
    cfg = config({"nrs": nrs_target(nrs)}, [pipeline("newsletter", "nrs"), pipeline("vip", "nrs")])
    return Feed(cfg, store), Deliverer(cfg, store, run_id="t")


def deliver(deliverer: Deliverer) -> None:
    stats = deliverer.run_all_once(wait_for_retries=5)["nrs"]
    assert stats.dead == 0 and stats.waiting == 0, stats


@pytest.mark.parametrize("together", [True, False], ids=["one batch", "one after the other"])
def test_each_customers_groups_stay_on_the_shared_contact(
    nrs: str, store: Store, together: bool
) -> None:
    feed, deliverer = setup(nrs, store)
    with deliverer:
        if together:
            feed.put([("c1", {"email": EMAIL, "name": "Ana", "updatedAt": ANA_AT}, {"newsletter"})])
            feed.put([("c2", {"email": EMAIL, "name": "Bea", "updatedAt": BEA_AT}, {"vip"})])
        else:
            feed.put([("c1", {"email": EMAIL, "name": "Ana", "updatedAt": ANA_AT}, {"newsletter"})])
            deliver(deliverer)
            feed.put([("c2", {"email": EMAIL, "name": "Bea", "updatedAt": BEA_AT}, {"vip"})])
        deliver(deliverer)
        assert contacts(nrs) == [
            {"email": EMAIL, "name": "Bea", "groups": {"G-newsletter", "G-vip"}}
        ]
        feed.put(
            [("c1", {"email": EMAIL, "name": "Ana", "updatedAt": ANA_AT}, set())]
        )  # c1 leaves newsletter
        deliver(deliverer)
        # c2 still holds the contact: it stays, in c2's group
        assert [c["groups"] for c in contacts(nrs)] == [{"G-vip"}]
        feed.put(
            [("c2", {"email": EMAIL, "name": "Bea", "updatedAt": BEA_AT}, set())]
        )  # the last holder leaves
        deliver(deliverer)
    assert contacts(nrs) == []


def test_a_forgotten_customer_leaves_the_contact_to_the_other(nrs: str, store: Store) -> None:
    feed, deliverer = setup(nrs, store)
    with deliverer:
        feed.put([("c2", {"email": EMAIL, "name": "Bea", "updatedAt": ANA_AT}, {"vip"})])
        deliver(deliverer)
        # newer: its name
        feed.put([("c1", {"email": EMAIL, "name": "Ana", "updatedAt": BEA_AT}, {"newsletter"})])
        deliver(deliverer)
        assert contacts(nrs) == [
            {"email": EMAIL, "name": "Ana", "groups": {"G-newsletter", "G-vip"}}
        ]
        feed.delete("c1")
        deliver(deliverer)
    # c2's contact stays, in c2's group only, with c2's data written again (not c1's name)
    assert contacts(nrs) == [{"email": EMAIL, "name": "Bea", "groups": {"G-vip"}}]
    with store.reader() as conn:
        [record] = erasure_ops.ledger(conn, ids=["c1"])
    assert record.state == "acknowledged" and {t.state for t in record.targets} == {"done"}
    assert retention_ops.scrub(store) == 1
