"""change-latency: seconds from a change in Contacthub to 360NRS, daemon ``syncer run``.

The daemon runs as a subprocess with ``poll_interval: 1s``. After the first sync settles,
each change sets a customer's ``base.firstName`` through the Contacthub API; a watcher polls
the 360NRS simulator's state every 20 ms until that contact carries the new name. Changes are
sequential, spaced by a random pause so they land at every phase of the poll cycle.
Target: p95 <= poll interval + 1 s. (The daemon wakes the target's delivery job when a poll
committed deliveries, so a change waits for the next poll, not also for a delivery tick.)
"""

from __future__ import annotations

import random
import statistics
import time
from functools import partial
from typing import Any

import httpx

from syncer.sandbox.contacthub import DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID

from ..core import Check, NotRun, Row
from ..engine import Daemon, require, require_cli, wait_until
from ..sandbox import Admin, SandboxProcess
from ..scenario import Context, Metric, Scenario
from .nrs_common import nrs_config
from .steady_state import eligible

NAME = "change-latency"
POLL = 1.0
METRICS = (
    Metric("change -> 360NRS p50", "s"),
    Metric("change -> 360NRS p95", "s", (Check("value", "<=", POLL + 1.0),)),
    Metric("change -> 360NRS max", "s"),
)


def names_by_email(nrs: Admin) -> dict[str, Any]:
    return {c["email"]: c.get("name") for c in nrs.state()["contacts"] if c.get("email")}


def arrived(nrs: Admin, email: str, name: str) -> bool:
    return bool(names_by_email(nrs).get(email) == name)


def settled(nrs: Admin, seconds: float = 2.0, timeout: float = 120.0) -> bool:
    """Wait until 360NRS saw requests and then none for ``seconds``."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = int(nrs.requests()["total"])
        if total != last:
            last, since = total, time.monotonic()
        elif total > 0 and time.monotonic() - since >= seconds:
            return True
        time.sleep(0.2)
    return False


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return float(statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1])


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.daemon")
    require_cli("run")
    n_changes = 8 if ctx.quick else 30
    latencies: list[float] = []
    with SandboxProcess(["contacthub", "nrs360"]) as sb:
        hub, nrs = sb.admin("contacthub"), sb.admin("nrs360")
        hub.load({"generate": {"customers": 300, "seed": 81}, "append_updates": True})
        customers = {c["id"]: c for c in hub.state()["customers"]}
        ids = eligible(list(customers.values()))
        random.Random(3).shuffle(ids)
        workdir = ctx.dir("change-latency")
        daemon = Daemon(
            nrs_config(workdir, sb, max_in_flight=4, poll_interval="1s"), workdir / "daemon.log"
        )
        try:
            if not settled(nrs) or not daemon.alive():
                raise NotRun(f"the daemon's first sync did not settle: {daemon.tail()}")
            headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
            rng = random.Random(5)
            with httpx.Client(
                base_url=sb.api("contacthub"), headers=headers, timeout=30
            ) as hub_api:
                for i, cid in enumerate(ids[:n_changes]):
                    email = customers[cid]["base"]["contacts"]["email"].strip().lower()
                    name = f"Latency{i}"
                    time.sleep(rng.uniform(0.0, POLL))
                    started = time.perf_counter()
                    r = hub_api.patch(
                        f"/workspaces/{DEFAULT_WORKSPACE_ID}/customers/{cid}",
                        json={"base": {"firstName": name}},
                    )
                    r.raise_for_status()
                    if not wait_until(partial(arrived, nrs, email, name), timeout=30, poll=0.02):
                        raise NotRun(f"change {i} did not reach 360NRS in 30 s: {daemon.tail()}")
                    latencies.append(time.perf_counter() - started)
        finally:
            code = daemon.stop()
    ctx.log(f"change-latency: {len(latencies)} changes, daemon exit {code}")
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    rows = [
        METRICS[0].row(NAME, value=p50, floor=POLL, floor_label="poll interval", samples=latencies),
        METRICS[1].row(NAME, value=p95, floor=POLL, floor_label="poll interval"),
        METRICS[2].row(NAME, value=max(latencies), floor=POLL, floor_label="poll interval"),
    ]
    rows[0].notes.append(
        f"{len(latencies)} sequential changes; max {max(latencies):.2f} s; daemon exit code {code}"
    )
    return rows


SCENARIO = Scenario(
    name=NAME,
    description="seconds from a Contacthub change to 360NRS under `syncer run` (poll 1 s)",
    metrics=METRICS,
    run=run,
    budget_s=40,
)
