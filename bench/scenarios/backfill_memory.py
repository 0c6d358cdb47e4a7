"""backfill-memory: peak RSS of ``syncer backfill`` at 100,000 and 1,000,000 customers.

``syncer backfill`` runs as a subprocess (exactly as an operator runs it) against a Contacthub
simulator holding the customers (loaded with ``/_sandbox/load`` ``generate``); its peak RSS is
the larger of psutil polling (every 50 ms) and the kernel's ``VmHWM``. Targets: <= 300 MB at
1,000,000 and the two sizes within 1.2x. The simulator answers the backfill's ``registeredAt``
range searches by bisection (:mod:`syncer.sandbox.contacthub.rangesearch`), so the time is the
backfill's own; each note says how long loading the simulator took.

A run that exceeds its time budget is killed; its peak RSS up to then is reported with the
number of customers it had scanned, and the row says it did not finish.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from .. import configs
from ..core import Check, Row
from ..engine import ProcResult, require, require_cli, run_measured, syncer_cmd
from ..sandbox import SandboxProcess
from ..scenario import Context, Metric, Scenario

NAME = "backfill-memory"
MB = 1024 * 1024
METRICS = (
    Metric("peak RSS, small", "MB"),
    Metric("peak RSS, large", "MB", (Check("value", "<=", 300.0),)),
    Metric("peak RSS large / small", "x", (Check("value", "<=", 1.2),)),
)


def scanned(db: Path) -> int:
    """Customers the backfill recorded in the inbox so far."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT count(*) FROM inbox WHERE origin = 'backfill'").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def one_size(
    ctx: Context, sb: SandboxProcess, n: int, timeout: float
) -> tuple[ProcResult, int, float]:
    """Load ``n`` customers, run ``syncer backfill``: its result, the customers scanned and
    the seconds loading took."""
    hub = sb.admin("contacthub")
    hub.reset()
    ctx.log(f"backfill-memory: loading {n:,} customers")
    started = time.perf_counter()
    hub.load({"generate": {"customers": n, "seed": 71}})
    loaded = time.perf_counter() - started
    workdir = ctx.dir(f"backfill-{n}")
    config = configs.write_config(
        workdir,
        source_cfg=configs.source(sb),
        targets={"nrs": configs.nrs_target(sb)},
        pipelines=[configs.NRS_PIPELINE],
    )
    ctx.log(f"backfill-memory: syncer backfill of {n:,} customers (budget {timeout:.0f} s)")
    result = run_measured(syncer_cmd(config, "backfill"), timeout=timeout, cwd=workdir)
    return result, scanned(workdir / "state.db"), loaded


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.backfill")
    require_cli("backfill")
    sizes = (10_000, 100_000) if ctx.quick else (100_000, 1_000_000)
    # 1,000,000: about 210 s on a quiet machine, 350 s at a load average of 4.5 (2 cores)
    budgets = (120.0, 180.0) if ctx.quick else (120.0, 360.0)
    rows = [
        METRICS[0].row(NAME, metric=f"peak RSS at {sizes[0]:,}"),
        METRICS[1].row(NAME, metric=f"peak RSS at {sizes[1]:,}"),
        METRICS[2].row(NAME),
    ]
    with SandboxProcess(["contacthub"]) as sb:
        for row, n, budget in zip(rows, sizes, budgets, strict=False):
            result, count, loaded = one_size(ctx, sb, n, budget)
            peak_mb = result.peak_rss / MB
            note = (
                f"{n:,} customers (simulator loaded in {loaded:.0f} s): {count:,} scanned into "
                f"the inbox in {result.seconds:.0f} s, peak RSS {peak_mb:.0f} MB"
            )
            ctx.log(f"backfill-memory: {note}")
            if result.timed_out:
                row.not_run = (
                    f"did not finish in {budget:.0f} s ({count:,} of {n:,} scanned; "
                    f"peak RSS {peak_mb:.0f} MB so far)"
                )
            elif result.returncode != 0:
                row.not_run = f"syncer backfill exited {result.returncode}: {result.error}"
            else:
                output = result.stdout + result.stderr
                found = re.search(r"finished: (\d+)", output)
                waited = re.search(r'"write_wait_s": ([\d.]+)', output)
                row.value = peak_mb
                note += f" (the command reported {found.group(1) if found else '?'})"
                if waited:  # the scan's reads overlap the writes; this is what they did not hide
                    note += f"; the scan waited {float(waited.group(1)):.0f} s for its writes"
            row.notes.append(note)
    small, large = rows[0].value, rows[1].value
    if small and large:
        rows[2].value = large / small
    else:
        rows[2].not_run = "needs both sizes to finish"
    return rows


SCENARIO = Scenario(
    name=NAME,
    description="peak RSS of `syncer backfill` at 100,000 and 1,000,000 customers",
    metrics=METRICS,
    run=run,
    budget_s=330,
)
