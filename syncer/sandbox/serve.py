"""Serve simulators over real HTTP on 127.0.0.1, in a background thread.

``ServedApp`` binds a socket on a free loopback port itself (so the port is known before the
server starts), runs uvicorn on it in a daemon thread, and stops it on exit::

    with ServedApp(sim.asgi()) as served:
        httpx.get(served.url + "/_sandbox/state")
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from importlib.util import find_spec
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

# The C HTTP parser and event loop when installed (dependencies of syncer; uvloop is not
# available on Windows): per request they cost the simulator's one event loop about 0.45 ms
# of CPU instead of 0.6-0.7 ms with h11 on asyncio. With 16 requests in flight and a
# simulated latency, requests that arrive together wait in that loop's queue on top of the
# latency, so its cost per request is added to every call. The API answers are the same.
HTTP_IMPL = "httptools" if find_spec("httptools") else "h11"
LOOP_IMPL = "uvloop" if find_spec("uvloop") else "asyncio"


class ServedApp:
    """One ASGI app served by uvicorn on ``127.0.0.1:<port>`` in a thread."""

    def __init__(self, app: ASGIApp, port: int = 0, host: str = "127.0.0.1") -> None:
        self.app = app
        self.host = host
        # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP;
        # with proto 0 every answer with a body waits ~40 ms for a delayed ACK (Nagle).
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            http=HTTP_IMPL,
            loop=LOOP_IMPL,
            log_level="critical",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            backlog=2048,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        # Dropped responses raise on purpose; keep uvicorn from printing tracebacks for them.
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
