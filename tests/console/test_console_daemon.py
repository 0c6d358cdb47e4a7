"""``syncer run`` serves the console on its metrics address, next to /metrics, under the
console's own access rules: a ``syncer run`` subprocess against the sandbox."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from syncer.config.models import ConsoleConfig
from syncer.console import ConsoleSettings, console_app
from syncer.demo.workspace import EXAMPLE_CONFIG, Workspace
from syncer.engine.daemon import Daemon
from syncer.observability.server import HealthServer
from syncer.sandbox.cluster import SandboxCluster
from syncer.sandbox.contacthub import DEFAULT_NODE_ID
from syncer.sandbox.datagen import generate_dataset
from syncer.source.contacthub import ContacthubClient
from syncer.state.store import Store

from .test_console_security import config as security_config

SYNCER = str(Path(sys.executable).with_name("syncer"))
READ, OPERATOR = "read-token-d41e", "operator-token-6b07"
T = TypeVar("T")


def free_port() -> int:
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


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def write_config(root: Path, cluster: SandboxCluster, console: dict[str, Any]) -> Workspace:
    ws = Workspace(root)
    ws.prepare()
    path = ws.write_config(EXAMPLE_CONFIG, cluster.connection_info())
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["metrics"] = {"address": f"127.0.0.1:{free_port()}"}
    doc["console"] = console
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return ws


class Running:
    def __init__(self, proc: subprocess.Popen[str], base: str) -> None:
        self.proc, self.base = proc, base

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture
def sandbox() -> Iterator[SandboxCluster]:
    with SandboxCluster() as cluster:
        docs, _ = generate_dataset(20, 0, seed=3, node_id=DEFAULT_NODE_ID)
        cluster.contacthub.load({"customers": docs, "events": [], "append_updates": True})
        yield cluster


def start_run(tmp_path: Path, cluster: SandboxCluster, console: dict[str, Any]) -> Running:
    ws = write_config(tmp_path, cluster, console)
    address = yaml.safe_load(ws.config_path.read_text())["metrics"]["address"]
    env = {**os.environ, **ws.env, "SYNCER_T": READ, "SYNCER_O": OPERATOR}
    proc = subprocess.Popen(
        [SYNCER, "run", "--config", str(ws.config_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Running(proc, f"http://{address}")

    def ready() -> bool | None:
        if proc.poll() is not None:
            raise AssertionError(f"syncer run exited {proc.returncode}: {running.stop()[1]}")
        try:
            return httpx.get(running.base + "/readyz", timeout=5).status_code == 200 or None
        except httpx.TransportError:
            return None

    wait_until(ready)
    return running


def test_run_serves_the_console_next_to_metrics_with_its_rules(
    tmp_path: Path, sandbox: SandboxCluster
) -> None:
    running = start_run(
        tmp_path, sandbox, {"token": "${SYNCER_T}", "operator_token": "${SYNCER_O}"}
    )
    read, operator = ({"authorization": f"Bearer {t}"} for t in (READ, OPERATOR))
    try:
        with httpx.Client(base_url=running.base, timeout=30) as http:
            # /metrics stays the server's own: Prometheus needs no console token
            assert "syncer_" in http.get("/metrics").text
            assert http.get("/").status_code == 401  # a token is configured: loopback too
            page = http.get("/targets", headers=read)
            assert page.status_code == 200 and "nrs" in page.text
            assert page.headers["content-security-policy"].startswith("default-src 'none'")
            assert http.get("/static/console.css").status_code == 200
            csrf = csrf_of(page.text)
            pause = {"op": "pause", "confirm": "yes", "csrf": csrf}
            refused = http.post("/targets/nrs", data=pause, headers=read)
            assert refused.status_code == 403 and "read-only" in refused.text
            forged = http.post("/targets/nrs", data={**pause, "csrf": "x"}, headers=operator)
            assert forged.status_code == 403
            assert 'badge warn">paused' not in http.get("/targets", headers=read).text
            done = http.post("/targets/nrs", data=pause, headers=operator)
            assert done.status_code == 303
            after = http.get(done.headers["location"], headers=read)
            assert "nrs: paused" in after.text and 'badge warn">paused' in after.text
    finally:
        code, err = running.stop()
    assert code == 0, err
    assert "console served" in err
    audit = [line for line in err.splitlines() if "console action" in line]
    assert len(audit) == 1 and "operator_token" in audit[0] and "target_pause" in audit[0], err
    assert READ not in err and OPERATOR not in err


def non_loopback_address() -> str | None:
    """This host's address on its first non-loopback interface, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: it only picks the route
        except OSError:
            return None
        host = str(sock.getsockname()[0])
    return None if host.startswith("127.") or host == "0.0.0.0" else host


def test_metrics_server_console_refuses_off_loopback_without_token(tmp_path: Path) -> None:
    """The bridge hands the console the socket's peer: a client on another address gets 401
    (no token configured), a loopback one the page; /metrics answers both."""
    remote = non_loopback_address()
    if remote is None:
        pytest.skip("this host has no non-loopback address to connect from")
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    cfg = security_config(f"sqlite:///{tmp_path / 'state.db'}")
    server = HealthServer(
        store, "0.0.0.0:0", lambda: "leader", app=console_app(store, cfg, ConsoleSettings())
    ).start()
    try:
        near = httpx.get(f"http://127.0.0.1:{server.port}/pipelines", timeout=30)
        far = httpx.get(f"http://{remote}:{server.port}/pipelines", timeout=30)
        far_metrics = httpx.get(f"http://{remote}:{server.port}/metrics", timeout=30)
    finally:
        server.stop()
        store.close()
    assert near.status_code == 200 and "newsletter" in near.text
    assert far.status_code == 401 and "newsletter" not in far.text
    assert far_metrics.status_code == 200


def test_console_disabled_is_not_mounted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    cfg = security_config(url)
    store = Store(url)
    client = ContacthubClient(httpx.Client(base_url="http://127.0.0.1:9"), "w", "n")
    try:
        on = Daemon(cfg, store, client)
        assert on._console_app() is not None
        off_cfg = cfg.model_copy(update={"console": ConsoleConfig(enabled=False)})
        assert Daemon(off_cfg, store, client)._console_app() is None
        server = HealthServer(store, "127.0.0.1:0", lambda: "leader", app=None).start()
        try:
            gone = httpx.get(f"http://127.0.0.1:{server.port}/", timeout=30)
        finally:
            server.stop()
    finally:
        client.http.close()
        store.close()
    assert gone.status_code == 404 and gone.json() == {"error": "not found"}
