"""``syncer demo`` as a user runs it: a subprocess, small sizes; its numbers against the
simulators (read live, while ``--serve`` keeps them up) and against the state database. The
demo runs ``config/two-brands.yaml``: two sources (brand-it, brand-fr), each its own workspace."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml

SYNCER = [sys.executable, "-c", "from syncer.cli.main import main; main()"]
LIMIT = 60.0  # seconds: the bound for the default size; here only a hang guard (x2)
READY = "sandbox serving"
SOURCES = {"brand-it", "brand-fr"}


def outcomes(summary: dict[str, Any], pipeline: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for run in summary["runs"]:
        for p in run["pipelines"]:
            if p["pipeline"] == pipeline:
                total.update(p["outcomes"])
    return total


def sandbox_state(root: str, name: str) -> Any:
    ports = json.loads(Path(root, "ports.json").read_text())
    return httpx.get(f"{ports[name]['url']}/_sandbox/state", timeout=30).json()


def target_ids(db_path: Path, target: str) -> dict[str, set[str]]:
    """Source name -> the target ids its entities resolved to in ``target`` (the id map)."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT entity_id, target_id FROM id_map WHERE target = ? AND target_id IS NOT NULL",
            (target,),
        ).fetchall()
    out: dict[str, set[str]] = {}
    for entity, tid in rows:
        source = entity.split(":", 1)[0] if ":" in entity else "default"
        out.setdefault(source, set()).add(str(tid))
    return out


def status_sources(lines: list[str]) -> list[str]:
    """The sources named by the ``syncer status`` the demo ran (its ``source NAME (...)`` lines)."""
    start = next(i for i, x in enumerate(lines) if x.startswith("$ syncer status"))
    found = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        if line.startswith("  source "):
            found.append(line.split()[1])
    return found


