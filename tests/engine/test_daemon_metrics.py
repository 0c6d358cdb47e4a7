"""``syncer run`` serves /metrics, /healthz and /readyz over HTTP while it runs."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from chub_kit import served_contacthub, write_config
from test_daemon import offset, start, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_and_health_during_a_real_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    port = free_port()
    with served_contacthub() as (sim, served):
        sim.load({"generate": {"customers": 300, "events": 0, "seed": 5}, "append_updates": True})
        cfg = write_config(tmp_path, served.url, url, metrics_address=f"127.0.0.1:{port}")
        proc = start(cfg, "run")
        try:
            wait_for(lambda: offset(url) > 0)
            base = f"http://127.0.0.1:{port}"
            ready = httpx.get(base + "/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json() == {"ready": True, "lease": "leader"}
            assert httpx.get(base + "/healthz", timeout=5).json() == {"alive": True}
            metrics = httpx.get(base + "/metrics", timeout=5).text
            assert "syncer_stream_offset{stream=" in metrics
            assert "syncer_inbox_rows " in metrics and "syncer_inbox_rows 0.0" not in metrics
            assert "syncer_deliveries{" in metrics
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
