"""Log lines are JSON off a TTY and never carry a registered secret."""

from __future__ import annotations

import base64
import io
import json
import logging

import structlog

from syncer import logs


def test_secrets_are_redacted_everywhere_in_json_lines() -> None:
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    logs.add_secrets(["s3cr3t-token-value"])
    logs.add_basic_auth_secret("user", "pa55word")
    basic = base64.b64encode(b"user:pa55word").decode()
    log = structlog.get_logger()
    log.info(
        "calling s3cr3t-token-value",
        header=f"Basic {basic}",
        nested={"list": ["x s3cr3t-token-value y"]},
        error=RuntimeError("bad token s3cr3t-token-value"),
    )
    line = out.getvalue().strip()
    record = json.loads(line)
    assert "s3cr3t" not in line and basic not in line
    assert record["event"] == "calling ***"
    assert record["header"] == "Basic ***"
    assert record["nested"] == {"list": ["x *** y"]}
    assert record["level"] == "info"


def test_debug_lines_are_filtered_at_info_level() -> None:
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    structlog.get_logger().debug("hidden")
    assert out.getvalue() == ""


def test_logging_follows_stderr_after_the_one_it_started_with_is_closed(monkeypatch) -> None:
    # The CI failure: logging set up under one stderr (a test's capture), that stderr closed,
    # then a daemon's prefer_json() read isatty() from the closed file and its thread died.
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    logs.configure("info")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logs.prefer_json()
    structlog.get_logger().info("after the switch", n=1)
    record = json.loads(second.getvalue().strip())
    assert record["event"] == "after the switch" and record["n"] == 1


def test_a_logger_bound_before_prefer_json_writes_json_after_it(monkeypatch) -> None:
    # `syncer run` off a TTY: its daemon, ingest and module-level loggers exist before the
    # switch; each must write JSON after it (they wrote readable lines among JSON ones)
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    logs.configure("info")
    early = logs.get_logger(component="daemon", run_id="r1")
    early.info("before")
    logs.prefer_json()
    early.info("after", n=2)
    before, after = out.getvalue().strip().splitlines()
    assert not before.startswith("{") and "before" in before
    record = json.loads(after)
    assert record == {**record, "event": "after", "component": "daemon", "run_id": "r1", "n": 2}


def test_stdlib_logging_of_libraries_goes_out_as_json_and_redacted(monkeypatch) -> None:
    # APScheduler warns through `logging` ("job skipped: maximum number of running
    # instances"): Python's last-resort handler printed it raw among `syncer run`'s JSON lines
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    logs.add_secrets(["stdlib-s3cret-77"])
    logging.getLogger("apscheduler.scheduler").warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
        "ingest stdlib-s3cret-77",
        1,
    )
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["level"] == "warning" and record["logger"] == "apscheduler.scheduler"
    assert record["event"] == (
        'Execution of job "ingest ***" skipped: maximum number of running instances reached (1)'
    )
