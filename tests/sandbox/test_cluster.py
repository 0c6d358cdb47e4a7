"""The four-simulator cluster and the ``syncer sandbox`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from syncer.sandbox.cluster import NAMES, SandboxCluster
from syncer.sandbox.faults import FaultPlan

CLI = """
import typer
from syncer.cli import sandbox_cmd
app = typer.Typer()
@app.callback()
def _root() -> None:
    pass
sandbox_cmd.register(app)
app()
"""


def test_cluster_serves_all_four_and_writes_ports_file(tmp_path: Path) -> None:
    with SandboxCluster(FaultPlan(latency_ms=1)) as cluster:
        loaded = cluster.load_contacthub(customers=50, events=20, seed=1)
        assert loaded["customers"] == 50
        path = cluster.write_ports_file(tmp_path / "deep" / "ports.json")
        info = json.loads(path.read_text())
        assert set(info) == set(NAMES)
        assert len({cluster.served[n].port for n in NAMES}) == 4
        for name in NAMES:
            assert info[name]["url"] == cluster.urls[name]
            state = httpx.get(info[name]["url"] + "/_sandbox/state", params={"summary": "1"})
            assert state.status_code == 200, name
            assert cluster.simulators[name].faults.plan.latency_ms == 1
        ch = info["contacthub"]
        assert {"workspace_id", "node_id", "token"} <= set(ch)
        resp = httpx.get(
            f"{ch['api_base']}/workspaces/{ch['workspace_id']}/customers",
            params={"nodeId": ch["node_id"]},
            headers={"Authorization": f"Bearer {ch['token']}"},
        )
        assert resp.json()["page"]["totalElements"] == 50
        assert (
            httpx.get(f"{ch['api_base']}/workspaces/{ch['workspace_id']}/updates").status_code
            == 401
        )
        np6 = info["np6"]
        assert np6["api_key"] and info["octopush"]["api_key"] and info["nrs360"]["api_password"]
    for served in cluster.served.values():
        assert not served._thread.is_alive()


def test_cli_starts_with_10000_customers(tmp_path: Path) -> None:
    ports = tmp_path / "ports.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "sandbox",
            "--customers",
            "10000",
            "--events",
            "10000",
            "--seed",
            "2",
            "--ports-file",
            str(ports),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("sandbox ready"):
                break
        assert lines and lines[-1].startswith("sandbox ready"), "".join(lines) + proc.stderr.read()  # type: ignore[union-attr]
        info = json.loads(ports.read_text())
        ch = info["contacthub"]
        assert "loaded 10000 customers, 10000 events" in "".join(lines)
        resp = httpx.get(
            f"{ch['url']}/hub/v1/workspaces/{ch['workspace_id']}/updates/last-offset",
            headers={"Authorization": f"Bearer {ch['token']}"},
        )
        assert resp.json() == {"lastOffset": 0}
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0 and "stopping sandbox" in out
        try:
            httpx.get(ch["url"] + "/_sandbox/state", timeout=2)
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("the contacthub simulator still answers after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_rejects_unknown_fault_profile(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLI, "sandbox", "--faults", "apocalypse"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 2 and "unknown fault profile" in done.stderr
