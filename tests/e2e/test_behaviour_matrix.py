"""The behaviour matrix: one realistic sync under each reading of each behaviour switch.

Where the API docs leave a behaviour open, the simulators have a named switch with every
plausible reading (``docs/sandbox.md``, "Behaviour switches"). syncer must reach the exact same
end state under every one, without being told which holds. Each case here resets the four
simulators (one process each for the whole module), sets *one* switch through
``PUT /_sandbox/behaviour`` (the others at their defaults), and runs:

1. a backfill of 16 customers to 360NRS (two pipelines, groups), Octopush (lists by country)
   and NP6 (an import), with light faults (5xx, lost answers) on the targets;
2. churn through the Contacthub API: updates (names, a tier = a group change), leaves (a tag
   or a consent removed, a phone removed, a country changed = a list change), deletes (one
   whose contacts were already removed on the target side), then a stream sync.

End state: 360NRS contacts/groups, Octopush lists and NP6 targets exactly as computed here by
hand, no duplicate contact, and the bad records (an e-mail 360NRS and NP6 refuse, a number the
Octopush account refuses) dead or invalid with a reason, nothing else failed. (The bad e-mail
reaches NP6 only in the NP6 and defaults cases: NP6 isolates it by splitting imports, which
takes a few seconds.)
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from syncer.config.models import SyncerConfig
from syncer.engine.apply import Applier, rules_from_config
from syncer.engine.backfill import Backfill
from syncer.engine.deliver import Deliverer
from syncer.engine.ingest import Ingestor
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.contacthub.behaviour import DEFAULT_NODE_ID, DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID
from syncer.sandbox.datagen import generate_customers
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.nrs360 import Nrs360Simulator
from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp
from syncer.source.contacthub import ContacthubClient
from syncer.state.schema import deliveries
from syncer.state.store import Store

USER, PASSWORD = "sandbox-user", "sandbox-api-password"
N = 16
BAD_EMAIL = 14  # customer index: an e-mail 360NRS and NP6 refuse
REFUSED = 15  # customer index: a number the Octopush account refuses although it parses

# (simulator, switch, reading): every reading of every doc-silent switch. A default reading is
# the "defaults" case (all switches at their defaults), except rate_limit's, whose case adds
# the 429s that show it.
READINGS: list[tuple[str, str, Any]] = [
    ("contacthub", "default_page_size", 10),
    ("contacthub", "default_page_size", 20),
    ("contacthub", "page_object", "union"),
    ("contacthub", "page_object", "legacy"),
    ("contacthub", "page_object", "current"),
    ("contacthub", "delete_payload", "full"),
    ("contacthub", "delete_payload", "id_only"),
    ("contacthub", "timestamp_unit", "ms"),
    ("contacthub", "timestamp_unit", "s"),
    ("contacthub", "rate_limit", "retry_after"),
    ("contacthub", "rate_limit", "x_ratelimit"),
    ("contacthub", "rate_limit", "bare"),
    ("nrs360", "duplicate_email", "refuse"),
    ("nrs360", "duplicate_email", "accept"),
    ("nrs360", "put_groups", "replace"),
    ("nrs360", "put_groups", "add"),
    ("nrs360", "rate_limit", "retry_after"),
    ("nrs360", "rate_limit", "x_ratelimit"),
    ("nrs360", "rate_limit", "bare"),
    ("octopush", "invalid_number", "refuse_call"),
    ("octopush", "invalid_number", "skip_item"),
    ("octopush", "missing_list", "error"),
    ("octopush", "missing_list", "create"),
    ("octopush", "existing_list", "error"),
    ("octopush", "existing_list", "ok"),
    ("octopush", "max_contacts_per_create", 500),
    ("octopush", "max_contacts_per_create", 4),  # below syncer's batch_size of 50
    ("octopush", "rate_limit", "retry_after"),
    ("octopush", "rate_limit", "x_ratelimit"),
    ("octopush", "rate_limit", "bare"),
    ("np6", "unknown_delete", "empty_200"),
    ("np6", "unknown_delete", "not_found_404"),
    ("np6", "bulk_delete_response", "list"),
    ("np6", "bulk_delete_response", "empty"),
    ("np6", "execution_body", "full"),
    ("np6", "execution_body", "state"),
    ("np6", "no_execution", "not_found_404"),
    ("np6", "no_execution", "empty_200"),
    ("np6", "rate_limit", "retry_after"),
    ("np6", "rate_limit", "x_ratelimit"),
    ("np6", "rate_limit", "bare"),
]
# one keep-alive client for the test's own calls (httpx.get() builds a client each time)
ADMIN = httpx.Client(timeout=30)
LIGHT_FAULTS = {"error_rate": 0.03, "lost_response_rate": 0.03}


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, ServedApp]]:
    apps = {
        "contacthub": ContacthubSimulator(),
        "nrs360": Nrs360Simulator(username=USER, api_password=PASSWORD),
        "octopush": OctopushSimulator(),
        "np6": Np6Simulator(),
    }
    served = {name: ServedApp(sim.asgi()).start() for name, sim in apps.items()}
    try:
        # every switch's default, to put back before each case
        served_defaults = {
            name: ADMIN.get(app.url + "/_sandbox/behaviour").json() for name, app in served.items()
        }
        for name, app in served.items():
            app.defaults = served_defaults[name]  # type: ignore[attr-defined]
        yield served
    finally:
        for app in served.values():
            app.stop()


def customers(np6_bad: bool) -> list[dict[str, Any]]:
    """The customers; ``np6_bad``: the bad e-mail also goes to NP6 (whose import then splits
    to isolate it, ~2 s: only in the cases about NP6 and the defaults)."""
    out = []
    for i, c in enumerate(generate_customers(N, seed=21, node_id=DEFAULT_NODE_ID)):
        c = copy.deepcopy(c)
        base = c["base"]
        base["firstName"], base["lastName"] = f"Ana{i}", f"Ruiz{i}"
        email = "not-an-email" if i == BAD_EMAIL else f"c{i}@example.com"
        base["contacts"] = {"email": email, "mobilePhone": f"+336123400{i:02d}"}
        base["address"] = {"country": "FR" if i % 2 else "IT"}
        news = i not in (10, 11)
        consent = {"status": news, "limitation": False, "objection": False}
        c["consents"] = {"marketing": {"automatic": {"email": consent}}}
        c["tags"] = {"auto": [], "manual": ["vip"] if i in (5, 6, 7, 10) else []}
        c["extended"] = {"loyaltyTier": "gold" if i % 3 == 0 else "silver"}
        if i != BAD_EMAIL or np6_bad:
            c["extended"]["np6"] = "yes"  # the crm pipeline takes only these
        out.append(c)
    return out


# churn: customer index -> PATCH body; and deletes
PATCHES: dict[int, dict[str, Any]] = {
    0: {"base": {"firstName": "Nueva0"}},
    1: {"base": {"firstName": "Nueva1"}},
    2: {"extended": {"loyaltyTier": "gold"}},  # silver -> gold: leaves group "Tier silver"
    5: {"tags": {"manual": []}},  # leaves VIP, stays in Newsletter
    6: {"consents": {"marketing": {"automatic": {"email": {"status": False}}}}},  # VIP only
    7: {"base": {"address": {"country": "FR"}}},  # IT -> FR: another Octopush list
    8: {"base": {"contacts": {"mobilePhone": None}}},  # leaves its Octopush list
}
DELETED = (3, 4, 9)
GONE_ON_TARGETS = 9  # its target records are removed out of band before the delete


def merge(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            merge(doc[key], value)
        else:
            doc[key] = value


def expected(people: list[dict[str, Any]]) -> dict[str, Any]:
    """What each target must hold for the live customers ``people`` (index, doc)."""
    nrs: dict[str, set[str]] = {}
    lists: dict[str, set[str]] = {}
    np6: dict[str, str] = {}
    for i, c in people:
        base = c["base"]
        email = base["contacts"]["email"]
        news = c["consents"]["marketing"]["automatic"]["email"]["status"] is True
        vip = "vip" in c["tags"]["manual"]
        groups = {"Newsletter", f"Tier {c['extended']['loyaltyTier']}"} if news else set()
        groups |= {"VIP"} if vip else set()
        if groups and i != BAD_EMAIL:
            nrs[email] = groups
        phone = base["contacts"]["mobilePhone"]
        if phone and i != REFUSED:
            lists.setdefault(f"sms-{base['address']['country']}", set()).add(phone)
        if i != BAD_EMAIL:
            np6[email] = base["firstName"]
    return {"nrs": nrs, "lists": lists, "np6": np6}


def config(urls: dict[str, str], state: str) -> SyncerConfig:
    email = "{{ base.contacts.email | trim | lower }}"
    return SyncerConfig.model_validate(
        {
            "version": 1,
            "state": {"url": state},
            "source": {
                "type": "contacthub",
                "base_url": urls["contacthub"] + "/hub/v1",
                "workspace_id": DEFAULT_WORKSPACE_ID,
                "node_id": DEFAULT_NODE_ID,
                "token": DEFAULT_TOKEN,
                "page_size": 5,
            },
            "targets": {
                "nrs": {
                    "type": "360nrs",
                    "base_url": urls["nrs360"] + "/api/rest",
                    "username": USER,
                    "api_password": PASSWORD,
                    "max_attempts": 40,
                },
                "octo": {
                    "type": "octopush",
                    "base_url": urls["octopush"] + "/v1/public",
                    "api_login": "sandbox@example.com",
                    "api_key": "sandbox-octopush-key",
                    "batch_size": 50,
                    "max_attempts": 40,
                },
                "np6": {
                    "type": "np6",
                    "base_url": urls["np6"],
                    "api_key": "sandbox-np6-key",
                    "max_attempts": 40,
                    "import": {"binding": 1234, "flush_every": "1s", "max_rows": 50000},
                },
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
                    "fields": {"email": email, "name": "base.firstName"},
                    "groups": ["Newsletter", "Tier {{ extended.loyaltyTier }}"],
                    "on_delete": "delete",
                },
                {
                    "name": "vip",
                    "target": "nrs",
                    "entity": "customer",
                    "when": {"tags_any": ["vip"], "present": ["base.contacts.email"]},
                    "fields": {"email": email},
                    "groups": ["VIP"],
                    "on_delete": "delete",
                },
                {
                    "name": "sms",
                    "target": "octo",
                    "entity": "customer",
                    "when": {"present": ["base.contacts.mobilePhone", "base.address.country"]},
                    "fields": {"phone_number": "base.contacts.mobilePhone"},
                    "list": "sms-{{ base.address.country }}",
                    "on_delete": "remove_from_list",
                },
                {
                    "name": "crm",
                    "target": "np6",
                    "entity": "customer",
                    "when": {"present": ["base.contacts.email", "extended.np6"]},
                    "fields": {"1001": email, "1002": "base.firstName"},
                    "on_delete": "delete",
                },
            ],
            "engine": {"batch_size": 50, "backoff_base": 0.05, "backoff_max": 0.5},
        }
    )


def matrix(defaults: dict[str, dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """The cases: the defaults, then every reading that is not one (and every rate_limit)."""
    cases: list[tuple[str, str, Any]] = [("all", "defaults", None)]
    for sim, switch, reading in READINGS:
        if switch == "rate_limit" or defaults[sim][switch] != reading:
            cases.append((sim, switch, reading))
    return cases


def _defaults() -> dict[str, dict[str, Any]]:
    from dataclasses import asdict

    from syncer.sandbox.contacthub.behaviour import ContacthubBehaviour
    from syncer.sandbox.np6 import Np6Behaviour
    from syncer.sandbox.nrs360 import Nrs360Behaviour
    from syncer.sandbox.octopush import OctopushBehaviour

    return {
        "contacthub": ContacthubBehaviour().to_dict(),
        "nrs360": asdict(Nrs360Behaviour()),
        "octopush": asdict(OctopushBehaviour()),
        "np6": asdict(Np6Behaviour()),
    }


MATRIX = matrix(_defaults())


# switches of the docs table the sync cannot show, and why
NOT_IN_MATRIX = {
    ("contacthub", "conflict_mode"): "syncer never writes customers to Contacthub",
    ("contacthub", "search_cap_mode"): "needs a search over 10,000 matches (tests/engine backfill)",
    ("contacthub", "max_page_size"): "syncer sends its own page_size; 400 above it is a config",
    ("np6", "require_import_accept"): "false only stops checking the Accept syncer always sends",
}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"


def test_every_switch_of_the_docs_table_is_in_the_matrix() -> None:
    """Each switch of docs/sandbox.md's table has its readings here (or a reason not to), and
    each reading here is a switch the simulator has (a renamed switch fails here)."""
    defaults = _defaults()
    for sim, switch, _ in READINGS:
        assert switch in defaults[sim], (sim, switch)
    table = {
        (cells[1], cells[2].strip("`"))
        for line in DOCS.read_text().splitlines()
        if line.startswith("| ")
        and len(cells := [c.strip() for c in line.split("|")]) > 3
        and cells[1] in defaults
        and cells[2].startswith("`")
    }
    assert len(table) >= 20, table
    covered = {(sim, switch) for sim, switch, _ in READINGS} | set(NOT_IN_MATRIX)
    assert table - covered == set()
    assert covered - table == set()  # and the table lists every switch the matrix sets


def reset(sims: dict[str, ServedApp], sim: str, switch: str, reading: Any) -> None:
    for name, app in sims.items():
        ADMIN.post(app.url + "/_sandbox/reset").raise_for_status()
        settings = dict(app.defaults)  # type: ignore[attr-defined]
        if name == "np6":
            settings["processing_seconds"] = 0.02
        if name == sim:
            settings[switch] = reading
        ADMIN.put(app.url + "/_sandbox/behaviour", json=settings).raise_for_status()
        if name == sim:
            assert ADMIN.get(app.url + "/_sandbox/behaviour").json()[switch] == reading
        ADMIN.put(
            app.url + "/_sandbox/faults", json=faults_of(name, sim, switch)
        ).raise_for_status()


def faults_of(name: str, sim: str, switch: str) -> dict[str, Any]:
    """Light faults on the simulator under test (on every target in the defaults case)."""
    faults: dict[str, Any] = {}
    if name != "contacthub" and sim in (name, "all"):
        faults = dict(LIGHT_FAULTS)
    if name == sim and switch == "rate_limit":
        faults["rate_limit"] = 40.0  # 429s under that reading's headers
    return {**faults, "seed": 3}


def deliver(cfg: SyncerConfig, store: Store) -> None:
    with Deliverer(cfg, store, run_id="matrix") as deliverer:
        stats = deliverer.run_all_once(force_flush=True, wait_for_retries=30)
    for name, stat in stats.items():
        assert stat.waiting == 0 and stat.error is None, (name, stat)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("sim", "switch", "reading"), MATRIX, ids=lambda v: str(v))
def test_same_end_state_under_every_reading(
    sims: dict[str, ServedApp], tmp_path: Path, sim: str, switch: str, reading: Any
) -> None:
    reset(sims, sim, switch, reading)
    urls = {name: app.url for name, app in sims.items()}
    np6_bad = sim in ("np6", "all")
    people = customers(np6_bad)
    ADMIN.post(urls["contacthub"] + "/_sandbox/load", json={"customers": people}).raise_for_status()
    ADMIN.post(
        urls["octopush"] + "/_sandbox/load",
        json={"refused_numbers": [people[REFUSED]["base"]["contacts"]["mobilePhone"]]},
    ).raise_for_status()
    state = f"sqlite:///{tmp_path / 'state.db'}"
    cfg = config(urls, state)
    store = Store(state)
    applier = Applier(rules_from_config(cfg))
    http = httpx.Client(
        base_url=cfg.source.base_url,
        timeout=30,
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
    )
    client = ContacthubClient(http, cfg.source.workspace_id, cfg.source.node_id)
    try:
        Backfill(
            store,
            client,
            applier,
            page_size=5,
            pipelines=frozenset(),
            event_types=None,
            scan_events=False,
        ).run()
        deliver(cfg, store)
        api = f"/workspaces/{DEFAULT_WORKSPACE_ID}/customers/"
        for i, patch in PATCHES.items():
            _retrying(http, "PATCH", api + people[i]["id"], patch)
        gone = people[GONE_ON_TARGETS]["base"]["contacts"]
        _remove_out_of_band(urls, gone["email"])
        for name in ("nrs360", "np6"):
            ADMIN.put(urls[name] + "/_sandbox/faults", json=faults_of(name, sim, switch))
        for i in DELETED:
            _retrying(http, "DELETE", api + people[i]["id"])
        Ingestor(store, client, applier, page_size=50).run_to_end()
        deliver(cfg, store)
        with store.engine.connect() as conn:
            d = deliveries
            failed = conn.execute(
                select(d.c.pipeline, d.c.entity_id, d.c.state, d.c.last_error).where(
                    d.c.state.not_in(("done",))
                )
            ).all()
    finally:
        http.close()
        store.close()

    for i, patch in PATCHES.items():
        merge(people[i], patch)
    want = expected([(i, c) for i, c in enumerate(people) if i not in DELETED])

    nrs = ADMIN.get(urls["nrs360"] + "/_sandbox/state").json()
    emails = Counter(c["email"] for c in nrs["contacts"])
    assert [e for e, k in emails.items() if k > 1] == []  # no duplicate contact
    got_nrs = {c["email"]: {g["name"] for g in c["groups"]} for c in nrs["contacts"]}
    assert got_nrs == want["nrs"]
    names = {c["email"]: c.get("name") for c in nrs["contacts"]}
    assert names["c0@example.com"] == "Nueva0"

    octo = ADMIN.get(urls["octopush"] + "/_sandbox/state").json()
    assert {k: set(v) for k, v in octo["lists"].items() if v} == want["lists"]

    np6 = ADMIN.get(urls["np6"] + "/_sandbox/state").json()
    got_np6 = {t["fields"]["1001"]: t["fields"].get("1002") for t in np6["targets"]}
    assert got_np6 == want["np6"]

    # the bad records, and only they, are dead (or invalid) with a reason
    bad_ids = {people[BAD_EMAIL]["id"], people[REFUSED]["id"]}
    by_pipeline = {(row.pipeline, row.entity_id): row for row in failed}
    assert {row.entity_id for row in failed} <= bad_ids, failed
    bad = [("newsletter", people[BAD_EMAIL]["id"]), ("sms", people[REFUSED]["id"])]
    for key in bad + ([("crm", people[BAD_EMAIL]["id"])] if np6_bad else []):
        row = by_pipeline.get(key)
        assert row is not None and row.state in ("dead", "invalid"), (key, failed)
        assert row.last_error, row


def _retrying(http: httpx.Client, method: str, path: str, body: Any = None) -> None:
    """A Contacthub write of the test itself (its own sandbox may answer 429 in a case)."""
    for _ in range(50):
        response = http.request(method, path, json=body)
        if response.status_code != 429:
            response.raise_for_status()
            return
    raise AssertionError("Contacthub kept answering 429")


def _remove_out_of_band(urls: dict[str, str], email: str) -> None:
    """Delete a customer's 360NRS contact and NP6 target behind syncer's back (faults off)."""
    for name in ("nrs360", "np6"):
        ADMIN.put(urls[name] + "/_sandbox/faults", json={}).raise_for_status()
    nrs_auth = (USER, PASSWORD)
    found = ADMIN.get(
        urls["nrs360"] + "/api/rest/contacts", params={"email": email}, auth=nrs_auth
    ).json()["data"]
    assert found, email
    ADMIN.delete(urls["nrs360"] + f"/api/rest/contacts/{found[0]['id']}", auth=nrs_auth)
    np6_headers = {"X-Key": "sandbox-np6-key", "Accept": "application/vnd.np6.cm.v1"}
    response = ADMIN.request(
        "DELETE",
        urls["np6"] + "/targets",
        json={"type": "unicity", "value": [[email]]},
        headers=np6_headers,
    )
    assert response.status_code in (200, 204), response.text
