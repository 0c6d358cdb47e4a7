"""End to end over real HTTP: Contacthub sandbox -> backfill + stream -> engine -> 360NRS sandbox.

Generated customers are loaded into Contacthub without stream updates (so only the backfill
finds them) and synced; then churn goes through the Contacthub API (consent flips, the ``vip``
tag added/removed, names changed, customers deleted), the stream is ingested and synced again.
The 360NRS simulator runs with 10% injected 5xx, a request rate limit (the same in the config)
and duplicates *allowed* (a double create would show). Its contacts, fields, groups and mailing
blacklist must then be exactly what this test computes on its own from the generated data:

* ``newsletter`` (email consent, an email): groups ``Newsletter`` + ``Tier <tier or none>``,
  name/surname/tier; ``on_delete: delete``;
* ``vip`` (tag ``vip``, an email): group ``VIP``; ``on_delete: unsubscribe`` (mailing blacklist);
* a customer in neither has no contact (leaving the last group deletes the contact); a deleted
  customer's contact is deleted by ``newsletter``, or kept and blacklisted by ``vip`` alone.

CI runs 500 customers at 50 requests/s; ``-m slow`` runs 5,000 at 20 requests/s.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncer.config.models import SyncerConfig
from syncer.engine.apply import Applier, rules_from_config
from syncer.engine.backfill import Backfill
from syncer.engine.deliver import Deliverer
from syncer.engine.ingest import Ingestor
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.contacthub.behaviour import DEFAULT_NODE_ID, DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID
from syncer.sandbox.datagen import generate_customers
from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.serve import ServedApp
from syncer.source.contacthub import ContacthubClient
from syncer.state.store import Store

EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")  # what 360NRS accepts
USER, PASSWORD = "sandbox-user", "sandbox-api-password"


def email_of(c: dict[str, Any]) -> str:
    return str((c["base"].get("contacts") or {}).get("email") or "").strip().lower()


def in_newsletter(c: dict[str, Any]) -> bool:
    consent = (((c.get("consents") or {}).get("marketing") or {}).get("automatic") or {}).get(
        "email"
    ) or {}
    return consent.get("status") is True and consent.get("objection") is not True


def in_vip(c: dict[str, Any]) -> bool:
    tags = c.get("tags") or {}
    return "vip" in (tags.get("auto") or []) + (tags.get("manual") or [])


def dataset(n: int, seed: int) -> list[dict[str, Any]]:
    """Customers with unique e-mails (a later duplicate loses its e-mail)."""
    customers = list(generate_customers(n, seed=seed, node_id=DEFAULT_NODE_ID))
    seen: set[str] = set()
    for c in customers:
        email = email_of(c)
        if email in seen:
            c["base"]["contacts"]["email"] = None
        seen.add(email)
    return customers


def churn(customers: list[dict[str, Any]], seed: int) -> tuple[dict[str, Any], set[str]]:
    """PATCH bodies by customer id, and the ids to delete."""
    rng = random.Random(seed)
    patches: dict[str, Any] = {}
    deleted: set[str] = set()
    for i, c in enumerate(customers):
        roll = rng.random()
        if roll < 0.08:
            status = not in_newsletter(c)
            consent = {"status": status, "limitation": False, "objection": False}
            patches[c["id"]] = {"consents": {"marketing": {"automatic": {"email": consent}}}}
        elif roll < 0.16:
            manual = list((c.get("tags") or {}).get("manual") or [])
            manual = [t for t in manual if t != "vip"] if "vip" in manual else [*manual, "vip"]
            patches[c["id"]] = {"tags": {"manual": manual}}
        elif roll < 0.22:
            patches[c["id"]] = {"base": {"firstName": f"Nuevo{i}"}}
        elif roll < 0.26:
            deleted.add(c["id"])
    return patches, deleted


def merge(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            merge(doc[key], value)
        else:
            doc[key] = value


def expected(customers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """email -> {"groups": set, "fields": {...}} for every contact 360NRS must hold."""
    out: dict[str, dict[str, Any]] = {}
    for c in customers:
        email = email_of(c)
        news, vip = in_newsletter(c), in_vip(c)
        if not email or not EMAIL.match(email) or not (news or vip):
            continue
        groups: set[str] = set()
        fields: dict[str, Any] = {}
        if news:
            tier = (c.get("extended") or {}).get("loyaltyTier")
            groups |= {"Newsletter", f"Tier {tier or 'none'}"}
            fields = {"name": c["base"].get("firstName") or None, "surname": c["base"]["lastName"]}
            if tier:
                fields["tier"] = tier
        if vip:
            groups.add("VIP")
        out[email] = {"groups": groups, "fields": fields}
    return out


def config(ch: str, nrs: str, state: str, rate: float) -> SyncerConfig:
    email = "{{ base.contacts.email | trim | lower }}"
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
                "nrs": {
                    "type": "360nrs",
                    "base_url": nrs + "/api/rest",
                    "username": USER,
                    "api_password": PASSWORD,
                    "rate_limit": rate,
                    "max_in_flight": 8,
                    "max_attempts": 30,
                }
            },
            "pipelines": [
                {
                    "name": "newsletter",
                    "target": "nrs",
                    "entity": "customer",
                    "when": {
                        "consent": "marketing.automatic.email",
                        "present": ["base.contacts.email"],
                    },
                    "fields": {
                        "email": email,
                        "name": "base.firstName",
                        "surname": "base.lastName",
                        "customFields.tier": "extended.loyaltyTier",
                    },
                    "groups": ["Newsletter", "Tier {{ extended.loyaltyTier or 'none' }}"],
                    "on_delete": "delete",
                },
                {
                    "name": "vip",
                    "target": "nrs",
                    "entity": "customer",
                    "when": {"tags_any": ["vip"], "present": ["base.contacts.email"]},
                    "fields": {"email": email},
                    "groups": ["VIP"],
                    "on_delete": "unsubscribe",
                },
            ],
            "engine": {"batch_size": 500, "backoff_base": 0.2, "backoff_max": 2},
        }
    )


@pytest.fixture
def sims() -> Iterator[tuple[ServedApp, ServedApp]]:
    nrs = Nrs360Simulator(
        username=USER, api_password=PASSWORD, behaviour=Nrs360Behaviour(duplicates="allow")
    )
    with ServedApp(ContacthubSimulator().asgi()) as ch, ServedApp(nrs.asgi()) as served:
        yield ch, served


def contacthub(cfg: SyncerConfig) -> tuple[httpx.Client, ContacthubClient]:
    http = httpx.Client(
        base_url=cfg.source.base_url,
        timeout=60,
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
    )
    return http, ContacthubClient(http, cfg.source.workspace_id, cfg.source.node_id)


def deliver(cfg: SyncerConfig, store: Store) -> None:
    with Deliverer(cfg, store, run_id="e2e") as deliverer:
        stats = deliverer.run_all_once(wait_for_retries=60)["nrs"]
    assert stats.waiting == 0 and stats.error is None, stats


def run_e2e(sims: tuple[ServedApp, ServedApp], tmp_path: Path, n: int, rate: float) -> None:
    ch, nrs = sims[0].url, sims[1].url
    customers = dataset(n, seed=11)
    httpx.post(ch + "/_sandbox/load", timeout=120, json={"customers": customers}).raise_for_status()
    faults = {"error_rate": 0.1, "rate_limit": rate, "seed": 5}
    httpx.put(nrs + "/_sandbox/faults", json=faults).raise_for_status()
    state = f"sqlite:///{tmp_path / 'state.db'}"
    cfg = config(ch, nrs, state, rate)
    store = Store(state)
    applier = Applier(rules_from_config(cfg))
    http, client = contacthub(cfg)
    try:
        Backfill(
            store,
            client,
            applier,
            page_size=50,
            pipelines=frozenset(),
            event_types=None,
            scan_events=False,
        ).run()
        deliver(cfg, store)
        patches, deleted = churn(customers, seed=12)
        api = f"/workspaces/{DEFAULT_WORKSPACE_ID}/customers/"
        for cid, patch in patches.items():
            http.patch(api + cid, json=patch).raise_for_status()
        for cid in deleted:
            http.delete(api + cid).raise_for_status()
        Ingestor(store, client, applier, page_size=4000).run_to_end()
        deliver(cfg, store)
    finally:
        http.close()
        store.close()

    by_id = {c["id"]: c for c in customers}
    for cid, patch in patches.items():
        merge(by_id[cid], patch)
    live = [c for c in customers if c["id"] not in deleted]
    want = expected(live)
    # A deleted customer: newsletter deletes the contact; vip only blacklists it (it stays).
    gone = [by_id[cid] for cid in deleted]
    for email, contact in expected(gone).items():
        if "Newsletter" not in contact["groups"]:
            want[email] = contact
    got = httpx.get(nrs + "/_sandbox/state", timeout=60).json()
    emails = Counter(c["email"] for c in got["contacts"])
    assert [e for e, k in emails.items() if k > 1] == []  # zero duplicates
    assert set(emails) == set(want)
    for contact in got["contacts"]:
        wanted = want[contact["email"]]
        assert {g["name"] for g in contact["groups"]} == wanted["groups"], contact
        custom = {f["key"]: f["value"] for f in contact["customFields"]}
        for name, value in wanted["fields"].items():
            actual = custom.get(name) if name == "tier" else contact.get(name)
            assert actual == value, (name, contact)
    group_names = Counter(g["name"] for g in got["groups"])
    assert [g for g, k in group_names.items() if k > 1] == []  # each group created once
    blacklisted = {e["recipient"] for e in got["blacklist"]["mailing"]}
    gone_vips = {email_of(by_id[cid]) for cid in deleted}
    gone_vips = {e for e in gone_vips if e and EMAIL.match(e)}
    vip_at_delete = {email_of(by_id[c]) for c in deleted if in_vip(by_id[c])}
    assert blacklisted == gone_vips & vip_at_delete


def test_e2e_500_customers_50_per_second(sims: tuple[ServedApp, ServedApp], tmp_path: Path) -> None:
    run_e2e(sims, tmp_path, 500, 50.0)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_e2e_5000_customers_20_per_second(
    sims: tuple[ServedApp, ServedApp], tmp_path: Path
) -> None:
    run_e2e(sims, tmp_path, 5000, 20.0)
