"""``python -m bench``: run the scenarios, print one table, write ``bench/results.json``."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from .core import NotRun, Row, notes_lines, table_lines, write_results
from .scenario import Context, Scenario
from .scenarios import SCENARIOS

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these scenarios (repeatable, or comma-separated)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON path")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def select(only: Sequence[str]) -> list[Scenario]:
    wanted = [n.strip() for item in only for n in item.split(",") if n.strip()]
    if not wanted:
        return list(SCENARIOS)
    by_name = {s.name: s for s in SCENARIOS}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        known = ", ".join(by_name)
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {known}")
    return [by_name[n] for n in wanted]


def list_lines() -> list[str]:
    width = max(len(s.name) for s in SCENARIOS)
    return [
        f"{s.name.ljust(width)}  ~{s.budget_s / 60:4.1f} min  {s.description}" for s in SCENARIOS
    ]


def run_scenario(scenario: Scenario, ctx: Context) -> list[Row]:
    ctx.log(f"== {scenario.name}: {scenario.description}")
    started = time.monotonic()
    try:
        rows = scenario.run(ctx)
    except NotRun as exc:
        ctx.log(f"{scenario.name}: not run: {exc}")
        rows = scenario.not_run(str(exc))
    except Exception as exc:  # a broken scenario must not hide the others' numbers
        ctx.log(f"{scenario.name}: failed:\n{traceback.format_exc()}")
        rows = scenario.not_run(f"failed: {type(exc).__name__}: {str(exc)[:160]}")
    ctx.log(f"{scenario.name}: {time.monotonic() - started:.1f} s")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print("\n".join(list_lines()))
        return 0
    scenarios = select(args.only)
    # The process settings the `syncer` command applies at start, from the first measurement
    # on: in-process engine runs and the floors measured beside them see the same interpreter.
    from syncer import runtime

    runtime.tune_gc()
    workdir = Path(tempfile.mkdtemp(prefix="syncer-bench-"))
    ctx = Context(workdir=workdir, quick=args.quick, reps=max(1, args.reps), verbose=not args.quiet)
    started = time.monotonic()
    load_before = os.getloadavg()
    rows: list[Row] = []
    try:
        for scenario in scenarios:
            rows.extend(run_scenario(scenario, ctx))
    finally:
        if args.keep:
            ctx.log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    print("\n".join(table_lines(rows)))
    notes = notes_lines(rows)
    if notes:
        print("\nnotes:")
        print("\n".join(notes))
    print(
        f"\n{len(scenarios)} scenario(s) in {elapsed:.0f} s ({'quick' if args.quick else 'full'})"
    )
    out = args.out or DEFAULT_OUT
    meta = {
        "mode": "quick" if args.quick else "full",
        "reps": ctx.reps,
        "scenarios": [s.name for s in scenarios],
        "seconds": round(elapsed, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        # Other work on the machine skews every number; the 1/5/15-min load averages say how much.
        "loadavg_start": [round(x, 2) for x in load_before],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_results(out, rows, meta)
    print(f"results written to {out}")
    return 0
