"""The seeded data generator: determinism, speed and variety."""

from __future__ import annotations

import re
from collections import Counter
from itertools import islice

import pytest

from syncer.sandbox.datagen import generate_customers, generate_dataset, generate_events

NODE = "node-1"


@pytest.fixture(scope="module")
def customers() -> list[dict[str, object]]:
    return list(generate_customers(10_000, seed=5, node_id=NODE))


def test_deterministic_and_seed_sensitive() -> None:
    a = list(generate_customers(200, seed=1, node_id=NODE))
    assert a == list(generate_customers(200, seed=1, node_id=NODE))
    assert a != list(generate_customers(200, seed=2, node_id=NODE))
    ea = list(generate_events(a, 300, seed=1))
    assert ea == list(generate_events(a, 300, seed=1))


def test_generation_is_deterministic_and_lazy() -> None:
    # (its speed is measured by the bench's backfill scenario, not timed here)
    customers = list(generate_customers(10_000, seed=3, node_id=NODE))
    customers, events = generate_dataset(10_000, 10_000, seed=3, node_id=NODE)
    assert len(customers) == 10_000 and len(events) == 10_000
    lazy = generate_customers(1_000_000, seed=3, node_id=NODE)
    assert next(lazy)["id"] == customers[0]["id"]
    assert len(list(islice(lazy, 10))) == 10


def test_entity_shape(customers: list[dict]) -> None:  # type: ignore[type-arg]
    ids = {c["id"] for c in customers}
    assert len(ids) == len(customers)
    assert len({c["externalId"] for c in customers}) == len(customers)
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
    for c in customers[:500]:
        assert set(c) >= {
            "id",
            "nodeId",
            "externalId",
            "base",
            "consents",
            "extended",
            "tags",
            "enabled",
            "registeredAt",
            "updatedAt",
            "version",
            "deleted",
        }
        assert c["nodeId"] == NODE and iso.match(c["registeredAt"]) and iso.match(c["updatedAt"])
        assert c["updatedAt"] >= c["registeredAt"]
        assert set(c["tags"]) == {"auto", "manual"}


def test_registered_at_spreads_over_years(customers: list[dict]) -> None:  # type: ignore[type-arg]
    years = Counter(c["registeredAt"][:4] for c in customers)
    assert set(years) == {str(y) for y in range(2018, 2026)}
    assert min(years.values()) > 300


def test_variety(customers: list[dict]) -> None:  # type: ignore[type-arg]
    n = len(customers)
    phones = [c["base"]["contacts"]["mobilePhone"] for c in customers]
    emails = [c["base"]["contacts"]["email"] for c in customers]
    present = [p for p in phones if p]
    assert 0.05 < phones.count(None) / n < 0.15
    assert any(p.startswith("+39 3") for p in present) and any(
        p.startswith("0034") for p in present
    )
    assert any(p.startswith("+33 6") or p.startswith("+33 7") for p in present)
    assert any(re.fullmatch(r"3\d{9}", p) for p in present)
    invalid = [p for p in present if len(re.sub(r"\D", "", p)) < 9 or re.search(r"[A-Za-z]", p)]
    assert 0.015 < len(invalid) / n < 0.05
    assert 0.03 < emails.count(None) / n < 0.1
    assert any(e and e != e.strip() for e in emails) and any(e and e != e.lower() for e in emails)
    names = " ".join(str(c["base"]["firstName"]) + " " + c["base"]["lastName"] for c in customers)
    for needle in ("à", "é", "ñ", "ò", "Д", "王"):
        assert needle in names or needle.upper() in names, needle
    assert any(ord(ch) > 0x1F000 for ch in names)  # an emoji now and then
    countries = Counter(c["base"]["address"]["country"] for c in customers)
    assert {"IT", "ES", "FR", "Italia"} <= set(countries)
    vip = sum("vip" in c["tags"]["manual"] for c in customers) / n
    assert 0.12 < vip < 0.18
    email_consents = [
        c["consents"]["marketing"]["automatic"]["email"] for c in customers if c["consents"]
    ]
    assert 0.8 < len(email_consents) / n < 0.95
    assert any(x["objection"] and not x["status"] for x in email_consents)
    assert 0.4 < sum(x["status"] for x in email_consents) / len(email_consents) < 0.8
    assert {c["extended"]["loyaltyTier"] for c in customers} >= {"bronze", "gold", None}
    assert any(set(c["extended"]) - {"loyaltyTier", "points"} for c in customers)


def test_events(customers: list[dict]) -> None:  # type: ignore[type-arg]
    events = list(generate_events(customers, 3000, seed=5))
    by_id = {c["id"]: c for c in customers}
    kinds = Counter(e["type"] for e in events)
    assert set(kinds) == {"completedOrder", "viewedPage", "campaignUnsubscribed"}
    for e in events:
        assert e["date"] >= by_id[e["customerId"]]["registeredAt"]
        if e["type"] == "completedOrder":
            assert e["properties"]["orderId"] and e["properties"]["amount"]["total"] > 0
    assert list(generate_events([], 5, seed=1)) == []


def test_shared_parts_give_the_same_customers() -> None:
    plain = list(generate_customers(2_000, seed=8, node_id=NODE))
    shared = list(generate_customers(2_000, seed=8, node_id=NODE, shared=True))
    assert shared == plain
    addresses = {id(c["base"]["address"]) for c in shared}
    assert len(addresses) < 100 < len({id(c["base"]["address"]) for c in plain})
    assert len({id(c["sourceInfo"]) for c in shared}) == 1
