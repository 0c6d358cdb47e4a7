"""ingest: updates/s from the update stream into the inbox (committed), 3 pipelines matching.

Floor: a bare httpx loop reading the same pages (4,000 updates each) and discarding them.
Every repetition ingests the whole stream into a fresh SQLite state DB.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx
import orjson

from syncer.sandbox.contacthub import DEFAULT_NODE_ID, DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID

from .. import configs
from ..core import Check, NotRun, Row, Stopwatch, median
from ..engine import ingest_to_end, open_engine, require
from ..sandbox import SandboxProcess
from ..scenario import Context, Metric, Scenario

NAME = "ingest"
PAGE = 4000
METRICS = (Metric("updates/s into the inbox", "upd/s", (Check("ratio", ">=", 0.5),)),)


def bare_read(base: str, total: int) -> float:
    """Seconds a bare loop takes to read every page of the stream and drop it."""
    with (
        httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
            timeout=120,
        ) as http,
        Stopwatch() as sw,
    ):
        offset, seen = 0, 0
        while True:
            r = http.get(
                f"/workspaces/{DEFAULT_WORKSPACE_ID}/updates",
                params={"offset": offset, "size": PAGE, "nodeId": DEFAULT_NODE_ID},
            )
            r.raise_for_status()
            body = orjson.loads(r.content)
            n = len(body["updates"])
            if n == 0:
                break
            seen += n
            offset = body["nextOffset"]
            if n < PAGE:
                break
    if seen != total:
        raise NotRun(f"bare reader saw {seen} updates, expected {total}")
    return sw.seconds


def pipelines() -> list[dict[str, Any]]:
    """The three bench pipelines without conditions: every customer matches all three."""
    out = []
    for p in (configs.NRS_PIPELINE, configs.OCTOPUSH_PIPELINE, configs.NP6_PIPELINE):
        q = copy.deepcopy(p)
        q.pop("when", None)
        out.append(q)
    return out


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.ingest", "syncer.engine.apply", "syncer.state.store")
    n = 20_000 if ctx.quick else 100_000
    with SandboxProcess(["contacthub"]) as sb:
        ctx.log(f"ingest: loading {n:,} customers into the stream")
        loaded = sb.admin("contacthub").load(
            {"generate": {"customers": n, "events": 0, "seed": 11}, "append_updates": True}
        )
        total = int(loaded["lastOffset"])
        targets = {
            "nrs": configs.nrs_target(sb),
            "octo": configs.octopush_target(sb),
            "np6": configs.np6_target(sb),
        }
        # Targets are never called here: only ingest runs. Their URLs just need to parse.
        values: list[float] = []
        floors: list[float] = []
        cpu: list[float] = []
        for rep in range(ctx.reps):
            secs = bare_read(sb.api("contacthub"), total)
            floors.append(total / secs)
            ctx.log(f"ingest rep {rep + 1}: bare read {total / secs:,.0f} upd/s")
            cfg_path = configs.write_config(
                ctx.dir(f"ingest-{rep}"),
                source_cfg=configs.source(sb, page_size=PAGE),
                targets=targets,
                pipelines=pipelines(),
            )
            eng = open_engine(cfg_path)
            try:
                cpu0 = time.process_time()
                with Stopwatch() as sw:
                    result = ingest_to_end(eng)
                cpu.append(time.process_time() - cpu0)
                deliveries = result.stats.deliveries_created
            finally:
                eng.close()
            if result.updates != total or result.offset != total:
                raise NotRun(
                    f"ingest stopped at offset {result.offset} ({result.reason}), "
                    f"{result.updates} of {total} updates"
                )
            values.append(total / sw.seconds)
            ctx.log(
                f"ingest rep {rep + 1}: engine {total / sw.seconds:,.0f} upd/s "
                f"({sw.seconds:.1f} s, {deliveries:,} deliveries)"
            )
    row = METRICS[0].row(
        NAME,
        value=median(values),
        floor=median(floors),
        floor_label="bare httpx read",
        samples=values,
        floor_samples=floors,
    )
    row.notes.append(
        f"{total:,} updates, pages of {PAGE:,}, 3 customer pipelines all matching "
        f"({deliveries:,} deliveries per run); engine CPU {median(cpu) or 0:.1f} s per run "
        f"(wall {total / (median(values) or 1):.1f} s)"
    )
    return [row]


SCENARIO = Scenario(
    name=NAME,
    description="stream -> inbox updates/s vs a bare httpx page reader",
    metrics=METRICS,
    run=run,
    budget_s=120,
)
