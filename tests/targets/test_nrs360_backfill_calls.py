"""360NRS calls per contact on a backfill (issue 15, fix 6).

Looking every new contact up before creating it costs two calls per contact (three when the
email lookup misses and the phone one is tried). The target lists the account once (1,000 per
page, ``GET /contacts?limit=1000&page=n``, 360nrs-api-reference.es.txt L3066) when it meets
many unknown contacts, then updates what the listing showed and creates the rest without a
lookup. Every API call is counted by the simulator (``/_sandbox/requests``); the bound is 1.01
calls per delivered contact, into an empty account and into one already holding half of the
contacts, where the simulator accepts a second contact with the same e-mail
(``duplicate_email=accept``): none may be created.

Real ``Applier`` and ``Deliverer``, SQLite state, the 360NRS simulator over HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from contract import TARGET, Harness, one_target_config

from syncer.engine.apply import Incoming
from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.serve import ServedApp
from syncer.state.store import Store

USER, PASSWORD = "sandbox-user", "sandbox-api-password"
N = 600
IN_FLIGHT = 4


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    sim = Nrs360Simulator(
        username=USER, api_password=PASSWORD, behaviour=Nrs360Behaviour(duplicate_email="accept")
    )
    with ServedApp(sim.asgi()) as app:
        yield app.url


@pytest.fixture
def sim(served: str) -> str:
    httpx.post(served + "/_sandbox/reset").raise_for_status()
    return served


def email(n: int) -> str:
    return f"customer{n}@example.com"


def phone(n: int) -> str:
    return f"3461{n:07d}"


def harness(sim: str, tmp_path: Path) -> Harness:
    pipeline = {
        "name": "a",
        "target": TARGET,
        "entity": "customer",
        "fields": {
            "email": "base.contacts.email",
            "phone": "base.contacts.mobilePhone",
            "countryIso": "base.address.country",
            "name": "base.firstName",
        },
        "groups": ["Customers"],
    }
    target = {
        "type": "360nrs",
        "base_url": sim + "/api/rest",
        "username": USER,
        "api_password": PASSWORD,
        "max_in_flight": IN_FLIGHT,
    }
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    return Harness(one_target_config(target, [pipeline], {"batch_size": 200}), store)


def backfill(sim: str, tmp_path: Path, n_customers: int = N) -> tuple[int, dict[str, Any]]:
    """Deliver customers 0..n-1; the API calls it took and the simulator's state."""
    h = harness(sim, tmp_path)
    try:
        items = []
        for n in range(n_customers):
            doc = {
                "id": f"c{n}",
                "version": 1,
                "base": {
                    "firstName": f"New{n}",
                    "contacts": {"email": email(n), "mobilePhone": "+" + phone(n)},
                    "address": {"country": "ES"},
                },
            }
            raw = orjson.dumps(doc).decode()
            items.append(Incoming("stream", "customer", "UPDATE", doc, raw, n + 1, 0))
        with h.store.transaction() as conn:  # one transaction: the test times the delivery
            h.applier.apply(conn, "test-stream", items)
        stats = h.run(wait=0)
        assert (stats.done, stats.dead, stats.waiting) == (n_customers, 0, 0), stats
    finally:
        h.deliverer.close()
        h.store.close()
    counts = httpx.get(sim + "/_sandbox/requests").json()["counts"]
    calls = sum(v for k, v in counts.items() if "/_sandbox" not in k)
    return calls, httpx.get(sim + "/_sandbox/state").json()


def no_duplicates(state: dict[str, Any], n_customers: int = N, others: int = 0) -> None:
    emails = Counter(c["email"] for c in state["contacts"])
    assert [e for e, k in emails.items() if k > 1] == []
    assert len(emails) == n_customers + others
    ours = [c for c in state["contacts"] if c["email"].startswith("customer")]
    assert len(ours) == n_customers
    assert all(c["name"] == "New" + c["email"][8:-12] for c in ours)  # all updated


def test_backfill_into_an_empty_account(sim: str, tmp_path: Path) -> None:
    calls, state = backfill(sim, tmp_path)
    no_duplicates(state)
    assert calls <= 1.01 * N, calls


def test_backfill_into_an_account_holding_half_of_the_contacts(sim: str, tmp_path: Path) -> None:
    existing = [
        {
            "email": email(n),
            "phone": phone(n),
            "countryIso": "ES",
            "name": f"Old{n}",
            "groupsNames": ["Before"],
        }
        for n in range(0, N, 2)
    ]
    httpx.post(sim + "/_sandbox/load", json={"contacts": existing}, timeout=30).raise_for_status()
    httpx.delete(sim + "/_sandbox/requests").raise_for_status()
    calls, state = backfill(sim, tmp_path)
    no_duplicates(state)  # every existing one was updated, none created twice
    assert calls <= 1.01 * N, calls


def test_a_large_account_is_listed_only_after_as_many_new_contacts_as_pages(
    sim: str, tmp_path: Path
) -> None:
    """2,100 other contacts: three pages. Page 1 comes with the first unknown contact; lookups
    go on until three unknown contacts were met (more may be in flight meanwhile), then pages
    2 and 3 are listed and the rest needs one call each."""
    others = [
        {"email": f"other{n}@example.org", "countryIso": "ES", "groupsNames": ["Before"]}
        for n in range(2_100)
    ]
    existing = [
        {"email": email(n), "phone": phone(n), "countryIso": "ES", "groupsNames": ["Before"]}
        for n in range(0, 300, 2)
    ]
    load = {"contacts": others + existing}
    httpx.post(sim + "/_sandbox/load", json=load, timeout=30).raise_for_status()
    httpx.delete(sim + "/_sandbox/requests").raise_for_status()
    calls, state = backfill(sim, tmp_path, 300)
    no_duplicates(state, 300, len(others))
    pages = 3
    counts = httpx.get(sim + "/_sandbox/requests").json()["counts"]
    lookups = counts.get("GET /api/rest/contacts", 0)
    # listing: pages; lookups before the listing: up to two GETs (email, phone) per contact,
    # for `pages` contacts plus those in flight; groups: one list and one create
    assert lookups <= pages + 2 * (pages + IN_FLIGHT), counts
    assert calls <= 300 + 3 + lookups, counts  # + groups: check, list, create
