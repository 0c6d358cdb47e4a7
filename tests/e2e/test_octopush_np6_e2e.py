"""End to end over real HTTP: Contacthub sandbox -> ingest -> engine -> Octopush and NP6 sandboxes.

Generated customers and completedOrder events go through one sync; then churn (phone changes,
phones removed, country changes = list changes, deleted customers) and a second sync. The
Octopush lists and the NP6 targets must then be exactly what the test computes on its own from
the generated data (plain Python and ``phonenumbers``, not the mapper):

* Octopush list ``sms-<country>`` = E.164 phones of the live customers whose mobile phone is
  valid international (``+``) and who have a country;
* NP6: one target per lower-cased, trimmed customer e-mail of an order; ``orderId`` = that of
  the e-mail's last order in stream order.

The CI variant is small; ``-m slow`` runs the 10,000 customers / 20,000 orders one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import pytest

from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.contacthub.behaviour import DEFAULT_NODE_ID, DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID
from syncer.sandbox.datagen import generate_dataset
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp

pytest.importorskip("syncer.engine.deliver", reason="the delivery engine is not there yet")
pytest.importorskip("syncer.engine.ingest", reason="ingest is not there yet")
pytest.importorskip("syncer.source.contacthub", reason="the Contacthub client is not there yet")

from syncer.config.models import SyncerConfig
from syncer.engine.apply import Applier, rules_from_config
from syncer.engine.deliver import Deliverer
from syncer.engine.ingest import Ingestor
from syncer.source.contacthub import ContacthubClient
from syncer.state.store import Store

NP6_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")  # what an NP6 email field takes


def e164(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw.strip().startswith("+"):
        return None
    try:
        number = phonenumbers.parse(raw.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def dataset(n_customers: int, n_orders: int, seed: int) -> tuple[list[Any], list[Any]]:
    """Customers with unique valid phones and e-mails (later duplicates dropped: two customers
    sharing an NP6 unicity or an Octopush number have no single right answer) and
    ``n_orders`` orders."""
    customers, events = generate_dataset(
        n_customers, n_orders * 4 + 500, seed=seed, node_id=DEFAULT_NODE_ID
    )
    orders = [e for e in events if e["type"] == "completedOrder"][:n_orders]
    assert len(orders) == n_orders
    seen: set[str] = set()
    for customer in customers:
        contacts = customer["base"].get("contacts") or {}
        phone = e164(contacts.get("mobilePhone"))
        if phone is not None and phone in seen:
            contacts["mobilePhone"] = None
        elif phone is not None:
            seen.add(phone)
        email = (contacts.get("email") or "").strip().lower()
        if email and email in seen:
            contacts["email"] = None
        elif email:
            seen.add(email)
    return customers, orders


def churn(customers: list[Any], orders: list[Any], seed: int) -> tuple[dict[str, Any], set[str]]:
    """PATCH bodies by customer id, and ids to delete (never a customer with orders)."""
    rng = random.Random(seed)
    with_orders = {o["customerId"] for o in orders}
    patches: dict[str, Any] = {}
    deleted: set[str] = set()
    for i, customer in enumerate(customers):
        roll = rng.random()
        if roll < 0.15:
            patches[customer["id"]] = {"base": {"contacts": {"mobilePhone": f"+39350{i:07d}"}}}
        elif roll < 0.20:
            patches[customer["id"]] = {"base": {"contacts": {"mobilePhone": None}}}
        elif roll < 0.25:
            country = rng.choice(["IT", "FR", "ES"])
            patches[customer["id"]] = {"base": {"address": {"country": country}}}
        elif roll < 0.28 and customer["id"] not in with_orders:
            deleted.add(customer["id"])
    return patches, deleted


def merge(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            merge(doc[key], value)
        else:
            doc[key] = value


def expected_lists(customers: list[Any]) -> dict[str, set[str]]:
    lists: dict[str, set[str]] = {}
    for customer in customers:
        base = customer["base"]
        phone = e164((base.get("contacts") or {}).get("mobilePhone"))
        country = (base.get("address") or {}).get("country")
        if phone and country:
            lists.setdefault(f"sms-{country}", set()).add(phone)
    return lists


def expected_np6(customers: list[Any], orders: list[Any]) -> dict[str, str]:
    email_of = {c["id"]: (c["base"].get("contacts") or {}).get("email") for c in customers}
    last: dict[str, str] = {}
    for order in orders:
        email = email_of.get(order["customerId"])
        if not email:
            continue
        email = email.strip().lower()
        if NP6_EMAIL.match(email):
            last[email] = order["properties"]["orderId"]
    return last


def config(ch: str, octo: str, np6: str, state: str) -> SyncerConfig:
    return SyncerConfig.model_validate(
        {
            "version": 1,
            "state": {"url": state},
            "source": {
                "type": "contacthub",
                "base_url": ch + "/hub/v1",
                "workspace_id": DEFAULT_WORKSPACE_ID,
                "node_id": DEFAULT_NODE_ID,
                "token": DEFAULT_TOKEN,
                "page_size": 4000,
            },
            "targets": {
                "octo": {
                    "type": "octopush",
                    "base_url": octo + "/v1/public",
                    "api_login": "sandbox@example.com",
                    "api_key": "sandbox-octopush-key",
                    "batch_size": 500,
                },
                "np6": {
                    "type": "np6",
                    "base_url": np6,
                    "api_key": "sandbox-np6-key",
                    "import": {"binding": 1234, "flush_every": "1s", "max_rows": 50000},
                },
            },
            "pipelines": [
                {
                    "name": "sms",
                    "target": "octo",
                    "entity": "customer",
                    "when": {"present": ["base.contacts.mobilePhone", "base.address.country"]},
                    "fields": {
                        "phone_number": "base.contacts.mobilePhone",
                        "first_name": "base.firstName",
                    },
                    "list": "sms-{{ base.address.country }}",
                    "on_delete": "remove_from_list",
                },
                {
                    "name": "orders",
                    "target": "np6",
                    "entity": "event",
                    "event_types": ["completedOrder"],
                    "when": {"present": ["customer.base.contacts.email"]},
                    "fields": {
                        "1001": "{{ customer.base.contacts.email | trim | lower }}",
                        "1002": "properties.orderId",
                    },
                },
            ],
            # the engine's default batch size (200): batch targets still get whole calls
        }
    )


@pytest.fixture
def sims() -> Iterator[dict[str, ServedApp]]:
    ch, octo, np6 = ContacthubSimulator(), OctopushSimulator(), Np6Simulator()
    with ServedApp(ch.asgi()) as a, ServedApp(octo.asgi()) as b, ServedApp(np6.asgi()) as c:
        httpx.post(
            c.url + "/_sandbox/load", json={"behaviour": {"processing_seconds": 0.05}}
        ).raise_for_status()
        yield {"ch": a, "octo": b, "np6": c}


def sync(cfg: SyncerConfig, store: Store) -> None:
    """Ingest to the end of the stream, then deliver everything (``sync --once``)."""
    with httpx.Client(
        base_url=cfg.source.base_url,
        timeout=60,
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
    ) as http:
        client = ContacthubClient(http, cfg.source.workspace_id, cfg.source.node_id)
        Ingestor(store, client, Applier(rules_from_config(cfg)), page_size=4000).run_to_end()
    with Deliverer(cfg, store, run_id="e2e") as deliverer:
        deliverer.run_all_once(force_flush=True, wait_for_retries=10)


def run_e2e(sims: dict[str, ServedApp], tmp_path: Path, n_customers: int, n_orders: int) -> None:
    ch = sims["ch"].url
    customers, orders = dataset(n_customers, n_orders, seed=6)
    httpx.post(
        ch + "/_sandbox/load",
        timeout=120,
        json={"customers": customers, "events": orders, "append_updates": True},
    ).raise_for_status()
    state = f"sqlite:///{tmp_path / 'state.db'}"
    cfg = config(ch, sims["octo"].url, sims["np6"].url, state)
    store = Store(state)
    try:
        sync(cfg, store)
        # call budgets of the first sync: one NP6 import for all orders (< max_rows), and
        # Octopush adds in full calls of batch_size, plus list creation
        np6_first = httpx.get(sims["np6"].url + "/_sandbox/state", timeout=60).json()
        assert np6_first["executionCount"] == 1
        octo_first = httpx.get(sims["octo"].url + "/_sandbox/state", timeout=60).json()
        lists = {name: len(phones) for name, phones in octo_first["lists"].items()}
        calls = httpx.get(sims["octo"].url + "/_sandbox/requests", timeout=60).json()["counts"]
        creates = calls.get("POST /v1/public/contact/create", 0)
        assert creates <= sum(-(-n // 500) for n in lists.values()) + len(lists), (calls, lists)
        patches, deleted = churn(customers, orders, seed=7)
        api = ch + f"/hub/v1/workspaces/{DEFAULT_WORKSPACE_ID}/customers/"
        auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
        with httpx.Client(timeout=30, headers=auth) as http:
            for cid, patch in patches.items():
                http.patch(api + cid, json=patch).raise_for_status()
            for cid in deleted:
                http.delete(api + cid).raise_for_status()
        sync(cfg, store)
    finally:
        store.close()
    by_id = {c["id"]: c for c in customers}
    for cid, patch in patches.items():
        merge(by_id[cid], patch)
    live = [c for c in customers if c["id"] not in deleted]

    octo = httpx.get(sims["octo"].url + "/_sandbox/state", timeout=60).json()
    got_lists = {name: set(phones) for name, phones in octo["lists"].items() if phones}
    assert got_lists == expected_lists(live)

    np6 = httpx.get(sims["np6"].url + "/_sandbox/state", timeout=60).json()
    got_np6 = {t["fields"]["1001"]: t["fields"].get("1002") for t in np6["targets"]}
    assert got_np6 == expected_np6(customers, orders)


def test_e2e_small(sims: dict[str, ServedApp], tmp_path: Path) -> None:
    run_e2e(sims, tmp_path, 1_000, 2_000)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_e2e_10k_customers_20k_orders(sims: dict[str, ServedApp], tmp_path: Path) -> None:
    run_e2e(sims, tmp_path, 10_000, 20_000)


def octopush_only(ch: str, octo: str, state: str, batch: int) -> SyncerConfig:
    """The Octopush half of :func:`config` (``sms-<country>``: 8 lists) with ``batch``."""
    full = config(ch, octo, "http://np6.invalid", state)
    data = full.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data["targets"] = {"octo": {**data["targets"]["octo"], "batch_size": batch}}
    data["targets"]["octo"]["api_key"] = "sandbox-octopush-key"
    data["pipelines"] = [p for p in data["pipelines"] if p["target"] == "octo"]
    return SyncerConfig.model_validate(data)


def test_e2e_octopush_calls_stay_full_over_8_lists(tmp_path: Path) -> None:
    """The short form of the 10k budget: a claim spread over 8 lists (``sms-<country>``, the
    generator's country spellings) must not make 8 partial calls; every ``contact/create`` but
    the last of each list is full."""
    batch = 50
    ch_sim, octo_sim = ContacthubSimulator(), OctopushSimulator()
    with ServedApp(ch_sim.asgi()) as ch, ServedApp(octo_sim.asgi()) as octo:
        customers, _ = dataset(1_000, 1, seed=6)
        httpx.post(
            ch.url + "/_sandbox/load",
            timeout=60,
            json={"customers": customers, "events": [], "append_updates": True},
        ).raise_for_status()
        state = f"sqlite:///{tmp_path / 'state.db'}"
        store = Store(state)
        try:
            sync(octopush_only(ch.url, octo.url, state, batch), store)
        finally:
            store.close()
        got = httpx.get(octo.url + "/_sandbox/state", timeout=60).json()
        calls = httpx.get(octo.url + "/_sandbox/requests", timeout=60).json()["counts"]
    lists = {name: set(phones) for name, phones in got["lists"].items() if phones}
    assert lists == expected_lists(customers)
    assert len(lists) == 8, sorted(lists)
    added = sum(len(p) for p in lists.values())
    creates = calls.get("POST /v1/public/contact/create", 0)
    assert creates <= -(-added // batch) + len(lists), (creates, added, calls)
    # and each list exactly as few calls as its size needs
    assert creates == sum(-(-len(p) // batch) for p in lists.values()), (creates, calls)
