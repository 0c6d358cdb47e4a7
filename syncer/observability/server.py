"""The daemon's HTTP endpoints, served from a background thread (stdlib server: three routes do
not need a framework).

* ``GET /metrics``: Prometheus text format (:mod:`.metrics`).
* ``GET /healthz``: liveness of *this process*: 200 while its scheduler loops tick (every job
  ran, or made progress, within a few of its intervals), 503 naming the stuck jobs otherwise.
  It reads nothing shared: an outage of Contacthub or of the state database, which no restart
  can fix, leaves it at 200 (Kubernetes would otherwise restart every pod in a loop).
* ``GET /readyz``: readiness, whether the process can do useful work: 200 when the state
  database answers, its schema is current and (on the polling leader) Contacthub answers, with
  the lease state (``leader`` or ``follower``); 503 with the reason otherwise.
* every other path, when an ``app`` is given (``syncer run`` gives the web console): that ASGI
  app answers it, through :mod:`.asgi_bridge` (the three routes above stay the server's own).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..logs import get_logger
from ..state import db
from ..state.store import Store
from .asgi_bridge import AsgiBridge
from .metrics import REGISTRY, StateCollector

STALE_FACTOR = 3.0  # a loop silent for 3 intervals (plus STALE_SLACK) is stuck
STALE_SLACK = 300.0  # a long NP6 import poll is one run; liveness is for hung loops


def stale_heartbeats(store: Store, now: float | None = None) -> list[str]:
    """Jobs whose last heartbeat row is older than ``STALE_FACTOR`` intervals + 60 s (what
    ``syncer health`` reads, across every process on the database)."""
    now = time.time() if now is None else now
    return [
        hb["job"]
        for hb in store.heartbeats()
        if now - hb["at"] > STALE_FACTOR * hb["interval"] + 60
    ]


class Liveness:
    """In-memory beats of this process's loops: each job beats when it starts a run, as it
    makes progress and when the run ends, whatever its outcome (a failed run is a live loop).
    A job is stuck when it has not beaten for ``STALE_FACTOR`` intervals + ``STALE_SLACK``:
    its run hangs, or the scheduler stopped starting it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._beats: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def beat(self, job: str, interval: float) -> None:
        with self._lock:
            self._beats[job] = (self._clock(), interval)

    def stuck(self) -> list[str]:
        now = self._clock()
        with self._lock:
            beats = sorted(self._beats.items())
        return [job for job, (at, every) in beats if now - at > STALE_FACTOR * every + STALE_SLACK]


log = get_logger(component="http")
#: a client that went away mid-answer (a browser tab closed, a scrape timed out): nobody to tell
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class _Server(ThreadingHTTPServer):
    """The standard threading server, with one log line per failed request instead of
    ``socketserver``'s traceback printed to stderr (which broke the JSON log)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE):
            log.debug("http client went away", error=type(exc).__name__)
        else:
            log.warning("http request failed", error=f"{type(exc).__name__}: {exc}")


class HealthServer:
    """Serves /metrics, /healthz and /readyz on ``address`` (``host:port``).

    ``liveness``: the process's loops (none: always alive while it answers).
    ``source_problem``: why the source cannot be read now, or None (readiness).
    ``app``: an ASGI app answering every other path (the console), or None (404).
    Raises ``OSError`` when the address cannot be bound (a port in use)."""

    def __init__(
        self,
        store: Store,
        address: str,
        lease_state: Callable[[], str],
        *,
        liveness: Liveness | None = None,
        source_problem: Callable[[], str | None] = lambda: None,
        app: Any = None,
    ) -> None:
        host, _, port = address.rpartition(":")
        self.store = store
        self.lease_state = lease_state
        self.live = liveness
        self.source_problem = source_problem
        self.bridge: AsgiBridge | None = None
        handler = self._handler()
        self.httpd = _Server((host.strip("[]") or "127.0.0.1", int(port)), handler)
        self.port = self.httpd.server_address[1]
        self._collector = StateCollector(store)
        REGISTRY.register(self._collector)
        if app is not None:  # after the bind: a taken port leaves no loop thread behind
            self.bridge = AsgiBridge(app)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        REGISTRY.unregister(self._collector)
        if self.bridge is not None:
            self.bridge.close()

    def readiness(self) -> tuple[int, dict[str, Any]]:
        if not self.store.ping():
            return 503, {"ready": False, "reason": "state database unreachable"}
        if not db.is_current(self.store.engine):
            return 503, {"ready": False, "reason": "schema not current: run syncer db upgrade"}
        lease = self.lease_state()
        problem = self.source_problem()
        if problem is not None:
            return 503, {"ready": False, "reason": problem, "lease": lease}
        return 200, {"ready": True, "lease": lease}

    def liveness(self) -> tuple[int, dict[str, Any]]:
        stuck = self.live.stuck() if self.live is not None else []
        if stuck:
            return 503, {"alive": False, "stuck_jobs": stuck}
        return 200, {"alive": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._json(*server.liveness())
                elif path == "/readyz":
                    try:
                        self._json(*server.readiness())
                    except Exception as exc:  # the database failing mid-check: not ready
                        reason = f"state database unreachable ({type(exc).__name__})"
                        self._json(503, {"ready": False, "reason": reason})
                else:
                    self._other()

            def do_POST(self) -> None:
                self._other()

            def do_HEAD(self) -> None:
                self._other()

            def _other(self) -> None:
                if server.bridge is not None:
                    server.bridge.handle(self)
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
