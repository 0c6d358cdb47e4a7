"""Run an ASGI app (the console) for requests of the stdlib health server.

The daemon's ``/metrics`` server is ``http.server``; the console is a Starlette app. Serving
both on one address without a second server: each request the health server does not answer
itself is handed to the app on one asyncio loop running in its own thread, and the answer is
written back by the request's thread. The body is read whole first and the answer is buffered
(console pages and its static files are small).

The ASGI scope's ``client`` is the socket's peer, so the console's loopback rule sees the same
address it sees under uvicorn (proxy headers are not trusted).
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from ..logs import get_logger

MAX_BODY = 1024 * 1024  # the console's forms are far smaller (it refuses a form over 64 KiB)
TIMEOUT = 300.0  # a request the app has not answered by then gets 504

log = get_logger(component="http")

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class AsgiBridge:
    """An ASGI app answering :class:`BaseHTTPRequestHandler` requests; :meth:`close` stops it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="asgi-bridge", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer ``handler``'s request with the app."""
        if handler.headers.get("Transfer-Encoding"):  # browsers send forms with a length
            _plain(handler, 411, "411: a request body needs Content-Length\n")
            return
        raw_length = handler.headers.get("Content-Length") or "0"
        if not raw_length.isdigit():
            _plain(handler, 400, "400: bad Content-Length\n")
            return
        length = int(raw_length)
        if length > MAX_BODY:
            _plain(handler, 413, "413: request body too large\n")
            return
        body = handler.rfile.read(length) if length else b""
        future = asyncio.run_coroutine_threadsafe(self._call(self._scope(handler), body), self.loop)
        try:
            status, headers, content = future.result(timeout=TIMEOUT)
        except TimeoutError:
            future.cancel()
            _plain(handler, 504, "504: the console did not answer in time\n")
            return
        except Exception as exc:  # the app crashed before answering (Starlette logged it)
            log.error("console request failed", path=handler.path, error=type(exc).__name__)
            _plain(handler, 500, "500: internal error\n")
            return
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name.decode("latin-1"), value.decode("latin-1"))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(content)

    def _scope(self, handler: BaseHTTPRequestHandler) -> dict[str, Any]:
        path, _, query = handler.path.partition("?")
        server: Any = handler.server.server_address  # (host, port): a TCP server
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": handler.request_version.removeprefix("HTTP/") or "1.0",
            "method": handler.command,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1", "replace"),
            "query_string": query.encode("latin-1", "replace"),
            "root_path": "",
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1", "replace"))
                for k, v in handler.headers.items()
            ],
            "client": (handler.client_address[0], handler.client_address[1]),
            "server": (str(server[0]), int(server[1])),
        }

    async def _call(self, scope: dict[str, Any], body: bytes) -> Answer:
        sent_body = False
        done = asyncio.Event()
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # as uvicorn: "disconnect" only once the answer is complete
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self.app(scope, receive, send)
        finally:
            done.set()
        if not start:
            raise RuntimeError("the app sent no response")
        return int(start["status"]), list(start.get("headers", [])), b"".join(chunks)


def _plain(handler: BaseHTTPRequestHandler, status: int, text: str) -> None:
    body = text.encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
