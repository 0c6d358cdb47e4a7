"""What an operator sees: progress of ``backfill`` and ``sync --once`` (live on a TTY, log
lines otherwise, nothing with ``--quiet``), ``status``, ``dlq list`` grouped by reason,
``plan`` with the target's own validation and ``--from-stream``, and ``--json`` everywhere.

The real ``syncer`` runs against the sandbox's simulators on 127.0.0.1.
"""

from __future__ import annotations

import copy
import json
import os
import pty
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import SYNCER, Sandbox, human_lines, run


def log_events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def progress_lines(stderr: str) -> list[str]:
    return [e["event"] for e in log_events(stderr) if e.get("component") == "progress"]


@pytest.fixture(scope="module")
def synced(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A backfill then a ``sync --once`` of the sandbox (both with progress lines), kept for
    the read-only commands of this module."""
    folder = tmp_path_factory.mktemp("synced")
    config = sandbox.write(folder)
    env = sandbox.env(SYNCER_PROGRESS_EVERY="0")
    backfill = run(["backfill", "--config", str(config)], cwd=folder, env=env)
    assert backfill.returncode == 0, backfill.stderr
    sync = run(["sync", "--once", "--config", str(config)], cwd=folder, env=env)
    assert sync.returncode == 1, sync.stderr  # the sandbox has bad phones: invalid records
    return {"folder": folder, "config": config, "backfill": backfill, "sync": sync}


def committed_offset(synced: dict[str, Any]) -> int:
    with sqlite3.connect(synced["folder"] / "syncer.db") as conn:
        (offset,) = conn.execute('SELECT "offset" FROM checkpoints').fetchone()
    return int(offset)


def cli(synced: dict[str, Any], sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return run([*args, "--config", str(synced["config"])], cwd=synced["folder"], env=sandbox.env())


def test_backfill_progress_lines_show_totals_and_the_end(synced: dict[str, Any]) -> None:
    lines = progress_lines(synced["backfill"].stderr)
    assert lines, synced["backfill"].stderr
    final = lines[-1]
    # the totals come from the search's totalElements: 60 customers, 18 completedOrder events
    assert final.startswith("backfill finished: customers: 60/60"), final
    assert "events: 18/18" in final and "queued" in final
    assert all(" rate " in line or "/s" in line for line in lines)
    assert "61 deliveries queued" in synced["backfill"].stdout


def test_sync_progress_lines_per_target(synced: dict[str, Any]) -> None:
    lines = progress_lines(synced["sync"].stderr)
    final = lines[-1]
    assert final.startswith("sync finished: "), final
    # settled / total per target; the dead (here: invalid) are counted as settled
    assert "np6: 18/18" in final and "nrs: 38/38" in final and "octo: 5/5, 3 dead" in final
    out = synced["sync"].stdout
    # the example's newsletter phone is optional: a bad phone no longer stops the contact
    assert "nrs: 38 done" in out and "octo: 2 done" in out and "3 invalid, 0 dead" in out


@pytest.mark.parametrize("command", [["backfill", "--quiet"], ["sync", "--once", "-q"]])
def test_quiet_prints_no_progress(sandbox: Sandbox, tmp_path: Path, command: list[str]) -> None:
    config = sandbox.write(tmp_path)
    env = sandbox.env(SYNCER_PROGRESS_EVERY="0")
    done = run([*command, "--config", str(config)], cwd=tmp_path, env=env)
    assert done.returncode in (0, 1), done.stderr
    assert progress_lines(done.stderr) == []
    assert ("backfill finished" if command[0] == "backfill" else "result: ") in done.stdout


def test_progress_on_a_tty_is_a_live_display(sandbox: Sandbox, tmp_path: Path) -> None:
    """stderr on a pseudo-terminal: rich draws bars (no progress log line)."""
    config = sandbox.write(tmp_path)
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [SYNCER, "--log-json", "backfill", "--config", str(config)],
            cwd=tmp_path,
            env=sandbox.env(COLUMNS="160"),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert done.returncode == 0, screen
    assert "customers" in screen and "60/60" in screen and "━" in screen  # a rich bar
    assert "backfill progress" not in screen and "backfill finished:" not in screen


def test_status_table_and_json(synced: dict[str, Any], sandbox: Sandbox) -> None:
    done = cli(synced, sandbox, "status", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    queues = {q["pipeline"]: q for q in data["queues"]}
    assert set(queues) == {"newsletter", "sms-vip", "orders-np6"}
    assert (queues["sms-vip"]["target"], queues["sms-vip"]["done"]) == ("octo", 2)
    assert (queues["sms-vip"]["invalid"], queues["sms-vip"]["dead"]) == (3, 0)
    assert queues["newsletter"]["done"] == 38
    assert data["totals"]["invalid"] == 3 and data["erasures_pending"] == 0
    kinds = [r["kind"] for r in data["runs"]]
    assert kinds[:2] == ["sync", "backfill"]
    sync_run = data["runs"][0]
    assert sync_run["duration_seconds"] is not None and sync_run["started_at"] > 0
    assert sync_run["targets"]["octo"] == {
        "done": 2,
        "invalid": 3,
        "dead": 0,
        "open": 0,
        "stopped": None,
    }
    assert data["runs"][1]["backfill"]["customers"] == 60
    assert data["source"]["backfill"]["state"] == "done"
    assert data["streams"] == [data["source"]] and data["source"]["source"] == "default"

    plain = cli(synced, sandbox, "status")
    lines = plain.stdout.splitlines()
    queue = (
        "queue sms-vip -> octo: pending 0, in_flight 0, failed 0, done 2, invalid 3, dead 0, "
        "discarded 0"
    )
    assert queue in lines
    assert any(line.startswith("run sync-") and "octo 2 done, 3 invalid" in line for line in lines)
    assert "None" not in plain.stdout and "{}" not in plain.stdout


def test_dlq_list_groups_by_reason(sandbox: Sandbox, tmp_path: Path) -> None:
    """38 contacts refused for the same reason are one line with their count."""
    pipelines = copy.deepcopy(sandbox.doc["pipelines"])
    newsletter = next(p for p in pipelines if p["name"] == "newsletter")
    del newsletter["groups"]
    config = sandbox.write(tmp_path, pipelines=[newsletter])
    env = sandbox.env()
    assert run(["backfill", "-q", "-c", str(config)], cwd=tmp_path, env=env).returncode == 0
    assert run(["sync", "--once", "-q", "-c", str(config)], cwd=tmp_path, env=env).returncode == 1
    done = run(["dlq", "list", "--json", "-c", str(config)], cwd=tmp_path, env=env)
    data = json.loads(done.stdout)
    assert (data["total"], data["invalid"], data["dead"]) == (38, 38, 0)
    (group,) = data["groups"]
    assert (group["pipeline"], group["target"], group["kind"], group["count"]) == (
        "newsletter",
        "nrs",
        "invalid",
        38,
    )
    assert group["reason"] == "a 360NRS contact needs at least one group; the pipeline maps none"
    assert "records" not in data


def test_dlq_list_text(synced: dict[str, Any], sandbox: Sandbox) -> None:
    text = cli(synced, sandbox, "dlq", "list", "-p", "sms-vip").stdout
    assert "3 dead deliveries in 3 groups" in text, text
    assert "invalid  sms-vip -> octo" in text and "(e.g. #" in text
    assert "phone '…' is not a valid number" in text  # the value masked, as in the logs


def test_dlq_list_all_keeps_the_total(synced: dict[str, Any], sandbox: Sandbox) -> None:
    limited = json.loads(
        cli(synced, sandbox, "dlq", "list", "--all", "--limit", "2", "--json").stdout
    )
    assert limited["total"] == 3 and len(limited["records"]) == 2  # --limit keeps the total
    assert {r["kind"] for r in limited["records"]} == {"invalid"}
    every = cli(synced, sandbox, "dlq", "list", "--all", "--limit", "1").stdout
    assert "3 dead deliveries (1 shown, --limit 1)" in every


@pytest.mark.parametrize(
    ("command", "keys"),
    [
        (["offsets", "show"], {"source", "stream", "offset", "last_offset", "lag", "checked_at"}),
        (["plan"], {"from_stream", "pipelines", "invalid", "unchecked_targets"}),
        (["health"], {"healthy", "jobs"}),
        (
            ["status"],
            {"generated_at", "source", "streams", "queues", "totals", "erasures_pending", "runs"},
        ),
        (["dlq", "list"], {"total", "invalid", "dead", "groups"}),
    ],
    # sorted: a set's order differs between xdist workers, and so would the test ids
    ids=lambda v: " ".join(sorted(v) if isinstance(v, set) else v),
)
def test_json_of_a_reporting_command_parses(
    synced: dict[str, Any], sandbox: Sandbox, command: list[str], keys: set[str]
) -> None:
    done = cli(synced, sandbox, *command, "--json")
    assert done.returncode in (0, 1), done.stderr  # health: 1, no daemon heartbeats
    data = json.loads(done.stdout)
    assert set(data) == keys
    if command == ["health"]:
        assert data["healthy"] is False and all(not j["fresh"] for j in data["jobs"])


def test_sync_and_backfill_json(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write(tmp_path)
    done = run(["backfill", "--json", "--config", str(config)], cwd=tmp_path, env=sandbox.env())
    data = json.loads(done.stdout)
    assert (data["customers"], data["events"], data["finished"]) == (60, 18, True)
    done = run(["sync", "--once", "--json", "-c", str(config)], cwd=tmp_path, env=sandbox.env())
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["clean"] is False and data["targets"]["octo"]["invalid"] == 3


def test_plan_refuses_unknown_names(synced: dict[str, Any], sandbox: Sandbox) -> None:
    done = cli(synced, sandbox, "plan", "--target", "nrz")
    assert done.returncode == 2
    assert human_lines(done.stderr) == [
        "unknown target 'nrz' (known: np6, nrs, octo); did you mean 'nrs'?"
    ]
    done = cli(synced, sandbox, "plan", "-p", "newsleter")
    assert done.returncode == 2 and "did you mean 'newsletter'?" in done.stderr


def test_plan_applies_the_targets_own_validation(sandbox: Sandbox, tmp_path: Path) -> None:
    """A 360NRS pipeline without groups maps fine but 360NRS refuses every contact: the plan
    says so, as the run would."""
    pipelines = copy.deepcopy(sandbox.doc["pipelines"])
    newsletter = next(p for p in pipelines if p["name"] == "newsletter")
    del newsletter["groups"]
    config = sandbox.write(tmp_path, pipelines=pipelines)
    env = sandbox.env()
    assert run(["backfill", "-q", "-c", str(config)], cwd=tmp_path, env=env).returncode == 0
    done = run(["plan", "--json", "-p", "newsletter", "-c", str(config)], cwd=tmp_path, env=env)
    data = json.loads(done.stdout)
    counts = data["pipelines"]["newsletter"]
    assert (counts["create"], counts["invalid"]) == (0, 38), counts
    by_target = [i for i in data["invalid"] if i["by"] == "target"]
    assert len(by_target) == 38
    assert {i["error"] for i in by_target} == {
        "a 360NRS contact needs at least one group; the pipeline maps none"
    }


def test_plan_from_stream_previews_without_ingesting(
    synced: dict[str, Any], sandbox: Sandbox
) -> None:
    src = sandbox.doc["source"]
    token = sandbox.secrets["CONTACTHUB_TOKEN"]
    body = {
        "nodeId": src["node_id"],
        "externalId": "preview-customer-1",
        "base": {
            "firstName": "Preview",
            "contacts": {"email": "preview.customer@example.com"},
            "address": {"country": "IT"},
        },
        "consents": {"marketing": {"automatic": {"email": {"status": True}}}},
    }
    answer = httpx.post(
        f"{src['base_url']}/workspaces/{src['workspace_id']}/customers",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code in (200, 201), answer.text
    before = committed_offset(synced)
    done = cli(synced, sandbox, "plan", "--from-stream", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["from_stream"] >= 1
    assert data["pipelines"]["newsletter"]["create"] == 1

    assert committed_offset(synced) == before  # nothing ingested
    again = json.loads(cli(synced, sandbox, "plan", "--json").stdout)
    assert again["from_stream"] is None and again["pipelines"] == {}  # nothing queued
