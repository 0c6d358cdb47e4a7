"""Helpers the 360NRS scenarios share: counting requests, a bare client, one sync."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from syncer.sandbox.contacthub import DEFAULT_NODE_ID
from syncer.sandbox.datagen import generate_customers

from .. import configs
from ..engine import Delivered, deliver_all, ingest_to_end, open_engine
from ..sandbox import CREDENTIALS, Admin, SandboxProcess


def load_unique_customers(hub: Admin, n: int, seed: int) -> int:
    """Load ``n`` generated customers into the stream, each e-mail made unique (``+i``).

    Generated data has customers sharing an address; 360NRS keeps one contact per e-mail, so
    those cost a lookup and a PUT more. The throughput scenarios measure one call per contact;
    the share of shared addresses is a property of the data, not of the engine. Returns how
    many have an e-mail.
    """
    customers = list(generate_customers(n, seed=seed, node_id=DEFAULT_NODE_ID))
    with_email = 0
    for i, customer in enumerate(customers):
        contacts = customer["base"]["contacts"]
        email = contacts.get("email")
        if email:
            local, _, domain = email.partition("@")
            contacts["email"] = f"{local}+{i}@{domain}"
            with_email += 1
    hub.load({"customers": customers, "append_updates": True})
    return with_email


def api_calls(requests: dict[str, Any]) -> int:
    """API requests in a simulator's request log (admin calls are not logged there)."""
    return int(requests["total"])


def status_count(requests: dict[str, Any], status: int) -> int:
    return int(requests.get("statuses", {}).get(str(status), 0))


def nrs_config(
    workdir: Path,
    sb: SandboxProcess,
    *,
    max_in_flight: int = 16,
    rate_limit: str | None = None,
    poll_interval: str = "1s",
    lookup_before_create: bool | None = None,
) -> Path:
    return configs.write_config(
        workdir,
        source_cfg=configs.source(sb, poll_interval=poll_interval),
        targets={
            "nrs": configs.nrs_target(
                sb,
                max_in_flight=max_in_flight,
                rate_limit=rate_limit,
                lookup_before_create=lookup_before_create,
            )
        },
        pipelines=[configs.NRS_PIPELINE],
    )


def sync(config: Path, deadline_s: float | None = None) -> Delivered:
    """Ingest the stream to its end (untimed), then deliver (timed, see :class:`Delivered`)."""
    eng = open_engine(config)
    try:
        ingest_to_end(eng)
        return deliver_all(eng, deadline_s=deadline_s)
    finally:
        eng.close()


def done_count(delivered: Delivered) -> int:
    stats = delivered.stats.get("nrs")
    return int(getattr(stats, "done", 0))


def basic_auth() -> str:
    user = CREDENTIALS["BENCH_NRS_USERNAME"]
    password = CREDENTIALS["BENCH_NRS_API_PASSWORD"]
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bare_create_rate(api: str, contacts: int, threads: int) -> float:
    """Contacts/s of a bare ``threads``-thread httpx loop POSTing new contacts (one call each)."""
    headers = {"Authorization": basic_auth(), "Accept": "application/json"}
    with httpx.Client(base_url=api, headers=headers, timeout=60) as http:
        group = http.post("/groups", json={"name": f"Bare {time.time_ns()}"})
        group.raise_for_status()
        group_id = int(group.json()["data"]["id"])
    lock = threading.Lock()
    todo: Iterator[int] = iter(range(contacts))
    stamp = time.time_ns()
    failures: list[str] = []

    def worker(http: httpx.Client) -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            r = http.post(
                "/contacts",
                json={"email": f"bare-{stamp}-{i}@example.com", "groupsIds": [group_id]},
            )
            if r.status_code >= 300:
                failures.append(f"{r.status_code} {r.text[:100]}")

    # The clients are built before the clock starts, as the engine builds its client before
    # it delivers: an httpx.Client costs about 25 ms of CPU (its SSL context), 16 of them
    # 0.4 s of a 4 s loop.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.Client(base_url=api, headers=headers, timeout=60, limits=limits)
        for _ in range(threads)
    ]
    pool = [threading.Thread(target=worker, args=(http,)) for http in clients]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    for http in clients:
        http.close()
    if failures:
        raise RuntimeError(f"bare loop: {len(failures)} failures, first: {failures[0]}")
    return contacts / seconds
