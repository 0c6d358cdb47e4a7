"""Log lines are JSON off a TTY and never carry a registered secret."""

from __future__ import annotations

import base64
import io
import json

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
