"""Bad command-line arguments exit 2 with one clear line, never a silent 0: an unknown
``--pipeline``, a ``--since`` that is not ISO 8601. A backfill does what its arguments ask:
it resumes an interrupted backfill only when that one had the same arguments.

Against the sandbox's simulators on 127.0.0.1, ``syncer`` run as a subprocess.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from cli_helpers import Sandbox, human_lines, run


@pytest.mark.parametrize(
    "command",
    [["plan"], ["dlq", "list"], ["dlq", "retry"], ["backfill"]],
    ids=" ".join,
)
def test_unknown_pipeline_exits_2_with_the_known_ones(
    sandbox: Sandbox, tmp_path: Path, command: list[str]
) -> None:
    config = sandbox.write(tmp_path)
    # the dlq commands also know the pipelines of the state database: it must exist
    assert (
        run(["db", "upgrade", "-c", str(config)], cwd=tmp_path, env=sandbox.env()).returncode == 0
    )
    done = run(
        [*command, "--pipeline", "newsleter", "-c", str(config)], cwd=tmp_path, env=sandbox.env()
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert human_lines(done.stderr) == [
        "unknown pipeline 'newsleter' (known: newsletter, sms-vip, orders-np6); "
        "did you mean 'newsletter'?"
    ]
    assert done.stdout == ""


def test_dlq_accepts_a_pipeline_that_only_the_store_knows(sandbox: Sandbox, tmp_path: Path) -> None:
    """Dead rows of a pipeline since removed from the config can still be listed."""
    config = sandbox.write(tmp_path)
    assert run(["backfill", "-c", str(config)], cwd=tmp_path, env=sandbox.env()).returncode == 0
    pipelines = [p for p in sandbox.doc["pipelines"] if p["name"] != "sms-vip"]
    smaller = sandbox.write(tmp_path, "smaller.yaml", pipelines=pipelines)
    done = run(
        ["dlq", "list", "-p", "sms-vip", "-c", str(smaller)], cwd=tmp_path, env=sandbox.env()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no dead deliveries\n"
    done = run(["plan", "-p", "sms-vip", "-c", str(smaller)], cwd=tmp_path, env=sandbox.env())
    assert done.returncode == 2 and "unknown pipeline 'sms-vip'" in done.stderr


@pytest.mark.parametrize(
    ("since", "reason"),
    [
        ("yesterday", "is not an ISO 8601 date or date-time"),
        ("2025-13-45", "is not a valid date: month must be in 1..12"),
        ("2025-02-30", "is not a valid date: day is out of range for month"),
        ("2025-01-31T08:00", "has no time zone: add Z (UTC) or an offset"),
        ("31/01/2025", "is not an ISO 8601 date or date-time"),
    ],
)
def test_backfill_refuses_a_since_that_is_not_iso_8601(
    sandbox: Sandbox, tmp_path: Path, since: str, reason: str
) -> None:
    config = sandbox.write(tmp_path)
    done = run(["backfill", "--since", since, "-c", str(config)], cwd=tmp_path, env=sandbox.env())
    assert done.returncode == 2
    (line,) = human_lines(done.stderr)
    assert line.startswith(f"--since {since!r} {reason}") and "2025-01-31T08:00:00Z" in line
    assert not (tmp_path / "syncer.db").exists()  # refused before anything was opened


def scanned(stdout: str) -> int:
    found = re.search(r"finished: (\d+) customer", stdout)
    assert found, stdout
    return int(found.group(1))


def test_backfill_since_takes_dates_and_offsets(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write(tmp_path)
    env = sandbox.env()
    everyone = run(["backfill", "--since", "2000-01-01", "-c", str(config)], cwd=tmp_path, env=env)
    assert everyone.returncode == 0, everyone.stderr
    assert scanned(everyone.stdout) == 60
    future = "2999-01-01T09:00:00+01:00"
    later = run(["backfill", "--since", future, "-c", str(config)], cwd=tmp_path, env=env)
    assert later.returncode == 0, later.stderr
    assert scanned(later.stdout) == 0  # nobody was updated after 2999


def test_a_backfill_resumes_only_a_backfill_with_the_same_arguments(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    pipelines = copy.deepcopy(sandbox.doc["pipelines"])
    (orders,) = (p for p in pipelines if p["entity"] == "event")
    orders["event_types"] = ["completed_order"]  # Contacthub answers 400: the backfill fails
    config = sandbox.write(tmp_path, pipelines=pipelines)
    env = sandbox.env()
    full = run(["backfill", "-p", "newsletter", "-c", str(config)], cwd=tmp_path, env=env)
    assert full.returncode == 0 and scanned(full.stdout) == 60, full.stderr
    failed = run(["backfill", "-p", orders["name"], "-c", str(config)], cwd=tmp_path, env=env)
    assert failed.returncode == 3, failed.stderr  # customers scanned, then the event search
    other = run(["backfill", "-p", "newsletter", "-c", str(config)], cwd=tmp_path, env=env)
    assert other.returncode == 0, other.stderr
    assert "an interrupted backfill with other arguments was dropped" in other.stdout
    assert "resumed" not in other.stdout.replace("(not resumed)", "")
    # the whole scan again, for newsletter: resuming the failed one would have scanned none
    assert scanned(other.stdout) == 60
