"""Helpers to run ``syncer`` against a sandbox (real simulators on 127.0.0.1); the fixture is
in conftest.py."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from syncer.demo.workspace import EXAMPLE_CONFIG, demo_config
from syncer.sandbox.cluster import SandboxCluster

SYNCER = str(Path(sys.executable).with_name("syncer"))


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sandbox:
    """A sandbox config document (the example pointed at the simulators) and its secrets."""

    doc: dict[str, Any]
    secrets: dict[str, str]

    def write(self, folder: Path, name: str = "syncer.yaml", **changes: Any) -> Path:
        """Write the config to ``folder/name``; ``changes`` replace top-level sections."""
        doc = copy.deepcopy(self.doc)
        doc.update(changes)
        path = folder / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
        env.update(self.secrets)
        env.update(extra)
        return env


def start_sandbox() -> Iterator[Sandbox]:
    with SandboxCluster() as cluster:
        cluster.load_contacthub(customers=60, events=60, seed=1)
        example = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        doc, secrets = demo_config(example, cluster.connection_info(), "sqlite:///./syncer.db")
        yield Sandbox(doc, secrets)


def run(
    args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``syncer ARGS`` as a subprocess, logs as JSON on stderr."""
    return subprocess.run(
        [SYNCER, "--log-json", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def human_lines(stderr: str) -> list[str]:
    """The stderr lines that are not JSON log lines."""
    return [line for line in stderr.splitlines() if line and not line.startswith("{")]
