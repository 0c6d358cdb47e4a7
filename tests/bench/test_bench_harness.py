"""Smoke test of the benchmark harness (``bench/``): table, ratios, medians, ``--list``. Runs in
well under 5 s; ``make bench`` itself is not part of ``make test``. (The simulator's indexed
search is checked in ``tests/sandbox/test_contacthub_rangesearch.py``.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.core import Check, Row, fmt_number, median, ratio, table_lines, write_results  # noqa: E402


def test_median_and_ratio() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert median([]) is None
    assert ratio(50.0, 100.0) == 0.5
    assert ratio(None, 100.0) is None
    assert ratio(1.0, 0.0) is None


def test_checks_and_verdicts() -> None:
    fast = Row("s", "m", value=60.0, floor=100.0, checks=[Check("ratio", ">=", 0.5)])
    slow = Row("s", "m", value=40.0, floor=100.0, checks=[Check("ratio", ">=", 0.5)])
    capped = Row("s", "m", value=310.0, checks=[Check("value", "<=", 300.0)])
    skipped = Row("s", "m", checks=[Check("value", "<=", 1.0)], not_run="engine missing")
    assert fast.met is True
    assert slow.met is False
    assert capped.met is False
    assert skipped.met is None
    lines = table_lines([fast, slow, capped, skipped])
    assert lines[0].startswith("| scenario")
    assert "met" in lines[2] and "MISSED" in lines[3]
    assert "not run: engine missing" in lines[5]
    assert len({len(line) for line in lines}) == 1  # columns line up


def test_results_json(tmp_path: Path) -> None:
    row = Row("s", "m", value=2.0, floor=4.0, samples=[1.0, 2.0, 3.0])
    out = tmp_path / "results.json"
    write_results(out, [row], {"mode": "quick"})
    data = json.loads(out.read_text())
    assert data["rows"][0]["ratio"] == 0.5
    assert data["meta"]["mode"] == "quick"


def test_fmt_number() -> None:
    assert fmt_number(12345.6) == "12,346"
    assert fmt_number(0.002) == "0.0020"
    assert fmt_number(None) == "-"


def test_list_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert "ingest" in names and "backfill-memory" in names
