"""octopush-batching: HTTP calls per contact added, 50,000 adds, ``batch_size: 500``.

Floor: 1/500 (one ``contact/create`` per 500 contacts). ``syncer sync --once`` runs as a
subprocess (killed at the deadline if it has not finished, so a slow run cannot stall the
suite). Calls are counted in the Octopush simulator's request log (every API call, list
creation included); adds are the contacts in the list afterwards. Each repetition starts from
an empty Octopush account and a fresh state DB; the stream is loaded once.
"""

from __future__ import annotations

from typing import Any

from .. import configs
from ..core import Check, NotRun, Row, median
from ..engine import require, require_cli, run_measured, syncer_cmd
from ..sandbox import SandboxProcess
from ..scenario import Context, Metric, Scenario

NAME = "octopush-batching"
BATCH = 500
METRICS = (
    Metric("calls per added contact", "calls", (Check("ratio", "<=", 1.1),)),
    Metric("contacts added/s (sync --once)", "adds/s"),
)


def api_calls(requests: dict[str, Any]) -> int:
    return sum(n for key, n in requests["counts"].items() if "/_sandbox" not in key)


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.deliver", "syncer.targets.octopush", "syncer.engine.ingest")
    require_cli("sync")
    # ~87 % of generated customers have a phone that maps to a valid E.164 number.
    customers = 6_000 if ctx.quick else 58_000
    deadline = 60.0 if ctx.quick else 80.0
    with SandboxProcess(["contacthub", "octopush"]) as sb:
        ctx.log(f"octopush: loading {customers:,} customers into the stream")
        sb.admin("contacthub").load(
            {"generate": {"customers": customers, "seed": 21}, "append_updates": True}
        )
        per_add: list[float] = []
        rates: list[float] = []
        details: list[str] = []
        for rep in range(ctx.reps):
            octo = sb.admin("octopush")
            octo.reset()
            cfg = configs.write_config(
                ctx.dir(f"octopush-{rep}"),
                source_cfg=configs.source(sb),
                targets={"octo": configs.octopush_target(sb, batch_size=BATCH)},
                pipelines=[configs.OCTOPUSH_PIPELINE],
            )
            done = run_measured(syncer_cmd(cfg, "sync", "--once"), timeout=deadline)
            requests = octo.requests()
            added = len(octo.state()["lists"].get("Bench", []))
            if added == 0:
                raise NotRun(f"no contact reached the Octopush list; last error: {done.error}")
            calls = api_calls(requests)
            per_add.append(calls / added)
            rates.append(added / done.seconds)
            cut = f" (killed at the {deadline:.0f} s deadline)" if done.timed_out else ""
            details.append(f"{calls} calls for {added:,} adds in {done.seconds:.0f} s{cut}")
            if done.timed_out:
                ctx.log("octopush: a repetition hit the deadline; not repeating it")
            ctx.log(
                f"octopush rep {rep + 1}: {calls} calls, {added:,} added, "
                f"{added / done.seconds:,.0f} adds/s{cut}; {dict(requests['counts'])}"
            )
            if done.timed_out:
                break
    calls_row = METRICS[0].row(
        NAME,
        value=median(per_add),
        floor=1 / BATCH,
        floor_label=f"1/{BATCH}",
        samples=per_add,
    )
    calls_row.notes.append("; ".join(details))
    rate_row = METRICS[1].row(NAME, value=median(rates), samples=rates)
    rate_row.notes.append("`sync --once` wall time (ingest included); simulator without latency")
    return [calls_row, rate_row]


SCENARIO = Scenario(
    name=NAME,
    description="Octopush calls per added contact, 50,000 adds, batch_size 500",
    metrics=METRICS,
    run=run,
    budget_s=85,
)
