"""steady-state: 360NRS HTTP calls per changed contact after the first sync.

After a first full sync, each round changes a mapped field (``base.firstName``) of K
customers and an unmapped one (``extended.points``) of U others through the Contacthub API
(so the changes arrive by the update stream), then syncs once per kind and counts the
360NRS requests in the simulator's log. Floor: 1 call per changed contact; 0 for unchanged.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from syncer.sandbox.contacthub import DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID

from ..core import Check, NotRun, Row, median
from ..engine import require
from ..sandbox import SandboxProcess
from ..scenario import Context, Metric, Scenario
from .nrs_common import api_calls, done_count, nrs_config, sync

NAME = "steady-state"
METRICS = (
    Metric("360NRS calls per changed contact", "calls", (Check("ratio", "<=", 1.05),)),
    Metric("360NRS calls per unchanged contact", "calls", (Check("value", "<=", 0.0),)),
)


def eligible(customers: list[dict[str, Any]]) -> list[str]:
    """Ids of customers the pipeline takes, with an e-mail no other customer has."""

    def email(c: dict[str, Any]) -> str:
        return str(((c.get("base") or {}).get("contacts") or {}).get("email") or "").strip().lower()

    counts = Counter(email(c) for c in customers)
    return sorted(c["id"] for c in customers if email(c) and counts[email(c)] == 1)


def patch_all(api: str, ids: list[str], body_for: Any) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    with httpx.Client(base_url=api, headers=headers, timeout=60) as http:
        for i, cid in enumerate(ids):
            r = http.patch(f"/workspaces/{DEFAULT_WORKSPACE_ID}/customers/{cid}", json=body_for(i))
            r.raise_for_status()


def measured_sync(config: Path, sb: SandboxProcess) -> int:
    nrs = sb.admin("nrs360")
    nrs.clear_requests()
    sync(config)
    return api_calls(nrs.requests())


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.deliver", "syncer.targets.nrs360", "syncer.engine.ingest")
    customers, k = (600, 50) if ctx.quick else (3_000, 200)
    changed: list[float] = []
    unchanged: list[float] = []
    details: list[str] = []
    with SandboxProcess(["contacthub", "nrs360"]) as sb:
        hub = sb.admin("contacthub")
        hub.load({"generate": {"customers": customers, "seed": 61}, "append_updates": True})
        config = nrs_config(ctx.dir("steady-state"), sb)
        first = sync(config)
        if done_count(first) == 0:
            raise NotRun(f"first sync delivered nothing (stats: {first.stats})")
        ids = eligible(hub.state()["customers"])
        rng = random.Random(7)
        rng.shuffle(ids)
        if len(ids) < 2 * k * ctx.reps:
            k = len(ids) // (2 * ctx.reps)
        api = sb.api("contacthub")
        for rep in range(ctx.reps):
            batch = ids[2 * k * rep : 2 * k * (rep + 1)]
            mapped, unmapped = batch[:k], batch[k:]
            patch_all(api, mapped, lambda i, r=rep: {"base": {"firstName": f"Steady{r}n{i}"}})
            calls_changed = measured_sync(config, sb)
            patch_all(api, unmapped, lambda i, r=rep: {"extended": {"points": 90_000 + r * k + i}})
            calls_unchanged = measured_sync(config, sb)
            changed.append(calls_changed / k)
            unchanged.append(calls_unchanged / k)
            details.append(
                f"round {rep + 1}: {calls_changed} calls/{k} changed, "
                f"{calls_unchanged} calls/{k} unchanged"
            )
            ctx.log(f"steady-state {details[-1]}")
    row = METRICS[0].row(
        NAME, value=median(changed), floor=1.0, floor_label="1 PUT", samples=changed
    )
    row.notes.append(f"{customers:,} customers first synced; " + "; ".join(details))
    zero = METRICS[1].row(
        NAME, value=median(unchanged), floor=0.0, floor_label="none", samples=unchanged
    )
    return [row, zero]


SCENARIO = Scenario(
    name=NAME,
    description="360NRS calls per changed / unchanged contact after the first sync",
    metrics=METRICS,
    run=run,
    budget_s=20,
)