def run_served(keep: Path, *args: str) -> tuple[list[str], float, subprocess.Popen[str]]:
    """Start ``syncer demo --serve``; the stdout lines up to the ready line and its time."""
    began = time.monotonic()
    proc = subprocess.Popen(
        [*SYNCER, "demo", "--keep", str(keep), "--serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    timer = threading.Timer(LIMIT * 2, proc.kill)
    timer.start()
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(READY):
                break
    finally:
        timer.cancel()
    assert lines and lines[-1].startswith(READY), "\n".join(lines[-40:])
    return lines, time.monotonic() - began, proc


def test_summary_numbers_are_what_the_targets_hold(tmp_path: Path) -> None:
    lines, _elapsed, proc = run_served(tmp_path, "--customers", "150", "--seed", "5")
    try:
        summary = json.loads((tmp_path / "summary.json").read_text())
        nrs = sandbox_state(str(tmp_path), "nrs360")
        octo = sandbox_state(str(tmp_path), "octopush")
        np6 = sandbox_state(str(tmp_path), "np6")
        hub = sandbox_state(str(tmp_path), "contacthub")["workspaces"]
        (console_line,) = [x for x in lines if x.startswith("console: ")]
        console_url = console_line.split()[1]
        overview = httpx.get(console_url, timeout=30)
        runs_page = httpx.get(console_url + "runs", timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    output = "\n".join(lines)
    assert code == 0, output
    assert "demo finished" in output
    # the printed console address answers, with this demo's state database
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", console_url), console_line
    assert overview.status_code == 200 and "<h1>Overview</h1>" in overview.text
    assert overview.headers["content-security-policy"].startswith("default-src 'none'")
    run_ids = [r["run_id"] for r in summary["runs"]]
    assert len(run_ids) == 2 and all(rid and rid in runs_page.text for rid in run_ids)

    # Two sources, each its own workspace: `syncer status` lists both, and each one's committed
    # offset is the end of its workspace's stream in the simulator.
    assert sorted(status_sources(lines)) == sorted(SOURCES), lines
    per_source = {s["source"]: s for s in summary["sources"]}
    assert set(per_source) == SOURCES
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    for name, src in config["sources"].items():
        (offset,) = per_source[name]["offsets"].values()
        assert offset == hub[src["workspace_id"]]["lastOffset"] > 0, (name, hub)
        assert per_source[name]["customers"] > 0

    # Both sources' customers are in 360NRS (newsletter takes every source): each source's
    # contacts, by the id map, are contacts 360NRS holds, and together they are all of them.
    nrs_ids = {str(c["id"]) for c in nrs["contacts"]}
    by_source = target_ids(tmp_path / "syncer.db", "nrs")
    assert set(by_source) == SOURCES
    for name in SOURCES:
        assert by_source[name] and by_source[name] <= nrs_ids, name
        assert per_source[name]["held"]["nrs"] == len(by_source[name])
    assert by_source["brand-it"] | by_source["brand-fr"] == nrs_ids
    # ... and by their own data: brand-fr's generated addresses carry its tag
    fr_emails = {c["email"] for c in nrs["contacts"] if "+brand-fr@" in (c["email"] or "")}
    assert (
        fr_emails
        and {str(c["id"]) for c in nrs["contacts"] if c["email"] in fr_emails}
        <= by_source["brand-fr"]
    )
    # sms-vip names brand-it, orders-np6 names brand-fr: nothing of the other source there
    assert set(target_ids(tmp_path / "syncer.db", "octo")) == {"brand-it"}
    assert set(target_ids(tmp_path / "syncer.db", "np6")) == {"brand-fr"}
    assert per_source["brand-fr"]["held"].get("octo", 0) == 0
    assert per_source["brand-it"]["held"].get("np6", 0) == 0

    news = outcomes(summary, "newsletter")
    assert news["created"] > 0
    # 360NRS: a contact that leaves its only group is deleted (the API cannot hold a contact
    # in no group), so what it holds is created - deleted - left.
    assert len(nrs["contacts"]) == news["created"] - news["deleted"] - news["left"]
    # Octopush keeps a number that leaves its list in the account.
    assert len(octo["contacts"]) == outcomes(summary, "sms-vip")["created"]
    assert len(np6["targets"]) == outcomes(summary, "orders-np6")["created"]
    assert all(c["ok"] for c in summary["checks"]), summary["checks"]

    # The printed table shows the same numbers as summary.json ...
    for run in summary["runs"]:
        news_run = next(p for p in run["pipelines"] if p["pipeline"] == "newsletter")
        row = next(x for x in lines if re.search(rf"\s{re.escape(run['label'])}\s+\d", x))
        cells = [int(n) for n in row.split(run["label"], 1)[1].split()]
        assert cells[0] == news_run["outcomes"].get("created", 0), row
        assert cells[5] == news_run["outcomes"].get("invalid", 0), row

    # ... and summary.json is what the state database logged.
    with sqlite3.connect(tmp_path / "syncer.db") as db:
        logged = Counter(
            dict(
                db.execute(
                    "SELECT outcome, count(*) FROM delivery_log WHERE pipeline = 'newsletter' "
                    "GROUP BY outcome"
                ).fetchall()
            )
        )
    assert logged == news


def test_demo_exits_0_and_says_how_to_run_the_daemon(tmp_path: Path) -> None:
    args = ["demo", "--customers", "100", "--churn", "10", "--seed", "3", "--keep", str(tmp_path)]
    done = subprocess.run([*SYNCER, *args], capture_output=True, text=True, timeout=LIMIT * 2)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    assert "syncer backfill --config" in out and "syncer sync --once --config" in out
    assert f"syncer run --config {tmp_path}/config.yaml" in out
    # `syncer sandbox` serves one workspace node: no such hint for two sources
    assert "syncer sandbox --seed" not in out
    assert "pipeline sms-vip: source brand-it -> target octo" in out
    assert "pipeline newsletter: every source -> target nrs" in out
    # without --serve nothing serves the console once the demo ends: it says what will
    assert out.rstrip().splitlines()[-1].startswith("console: http://127.0.0.1:8470/ while `")
    assert "export CONTACTHUB_TOKEN=" in out
    config = (tmp_path / "config.yaml").read_text()
    assert "${CONTACTHUB_TOKEN}" in config and "sandbox-contacthub-token" not in config

    assert_quiet_logs(done.stdout, done.stderr, json.loads((tmp_path / "summary.json").read_text()))

    # The same seed gives the same results: every run (the one after churn too), what landed
    # in the targets, and every line printed but run ids, ports, paths and timings. The second
    # demo runs in the same --keep directory (as `make demo` twice would): a clean start.
    first = json.loads((tmp_path / "summary.json").read_text())
    second = subprocess.run([*SYNCER, *args], capture_output=True, text=True, timeout=LIMIT * 2)
    assert second.returncode == 0, second.stdout[-4000:]
    repeat = json.loads((tmp_path / "summary.json").read_text())
    for key in ("runs", "landed", "checks", "churn", "sources"):
        assert strip_run_ids(first[key]) == strip_run_ids(repeat[key]), key
    assert masked(done.stdout, tmp_path) == masked(second.stdout, tmp_path)


def strip_run_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_run_ids(v) for k, v in value.items() if k != "run_id"}
    if isinstance(value, list):
        return [strip_run_ids(v) for v in value]
    return value


def masked(out: str, root: Path) -> list[str]:
    """The demo's stdout without what differs between two runs of the same seed."""
    text = out.replace(str(root), "ROOT")
    text = re.sub(r"(sync|backfill)-[0-9a-f]{12}", "RUN", text)
    text = re.sub(r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, took [\d.]+\w+", "AT", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "HOST", text)
    text = re.sub(r"in \d+\.\d+s", "in Ts", text)
    return text.splitlines()


def is_json_log(line: str) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and "event" in event and "level" in event


def assert_quiet_logs(stdout: str, stderr: str, summary: dict[str, Any]) -> None:
    """No log line per record, no JSON line, logs only on stderr: one "records invalid" or
    "records dead" line per pipeline and reason and run, whose counts add up to the rejected
    records."""
    for line in (stdout + stderr).splitlines():
        assert not is_json_log(line), f"JSON log line: {line}"
        assert "record dead" not in line and "record will be retried" not in line, line
        assert "record invalid" not in line, line
        assert not re.search(r"(?<!example_)contacthub_id=", line), line
    # logs go to stderr, the human output to stdout
    assert "records dead" not in stdout and "records invalid" not in stdout
    counted: Counter[str] = Counter()
    for line in stderr.splitlines():
        if "records dead" in line or "records invalid" in line:
            found = re.search(r"count=(\d+).* pipeline=(\S+)", line)
            assert found and "example_contacthub_id=" in line, line
            counted[found.group(2)] += int(found.group(1))
    rejected: Counter[str] = Counter()
    for run in summary["runs"]:
        for p in run["pipelines"]:
            rejected[p["pipeline"]] += p["outcomes"].get("invalid", 0) + p["outcomes"].get(
                "dead", 0
            )
    assert counted == +rejected and sum(counted.values()) > 0
