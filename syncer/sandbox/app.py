"""The frame every simulator is built on: fault middleware, request log and admin API.

A simulator subclasses :class:`Simulator`, implements ``api_routes()``, ``reset()``,
``load(data)``, ``dump_state()`` and ``error_body(status, message)`` and gets:

* its API routes wrapped by :class:`FaultMiddleware` (see :mod:`.faults`);
* a request log (method, normalised path, status) counted per endpoint;
* the admin API under ``/_sandbox/``, never subject to faults:

  ============================  ===================================================
  ``POST /_sandbox/reset``      empty the store, the request log and the faults
  ``POST /_sandbox/load``       load a data set (body: simulator-specific JSON)
  ``GET/PUT /_sandbox/faults``  read / replace the :class:`FaultPlan` (JSON)
  ``GET /_sandbox/state``       the full stored state (JSON)
  ``GET /_sandbox/requests``    ``{"total": n, "counts": {"GET /path/{id}": n}, "log": [...]}``
  ``DELETE /_sandbox/requests`` clear the request log
  ============================  ===================================================

Simulator state lives in memory and is only touched from the event loop (all handlers are
``async``), so no lock is needed.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .faults import FaultInjector, FaultPlan

_ID_SEGMENT = re.compile(
    r"^([0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|"
    r"[0-9A-Z]{8})$"
)
ADMIN_PREFIX = "/_sandbox"


class ResponseDropped(Exception):
    """Raised after a handler committed, to make the server cut the connection mid-body."""


def normalise_path(path: str) -> str:
    """``/hub/v1/workspaces/<uuid>/customers/<uuid>`` -> ``.../workspaces/{id}/customers/{id}``."""
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


class RequestLog:
    """Every API request the simulator answered, for tests and benchmarks to count."""

    def __init__(self, keep: int = 10_000) -> None:
        self.keep = keep
        self.clear()

    def clear(self) -> None:
        self.counts: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.total = 0
        self.recent: list[dict[str, Any]] = []

    def record(self, method: str, path: str, status: int) -> None:
        key = f"{method} {normalise_path(path)}"
        self.counts[key] += 1
        self.statuses[status] += 1
        self.total += 1
        self.recent.append({"method": method, "path": path, "status": status})
        if len(self.recent) > self.keep:
            del self.recent[: len(self.recent) - self.keep]

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "counts": dict(self.counts),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "log": self.recent,
        }


class FaultMiddleware:
    """Applies the injector's decision to every request outside ``/_sandbox/``."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.sim = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        decision = self.sim.faults.decide()
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.status:
            headers = self.sim.fault_headers(decision.status)
            if decision.retry_after:
                headers["Retry-After"] = str(decision.retry_after)
            message = "Too Many Requests" if decision.status == 429 else "Service unavailable"
            response = self.sim.error_response(decision.status, message, headers)
            self.sim.requests.record(method, path, decision.status)
            await response(scope, receive, send)
            return

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Log before the client can see the answer, so a test reading the log right
                # after its call returned always finds that call.
                self.sim.requests.record(method, path, message["status"])
                if not decision.drop_response:
                    await send(message)
                    return
                # Announce a longer body than we will send, then cut the connection.
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"
                ]
                headers.append((b"content-length", b"100000"))
                await send({**message, "headers": headers})
                return
            if decision.drop_response:
                await send({"type": "http.response.body", "body": b"{", "more_body": True})
                return
            await send(message)

        await self.app(scope, receive, send_logged)
        if decision.drop_response:
            raise ResponseDropped(f"{method} {path}: applied, response dropped on purpose")


class Simulator:
    """Base class of the four simulators; see the module docstring."""

    name = "simulator"

    def __init__(self, faults: FaultPlan | None = None) -> None:
        self.faults = FaultInjector(faults or FaultPlan())
        self.requests = RequestLog()

    # -- to implement -------------------------------------------------------------------
    def api_routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def load(self, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def dump_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        """The API's documented error body, or ``None`` for an empty body."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def fault_headers(self, status: int) -> dict[str, str]:
        """Extra headers on injected fault answers (NP6 adds ``X-RateLimit-*``)."""
        return {}

    def error_response(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        body = self.error_body(status, message)
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    def admin_routes(self) -> list[BaseRoute]:
        async def reset(request: Request) -> Response:
            self.reset()
            self.requests.clear()
            self.faults.set_plan(FaultPlan())
            return JSONResponse({"ok": True})

        async def load(request: Request) -> Response:
            return JSONResponse(self.load(await request.json()))

        async def faults(request: Request) -> Response:
            if request.method == "PUT":
                try:
                    self.faults.set_plan(FaultPlan.from_dict(await request.json()))
                except (TypeError, ValueError) as exc:
                    return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(self.faults.plan.to_dict())

        async def state(request: Request) -> Response:
            return JSONResponse(self.dump_state())

        async def requests(request: Request) -> Response:
            if request.method == "DELETE":
                self.requests.clear()
            return JSONResponse(self.requests.to_dict())

        return [
            Route("/reset", reset, methods=["POST"]),
            Route("/load", load, methods=["POST"]),
            Route("/faults", faults, methods=["GET", "PUT"]),
            Route("/state", state, methods=["GET"]),
            Route("/requests", requests, methods=["GET", "DELETE"]),
        ]

    def asgi(self) -> ASGIApp:
        """The simulator as one ASGI app: admin API plus fault-wrapped API routes."""
        app = Starlette(
            routes=[Mount(ADMIN_PREFIX, routes=self.admin_routes()), *self.api_routes()]
        )
        return FaultMiddleware(app, self)
