"""The NP6 simulator: state, admin hooks, routing, ``x-request-id`` and rate-limit headers."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..app import Simulator
from ..faults import FaultPlan
from .behaviour import Np6Behaviour
from .fields import DEFAULT_FIELDS, Field, Schema
from .http import Np6Error, check_auth, check_content_length, check_import_accept
from .import_api import ImportApi
from .imports import Execution, ImportDefinition, ImportFormat, process
from .target_api import TargetApi
from .targets import TargetStore, now_iso

Handler = Callable[[Request], Awaitable[Response]]

DEFAULT_FORMAT_ID = 1234
_FIRST_IDS = {"format": 2000, "import": 12345, "source": 1}


def default_format() -> ImportFormat:
    """Format 1234: ``email;orderId;amount;orderDate`` with one header line."""
    binds = [(0, 1001), (1, 1002), (2, 1003), (3, 1004)]
    return ImportFormat(DEFAULT_FORMAT_ID, "Default sandbox format", 59, 1, binds)


class Np6Simulator(Simulator):
    """In-memory NP6 tenant: fields, targets, redlist, import formats and imports."""

    name = "np6"

    def __init__(
        self,
        faults: FaultPlan | None = None,
        *,
        api_key: str = "sandbox-np6-key",
        behaviour: Np6Behaviour | None = None,
    ) -> None:
        super().__init__(faults)
        self.api_key = api_key
        self.behaviour = behaviour or Np6Behaviour()
        self.reset()

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        self.schema = Schema(DEFAULT_FIELDS)
        self.store = TargetStore(self.schema)
        self.formats: dict[int, ImportFormat] = {DEFAULT_FORMAT_ID: default_format()}
        self.imports: dict[int, ImportDefinition] = {}
        self.pending: list[Execution] = []
        self._ids = dict(_FIRST_IDS)

    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def settle(self) -> None:
        """Process every execution whose ``processing_seconds`` have passed, oldest first."""
        delay = self.behaviour.processing_seconds
        now = time.monotonic()
        while self.pending and now - self.pending[0].started >= delay:
            process(self.pending.pop(0), self.store, self.behaviour.max_bad_lines_reported)

    def load(self, data: dict[str, Any]) -> dict[str, Any]:
        """Load ``behaviour``, ``fields`` (replaces the schema; only while there are no
        targets), ``formats`` (format JSON incl. ``identifier.guid``) and ``targets``."""
        if "behaviour" in data:
            self.behaviour = Np6Behaviour.from_dict(data["behaviour"])
        if "fields" in data:
            if self.store.by_id:
                raise ValueError("load fields before targets (the store is not empty)")
            self.schema = Schema([Field.from_json(f) for f in data["fields"]])
            self.store = TargetStore(self.schema)
        for raw in data.get("formats", []):
            fmt_id = int(raw.get("identifier", {}).get("guid", 0)) or self.next_id("format")
            self.formats[fmt_id] = ImportFormat.from_json(fmt_id, raw, self.schema)
        now = now_iso()
        for raw in data.get("targets", []):
            self.store.load_target(raw, now)
        return {
            "fields": len(self.schema.fields),
            "formats": len(self.formats),
            "targets": len(self.store.by_id),
        }

    def dump_state(self) -> dict[str, Any]:
        self.settle()
        return {
            "targets": [t.to_json() for t in self.store.by_id.values()],
            "imports": [
                {
                    **d.to_json(),
                    "sourceBytes": len(d.data) if d.data is not None else None,
                    "executions": [e.summary() for e in d.executions],
                }
                for d in self.imports.values()
            ],
            "executionCount": sum(len(d.executions) for d in self.imports.values()),
            "formats": [f.to_json() for f in self.formats.values()],
            "fields": [f.to_json() for f in self.schema.fields],
            "segments": {str(k): sorted(v) for k, v in self.store.segments.items()},
            "redlist": [e.to_json() for e in self.store.redlist_events],
            "behaviour": dataclasses.asdict(self.behaviour),
        }

    def error_body(self, status: int, message: str) -> Any:
        return None  # NP6 documents no error body; observed bodies are mostly empty

    def rate_limit_headers(self, style: str, retry_after: int) -> dict[str, str]:
        """``retry_after`` (default, as before): ``X-RateLimit-*`` and ``Retry-After``;
        ``x_ratelimit``: the documented headers only; ``bare``: none."""
        if style == "retry_after":
            headers = self.faults.rate_headers()
            if retry_after:
                headers["Retry-After"] = str(retry_after)
            return headers
        return super().rate_limit_headers(style, retry_after)

    # -- routing -----------------------------------------------------------------------------
    def _route(self, path: str, handler: Handler, methods: list[str], vnd: bool) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                check_auth(request, self.api_key)
                check_content_length(request)
                if vnd and self.behaviour.require_import_accept:
                    check_import_accept(request)
                self.settle()
                return await handler(request)
            except Np6Error as exc:
                return exc.response()

        return Route(path, endpoint, methods=methods)

    def api_routes(self) -> list[BaseRoute]:
        targets, imports = TargetApi(self), ImportApi(self)
        routes: list[BaseRoute] = [
            self._route(path, handler, methods, vnd)
            for path, handler, methods, vnd in imports.routes()
        ]
        routes += [
            self._route(path, handler, methods, False)
            for path, handler, methods in targets.routes()
        ]
        return routes

    def asgi(self) -> ASGIApp:
        """The frame's app, with ``x-request-id`` (and ``X-RateLimit-*``) on every answer."""
        inner = super().asgi()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            request_id = uuid.uuid4().hex.encode()

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    names = {k.lower() for k, _ in headers}
                    headers.append((b"x-request-id", request_id))
                    bare = self.behaviour.rate_limit == "bare"  # no rate headers at all
                    for key, value in ({} if bare else self.faults.rate_headers()).items():
                        if key.lower().encode() not in names:
                            headers.append((key.lower().encode(), value.encode()))
                    message = {**message, "headers": headers}
                await send(message)

            await inner(scope, receive, send_with_id)

        return app
