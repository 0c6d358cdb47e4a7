"""Churn through the Contacthub HTTP API: the journal explains the end state and the stream."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.sandbox.churn import Churn, JournalEntry
from syncer.sandbox.contacthub import DEFAULT_NODE_ID as NODE
from syncer.sandbox.contacthub import DEFAULT_TOKEN as TOKEN
from syncer.sandbox.contacthub import DEFAULT_WORKSPACE_ID as WS
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.faults import FaultPlan
from syncer.sandbox.serve import ServedApp


@pytest.fixture
def setup() -> Iterator[tuple[ContacthubSimulator, httpx.Client]]:
    sim = ContacthubSimulator()
    sim.load({"generate": {"customers": 400, "events": 300, "seed": 9}})
    with ServedApp(sim.asgi()) as app:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=app.url, headers=headers, timeout=10) as client:
            yield sim, client


def expected_state(
    initial: dict[str, dict[str, Any]], journal: list[JournalEntry]
) -> dict[str, dict[str, Any]]:
    """Fold the journal (successful entries only) into per-customer facts."""
    state: dict[str, dict[str, Any]] = {
        cid: {
            "vip": "vip" in c["tags"]["manual"],
            "contacts": dict(c["base"]["contacts"]),
            "revoked": set(),
        }
        for cid, c in initial.items()
    }
    for e in journal:
        if not e.ok or e.op == "read":
            continue
        body: dict[str, Any] = e.body or {}
        if e.op == "create":
            assert e.customer_id is not None
            state[e.customer_id] = {
                "vip": "vip" in body["tags"]["manual"],
                "contacts": dict(body["base"]["contacts"]),
                "revoked": set(),
            }
        elif e.op == "delete":
            del state[str(e.customer_id)]
        elif e.op == "contact":
            state[str(e.customer_id)]["contacts"].update(body["base"]["contacts"])
        elif e.op == "consent":
            channel = next(iter(body["consents"]["marketing"]["automatic"]))
            state[str(e.customer_id)]["revoked"].add(channel)
        elif e.op == "tag":
            state[str(e.customer_id)]["vip"] = "vip" in body["tags"]["manual"]
    return state


def check(sim: ContacthubSimulator, initial: dict[str, dict[str, Any]], churn: Churn) -> None:
    store = sim.workspaces[WS]
    want = expected_state(initial, churn.journal)
    assert set(store.customers) == set(want)
    for cid, facts in want.items():
        doc = store.customers[cid]
        assert ("vip" in doc["tags"]["manual"]) == facts["vip"], cid
        for key, value in facts["contacts"].items():
            assert doc["base"]["contacts"].get(key) == value, (cid, key)
        for channel in facts["revoked"]:
            consent = doc["consents"]["marketing"]["automatic"][channel]
            assert consent == {"status": False, "limitation": False, "objection": True}


def replay_stream(client: httpx.Client) -> tuple[dict[str, dict[str, Any]], int]:
    """Rebuild the customers changed through the API from the update stream alone."""
    seen: dict[str, dict[str, Any] | None] = {}
    offset, count = 0, 0
    while True:
        body = client.get(
            f"/hub/v1/workspaces/{WS}/updates", params={"offset": offset, "size": 4000}
        ).json()
        if not body["updates"]:
            return {k: v for k, v in seen.items() if v is not None}, count
        for u in body["updates"]:
            count += 1
            if u["entity"]["type"] == "CUSTOMER":
                data = u["entity"]["data"]
                seen[data["id"]] = None if u["operation"] == "DELETE" else data
        offset = body["nextOffset"]


def test_churn_journal_explains_state_and_stream(
    setup: tuple[ContacthubSimulator, httpx.Client],
) -> None:
    sim, client = setup
    initial = {cid: dict(c) for cid, c in sim.workspaces[WS].customers.items()}
    events_before = len(sim.workspaces[WS].events)
    churn = Churn(client, WS, NODE, seed=3)
    done = churn.step(400)
    assert len(done) >= 400 and churn.journal == done
    ops = Counter(e.op for e in done)
    assert {"create", "contact", "consent", "tag", "delete", "event"} <= set(ops)
    assert all(e.ok for e in done), [e for e in done if not e.ok][:3]
    check(sim, initial, churn)
    # the stream holds exactly one update per API write (+ one per cascaded event)
    writes = sum(1 for e in done if e.op != "read")
    deleted = {e.customer_id for e in done if e.op == "delete"}
    replayed, n_updates = replay_stream(client)
    store = sim.workspaces[WS]
    cascaded = events_before + ops["event"] - len(store.events)
    assert n_updates == writes + cascaded
    for cid, data in replayed.items():
        assert data == store.customers[cid]
    assert not deleted & set(replayed)
    # determinism: the same seed on the same data does the same things
    assert [e.op for e in done[:50]] == [e.op for e in _dry_ops(seed=3)[:50]]


def _dry_ops(seed: int) -> list[JournalEntry]:
    sim = ContacthubSimulator()
    sim.load({"generate": {"customers": 400, "events": 300, "seed": 9}})
    with (
        ServedApp(sim.asgi()) as app,
        httpx.Client(base_url=app.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
    ):
        return Churn(client, WS, NODE, seed=seed).step(60)


def test_churn_survives_errors(setup: tuple[ContacthubSimulator, httpx.Client]) -> None:
    sim, client = setup
    initial = {cid: dict(c) for cid, c in sim.workspaces[WS].customers.items()}
    churn = Churn(client, WS, NODE, seed=4)
    churn.step(1)  # loads the known ids before faults start
    sim.faults.set_plan(FaultPlan(error_rate=0.3, seed=1))
    churn.step(150)
    sim.faults.set_plan(FaultPlan())
    failed = [e for e in churn.journal if not e.ok]
    assert failed and all(e.status in (500, 502, 503) for e in failed)
    check(sim, initial, churn)
