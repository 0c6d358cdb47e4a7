"""``syncer console`` as a user runs it: a subprocess on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from syncer.state.store import Store

SYNCER = [sys.executable, "-c", "from syncer.cli.main import main; main()"]


def write_config(tmp_path: Path, console: dict[str, str] | None = None) -> Path:
    doc = {
        "version": 1,
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "source": {
            "type": "contacthub",
            "base_url": "http://127.0.0.1:9/hub/v1",
            "workspace_id": "w",
            "node_id": "n",
            "token": "${CH_TOKEN}",
        },
        "targets": {
            "octo": {
                "type": "octopush",
                "base_url": "http://127.0.0.1:9/v1/public",
                "api_login": "a@example.com",
                "api_key": "${OCTO_KEY}",
            }
        },
        "pipelines": [
            {
                "name": "sms",
                "target": "octo",
                "entity": "customer",
                "fields": {"phone_number": "base.contacts.mobilePhone"},
                "list": "all",
            }
        ],
    }
    if console:
        doc["console"] = console
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    Store(doc["state"]["url"]).close()  # a state database, as a daemon leaves it
    return path


ENV = {**os.environ, "CH_TOKEN": "ch-token", "OCTO_KEY": "octo-key-secret"}


def test_console_serves_on_loopback_and_stops_on_sigint(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    proc = subprocess.Popen(
        [*SYNCER, "--log-json", "console", "--config", str(path), "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.match(r"console serving on (http://127\.0\.0\.1:\d+/)", line)
        assert found, line
        page = httpx.get(found.group(1) + "targets", timeout=10)
        assert page.status_code == 200
        assert "octo" in page.text and "octo-key-secret" not in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_console_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    done = subprocess.run(
        [*SYNCER, "console", "--config", str(path), "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "console.token" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_console_token_from_the_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"token": "${SYNCER_CONSOLE_TOKEN}"})
    proc = subprocess.Popen(
        [*SYNCER, "console", "--config", str(path), "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**ENV, "SYNCER_CONSOLE_TOKEN": "console-token-1"},
    )
    try:
        assert proc.stderr is not None
        found = re.match(r"console serving on (http://\S+/)", proc.stderr.readline())
        assert found
        assert httpx.get(found.group(1), timeout=10).status_code == 401
        auth = {"Authorization": "Bearer console-token-1"}
        assert httpx.get(found.group(1), headers=auth, timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
