"""nrs-backfill: 360NRS calls per contact and contacts/s of a backfill, default settings.

``lookup_before_create`` stays true (the default): a contact syncer has no id of is looked up
before it is created, two calls or more, until the run has met as many unknown contacts as
the account has pages; then the account is listed (1,000 per page) and the rest costs one call
each (:mod:`syncer.targets.nrs360.index`). Two accounts: empty, and one already holding half of
the contacts, with ``duplicate_email=accept`` (360NRS stores a second contact with the same
e-mail: a create where an update was due shows as a duplicate).

Checked: calls per delivered contact <= 1.01 in both, no duplicate, and contacts/s >= 0.9 of a
bare 16-thread httpx loop making the same calls (``POST`` per new contact, ``PUT`` per existing
one) against the same simulator, measured in the same repetition. 50 ms simulated latency,
``max_in_flight: 16``; e-mails made unique (:func:`.nrs_common.load_unique_customers`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx

from syncer.sandbox.contacthub import DEFAULT_NODE_ID
from syncer.sandbox.datagen import generate_customers

from ..core import Check, NotRun, Row, median
from ..engine import require
from ..sandbox import Admin, SandboxProcess
from ..scenario import Context, Metric, Scenario
from .nrs_common import api_calls, basic_auth, nrs_config, sync

NAME = "nrs-backfill"
IN_FLIGHT = 16
LATENCY_MS = 50
METRICS = (
    Metric("calls per contact, empty account", "calls", (Check("value", "<=", 1.01),)),
    Metric("calls per contact, account holding half", "calls", (Check("value", "<=", 1.01),)),
    Metric("duplicate contacts created", "", (Check("value", "==", 0),)),
    Metric("contacts/s vs bare loop, empty account", "c/s", (Check("ratio", ">=", 0.9),)),
    Metric("contacts/s vs bare loop, account holding half", "c/s", (Check("ratio", ">=", 0.9),)),
)


def load_customers(hub: Admin, n: int, seed: int) -> list[str]:
    """``n`` generated customers, e-mails made unique, into the stream; their e-mails as the
    pipeline maps them (lower case, trimmed)."""
    customers = list(generate_customers(n, seed=seed, node_id=DEFAULT_NODE_ID))
    emails = []
    for i, customer in enumerate(customers):
        contacts = customer["base"]["contacts"]
        if contacts.get("email"):
            local, _, domain = contacts["email"].partition("@")
            contacts["email"] = f"{local}+{i}@{domain}"
            emails.append(contacts["email"].strip().lower())
    hub.load({"customers": customers, "append_updates": True})
    return emails


def bare_rate(api: str, existing: dict[str, int], new: list[str], threads: int) -> float:
    """Contacts/s of a bare ``threads``-thread loop: ``PUT`` each existing contact, ``POST``
    each new one (the calls the engine makes once the account is listed)."""
    headers = {"Authorization": basic_auth(), "Accept": "application/json"}
    with httpx.Client(base_url=api, headers=headers, timeout=60) as http:
        group = http.post("/groups", json={"name": f"Bare {time.time_ns()}"})
        group.raise_for_status()
        group_id = int(group.json()["data"]["id"])
    work: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", f"/contacts/{cid}", {"email": e, "name": "Bare", "groupsIds": [group_id]})
        for e, cid in existing.items()
    ] + [("POST", "/contacts", {"email": e, "groupsIds": [group_id]}) for e in new]
    todo: Iterator[tuple[str, str, dict[str, Any]]] = iter(work)
    lock = threading.Lock()
    failures: list[str] = []

    def worker(http: httpx.Client) -> None:
        while True:
            with lock:
                call = next(todo, None)
            if call is None:
                return
            r = http.request(call[0], call[1], json=call[2])
            if r.status_code >= 300 and r.status_code != 422:  # 422: an address 360NRS refuses
                failures.append(f"{r.status_code} {r.text[:100]}")

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.Client(base_url=api, headers=headers, timeout=60, limits=limits)
        for _ in range(threads)
    ]
    pool = [threading.Thread(target=worker, args=(c,)) for c in clients]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    for c in clients:
        c.close()
    if failures:
        raise RuntimeError(f"bare loop: {len(failures)} failures, first: {failures[0]}")
    return len(work) / seconds


def preload(nrs: Admin, emails: list[str]) -> dict[str, int]:
    """Put ``emails`` in the account (group "Before"); their contact ids."""
    nrs.load({"contacts": [{"email": e, "groupsNames": ["Before"]} for e in emails]})
    return {c["email"]: int(c["id"]) for c in nrs.state()["contacts"]}


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.deliver", "syncer.targets.nrs360", "syncer.engine.ingest")
    customers = 1_000 if ctx.quick else 4_000
    samples: dict[str, list[float]] = {k: [] for k in ("empty", "half")}
    rates: dict[str, list[float]] = {k: [] for k in ("empty", "half")}
    bares: dict[str, list[float]] = {k: [] for k in ("empty", "half")}
    duplicates = 0
    details: list[str] = []
    with SandboxProcess(["contacthub", "nrs360"]) as sb:
        emails = load_customers(sb.admin("contacthub"), customers, seed=43)
        nrs = sb.admin("nrs360")
        nrs.behaviour(duplicate_email="accept")
        half = emails[::2]
        for rep in range(ctx.reps):
            for case in ("empty", "half"):
                # the bare loop first, on an account like the engine's, then the engine
                nrs.reset()
                ids = preload(nrs, half) if case == "half" else {}
                share = len(emails) // 4  # a quarter of the same mix: enough for a rate
                bare_existing = dict(list(ids.items())[: share // 2]) if ids else {}
                fresh = emails[: share - len(bare_existing)]
                bare_new = [f"bare-{i}-{e}" for i, e in enumerate(fresh)]
                nrs.faults(latency_ms=LATENCY_MS)
                bare = bare_rate(sb.api("nrs360"), bare_existing, bare_new, IN_FLIGHT)
                bares[case].append(bare)
                nrs.faults()
                nrs.reset()
                if case == "half":
                    preload(nrs, half)
                nrs.clear_requests()
                nrs.faults(latency_ms=LATENCY_MS)
                workdir = ctx.dir(f"nrs-backfill-{case}-{rep}")
                config = nrs_config(workdir, sb, max_in_flight=IN_FLIGHT)
                done = sync(config)
                stats = done.stats.get("nrs")
                delivered = int(getattr(stats, "done", 0)) + int(getattr(stats, "dead", 0))
                if delivered == 0:
                    raise NotRun(f"nothing delivered to 360NRS (stats: {done.stats})")
                requests = nrs.requests()
                calls = api_calls(requests)
                nrs.faults()
                seen = Counter(c["email"] for c in nrs.state()["contacts"])
                duplicates += sum(k - 1 for k in seen.values() if k > 1)
                samples[case].append(calls / delivered)
                rates[case].append(delivered / done.seconds)
                details.append(
                    f"{case}: {delivered:,} contacts, {calls:,} calls "
                    f"({calls / delivered:.4f}/contact) in {done.seconds:.1f} s; "
                    f"{dict(requests['counts'])}"
                )
                ctx.log(f"nrs-backfill rep {rep + 1} {details[-1]}; bare {bare:,.0f} c/s")
    rows = [
        METRICS[0].row(NAME, value=median(samples["empty"]), samples=samples["empty"]),
        METRICS[1].row(NAME, value=median(samples["half"]), samples=samples["half"]),
        METRICS[2].row(NAME, value=float(duplicates)),
    ]
    for metric, case in ((METRICS[3], "empty"), (METRICS[4], "half")):
        rows.append(
            metric.row(
                NAME,
                value=median(rates[case]),
                floor=median(bares[case]),
                floor_label="bare loop, same calls",
                samples=rates[case],
                floor_samples=bares[case],
            )
        )
    rows[0].notes.extend(details)
    return rows


SCENARIO = Scenario(
    name=NAME,
    description="360NRS backfill with lookups on: calls per contact, contacts/s vs a bare loop",
    metrics=METRICS,
    run=run,
    budget_s=150,
)
