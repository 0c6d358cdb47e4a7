"""The daemon's HTTP endpoints, served from a background thread (stdlib server: three routes do
not need a framework).

* ``GET /metrics``: Prometheus text format (:mod:`.metrics`).
* ``GET /healthz``: liveness; 200 while the process serves requests and its jobs' heartbeats
  are fresh, 503 with the stale jobs otherwise.
* ``GET /readyz``: readiness; 200 when the database answers and its schema is current, with the
  lease state (``leader`` or ``follower``); 503 with the reason otherwise.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..state import db
from ..state.store import Store
from .metrics import REGISTRY, StateCollector

STALE_FACTOR = 3.0  # a heartbeat older than 3 intervals (plus a minute of slack) is stale


def stale_heartbeats(store: Store, now: float | None = None) -> list[str]:
    """Jobs whose last heartbeat is older than ``STALE_FACTOR`` intervals + 60 s."""
    now = time.time() if now is None else now
    return [
        hb["job"]
        for hb in store.heartbeats()
        if now - hb["at"] > STALE_FACTOR * hb["interval"] + 60
    ]


class HealthServer:
    """Serves /metrics, /healthz and /readyz on ``address`` (``host:port``)."""

    def __init__(self, store: Store, address: str, lease_state: Callable[[], str]) -> None:
        host, _, port = address.rpartition(":")
        self.store = store
        self.lease_state = lease_state
        self._collector = StateCollector(store)
        REGISTRY.register(self._collector)
        handler = self._handler()
        self.httpd = ThreadingHTTPServer((host or "127.0.0.1", int(port)), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        REGISTRY.unregister(self._collector)

    def readiness(self) -> tuple[int, dict[str, Any]]:
        if not self.store.ping():
            return 503, {"ready": False, "reason": "state database unreachable"}
        if not db.is_current(self.store.engine):
            return 503, {"ready": False, "reason": "schema not current: run syncer db upgrade"}
        return 200, {"ready": True, "lease": self.lease_state()}

    def liveness(self) -> tuple[int, dict[str, Any]]:
        try:
            stale = stale_heartbeats(self.store)
        except Exception:  # the database being down is a readiness matter, not liveness
            return 200, {"alive": True, "heartbeats": "unknown"}
        if stale:
            return 503, {"alive": False, "stale_jobs": stale}
        return 200, {"alive": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    self._json(*server.liveness())
                elif self.path == "/readyz":
                    self._json(*server.readiness())
                else:
                    self._json(404, {"error": "not found"})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                self._send(status, json.dumps(body).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes every few seconds would drown the JSON log

        return Handler
