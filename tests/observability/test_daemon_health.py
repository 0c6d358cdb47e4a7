"""The daemon's health as an orchestrator sees it: alive while Contacthub is down (not ready,
with the reason and ``syncer_source_up 0``), and no daemon at all when its port is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import yaml

from syncer.engine.daemon import Daemon
from syncer.state.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import ENV, NODE, WS, config, served_contacthub, source, write_config

T = TypeVar("T")
SYNCER = str(Path(sys.executable).with_name("syncer"))
DEPLOYMENT = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "deployment.yaml"


def probe_paths() -> tuple[str, str]:
    """The liveness and readiness paths the Kubernetes manifest probes."""
    doc = yaml.safe_load(DEPLOYMENT.read_text(encoding="utf-8"))
    (container,) = [
        c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "syncer"
    ]
    return container["livenessProbe"]["httpGet"]["path"], container["readinessProbe"]["httpGet"][
        "path"
    ]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T | None], timeout: float = 90.0) -> T:  # a hang guard
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_alive_but_not_ready_while_contacthub_is_down(tmp_path: Path, sqlite_url: str) -> None:
    port = closed_port()
    with served_contacthub() as (_sim, served):
        path = write_config(tmp_path, served.url, sqlite_url, poll_interval="1s")
        path.write_text(
            path.read_text().replace('address: "127.0.0.1:0"', f'address: "127.0.0.1:{port}"')
        )
        cfg = config(path)
    # Contacthub is gone now: the client fails at once (one attempt) instead of retrying
    client = source(served, max_attempts=1, backoff_base=0.01, backoff_cap=0.01)
    store = Store(sqlite_url)
    daemon = Daemon(cfg, store, client, deliver_interval=0.5)
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
    thread.start()
    base = f"http://127.0.0.1:{port}"
    liveness, readiness = probe_paths()  # what Kubernetes asks, so the manifest is tested too
    try:

        def not_ready() -> httpx.Response | None:
            try:
                answer = httpx.get(base + readiness, timeout=5)
            except httpx.TransportError:
                return None
            return answer if answer.status_code == 503 else None

        ready = wait_until(not_ready)
        body = ready.json()
        assert body["ready"] is False and body["lease"] == "leader"
        assert body["reason"].startswith("source unreachable: ")
        live = httpx.get(base + liveness, timeout=5)
        assert live.status_code == 200 and live.json() == {"alive": True}
        metrics = httpx.get(base + "/metrics", timeout=5).text
        assert f'syncer_source_up{{stream="{WS}/{NODE}"}} 0.0' in metrics
    finally:
        daemon.request_stop()
        thread.join(timeout=30)
        client.http.close()
        store.close()
    assert not thread.is_alive() and daemon.exit_code == 0


def test_run_exits_3_with_one_line_when_the_metrics_port_is_taken(
    tmp_path: Path, sqlite_url: str
) -> None:
    with socket.socket() as taken, served_contacthub() as (_sim, served):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(tmp_path, served.url, sqlite_url)
        path.write_text(
            path.read_text().replace('address: "127.0.0.1:0"', f'address: "127.0.0.1:{port}"')
        )
        proc = subprocess.run(
            [SYNCER, "run", "--config", str(path)],
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 3, proc.stderr
    # one error line (a warning about the test's unreachable 360NRS may come before it)
    lines = [line for line in proc.stderr.strip().splitlines() if "[warning" not in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: cannot serve /metrics and health on metrics.address ")
    assert f"127.0.0.1:{port}" in lines[0] and "Traceback" not in proc.stderr
