"""``--seed`` fixes the churn: the same seed picks the same customers, even when a customer it
created (whose id the simulator draws at random) comes before the first pick."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from syncer.demo.landed import _nrs360
from syncer.sandbox.churn import Churn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import NODE, TOKEN, WS, served_contacthub


def picks(seed: int) -> list[tuple[str, str]]:
    """(operation, customer) of every churn write; created customers by creation order."""
    with served_contacthub() as (sim, served):
        sim.load({"generate": {"customers": 30, "events": 0, "seed": 2}})
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            churn = Churn(c, WS, NODE, seed, weights={"create": 3.0, "tag": 1.0, "delete": 1.0})
            journal = churn.step(25)
    created: dict[str, str] = {}
    out = []
    for entry in journal:
        if entry.op == "create":
            assert entry.customer_id is not None
            created[entry.customer_id] = f"new#{len(created)}"
            out.append(("create", created[entry.customer_id]))
        else:
            out.append((entry.op, created.get(entry.customer_id or "", entry.customer_id or "")))
    return out


def test_the_same_seed_picks_the_same_customers() -> None:
    first = picks(7)
    assert first[0][0] == "create"  # a create comes first: the case that used to differ
    assert any(who.startswith("new#") for op, who in first if op != "create")
    assert picks(7) == first


def test_landed_samples_do_not_depend_on_delivery_order() -> None:
    contacts = [
        {"id": i, "email": f"{name}@example.com", "groups": [{"name": "G"}]}
        for i, name in enumerate(["d", "b", "a", "c"])
    ]
    shuffled = [{**c, "id": 10 - c["id"]} for c in reversed(contacts)]
    assert _nrs360({"contacts": contacts}).samples == _nrs360({"contacts": shuffled}).samples
    assert [s["email"] for s in _nrs360({"contacts": contacts}).samples] == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]
