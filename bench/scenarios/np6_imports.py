"""np6-imports: NP6 CSV imports for 200,000 rows, ``max_rows: 50,000``.

Runs ``syncer sync --once`` as a subprocess (killed at the deadline if it has not finished)
and measures the HTTP calls per import and per imported row (NP6 simulator's request log), the
imports started against ``ceil(rows / max_rows)`` (rows = rows of completed executions), and
end-to-end rows/s (the whole ``sync --once``: ingest of the stream + delivery, fresh state
DB). Floor: 4 calls per import (upload the file, start the execution, poll it, plus the
definition's one-off calls amortised), and 1 poll per import (``GET .../executions`` per
``POST .../executions``): the import runner waits for the file's size before its first poll
(``syncer/targets/np6/importjob.py``, ``FIRST_POLL_*``).
"""

from __future__ import annotations

import math
from typing import Any

from .. import configs
from ..core import Check, NotRun, Row
from ..engine import require, require_cli, run_measured, syncer_cmd
from ..sandbox import SandboxProcess
from ..scenario import Context, Metric, Scenario

NAME = "np6-imports"
CALLS_PER_IMPORT = 4
METRICS = (
    Metric("imports per ceil(rows/max_rows)", "", (Check("value", "<=", 1.0),)),
    Metric("calls per import", "calls", (Check("ratio", "<=", 1.0),)),
    Metric("polls per import", "polls", (Check("value", "<=", 1.5),)),
    Metric("calls per imported row", "calls"),
    Metric("end-to-end rows/s (sync --once)", "rows/s"),
)


def api_calls(requests: dict[str, Any]) -> int:
    return sum(n for key, n in requests["counts"].items() if "/_sandbox" not in key)


def executions(requests: dict[str, Any]) -> int:
    return sum(
        n
        for key, n in requests["counts"].items()
        if key.startswith("POST ") and key.endswith("/executions")
    )


def polls(requests: dict[str, Any]) -> int:
    return sum(
        n
        for key, n in requests["counts"].items()
        if key.startswith("GET ") and key.endswith("/executions")
    )


def imported_rows(state: dict[str, Any]) -> int:
    """Rows of the executions NP6 completed (state 1)."""
    return sum(
        int(e.get("rows") or 0)
        for d in state.get("imports", [])
        for e in d.get("executions", [])
        if e.get("state") == 1
    )


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.deliver", "syncer.targets.np6", "syncer.engine.ingest")
    require_cli("sync")
    # ~94 % of generated customers have an e-mail (the pipeline's condition).
    customers, max_rows = (21_300, 5_000) if ctx.quick else (213_000, 50_000)
    deadline = 90.0 if ctx.quick else 120.0
    with SandboxProcess(["contacthub", "np6"]) as sb:
        ctx.log(f"np6: loading {customers:,} customers into the stream")
        sb.admin("contacthub").load(
            {"generate": {"customers": customers, "seed": 31}, "append_updates": True}
        )
        np6 = sb.admin("np6")
        cfg = configs.write_config(
            ctx.dir("np6"),
            source_cfg=configs.source(sb),
            targets={"np6": configs.np6_target(sb, max_rows=max_rows)},
            pipelines=[configs.NP6_PIPELINE],
        )
        ctx.log(f"np6: syncer sync --once (deadline {deadline:.0f} s)")
        done = run_measured(syncer_cmd(cfg, "sync", "--once"), timeout=deadline)
        requests = np6.requests()
        rows = imported_rows(np6.state())
    calls, imports = api_calls(requests), executions(requests)
    cut = f", killed at the {deadline:.0f} s deadline" if done.timed_out else ""
    detail = (
        f"{customers:,} customers -> {rows:,} rows imported in {imports} imports, {calls} calls, "
        f"`sync --once` {done.seconds:.0f} s{cut}; calls: {dict(requests['counts'])}"
    )
    ctx.log(f"np6: {detail}")
    if rows == 0 or imports == 0:
        raise NotRun(f"no import completed in {done.seconds:.0f} s{cut}; last error: {done.error}")
    expected = math.ceil(rows / max_rows)
    out = [
        METRICS[0].row(NAME, value=imports / expected, floor=1.0, floor_label="1 per max_rows"),
        METRICS[1].row(
            NAME, value=calls / imports, floor=float(CALLS_PER_IMPORT), floor_label="4 per import"
        ),
        METRICS[2].row(
            NAME, value=polls(requests) / imports, floor=1.0, floor_label="1 per import"
        ),
        METRICS[3].row(
            NAME,
            value=calls / rows,
            floor=CALLS_PER_IMPORT / max_rows,
            floor_label=f"4/{max_rows:,}",
        ),
        METRICS[4].row(NAME, value=rows / done.seconds),
    ]
    out[0].notes.append(detail)
    if done.timed_out:
        out[0].notes.append("partial: only the imports completed before the deadline count")
    out[0].notes.append("1 repetition (time budget)")
    return out


SCENARIO = Scenario(
    name=NAME,
    description="NP6 calls per import/row and end-to-end rows/s, 200,000 rows",
    metrics=METRICS,
    run=run,
    budget_s=140,
)
