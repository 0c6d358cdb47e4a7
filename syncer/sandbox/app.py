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
  ``GET/PUT /_sandbox/behav…``  ``/_sandbox/behaviour``: read / change some behaviour switches
                                (JSON ``{"switch": value}``; the others keep their value;
                                400 on an unknown switch or value). Not reset by ``reset``
  ``GET /_sandbox/state``       the full stored state (JSON)
  ``GET /_sandbox/requests``    ``{"total": n, "counts": {"GET /path/{id}": n}, "log": [...]}``
  ``DELETE /_sandbox/requests`` clear the request log
  ============================  ===================================================

Simulator state lives in memory and is only touched from the event loop (all handlers are
``async``), so no lock is needed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import typing
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

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


RATE_LIMIT_STYLES = ("retry_after", "x_ratelimit", "bare")
RateLimitStyle = Literal["retry_after", "x_ratelimit", "bare"]


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
        decision = self.sim.faults.decide(method)
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.status:
            headers = self.sim.fault_headers(decision.status, decision.retry_after)
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
    #: the simulator's behaviour switches (a dataclass), or None when it has none
    behaviour: Any = None

    def fault_headers(self, status: int, retry_after: int = 0) -> dict[str, str]:
        """Headers of an injected fault answer: ``Retry-After`` on a 429, unless the
        simulator's ``rate_limit`` switch says otherwise (:meth:`rate_limit_headers`)."""
        if status != 429:
            return {}
        style = getattr(self.behaviour, "rate_limit", "retry_after")
        return self.rate_limit_headers(style, retry_after)

    def rate_limit_headers(self, style: str, retry_after: int) -> dict[str, str]:
        """The headers of a 429 in ``style``: ``retry_after`` (``Retry-After``),
        ``x_ratelimit`` (``X-RateLimit-Limit/Remaining/Reset`` only) or ``bare`` (none)."""
        if style == "bare":
            return {}
        if style == "x_ratelimit":
            return self.faults.rate_headers()
        return {"Retry-After": str(retry_after)} if retry_after else {}

    def apply_behaviour(self, behaviour: Any) -> None:
        """Install a new behaviour dataclass (simulators that copy it elsewhere override)."""
        self.behaviour = behaviour

    def set_behaviour(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change some switches (values checked against their types); the new settings."""
        if self.behaviour is None:
            raise ValueError(f"the {self.name} simulator has no behaviour switches")
        self.apply_behaviour(merge_behaviour(self.behaviour, changes))
        return dataclasses.asdict(self.behaviour)

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

        async def behaviour(request: Request) -> Response:
            if self.behaviour is None:
                return JSONResponse({"error": f"{self.name}: no behaviour switches"}, 404)
            if request.method == "PUT":
                try:
                    changes = await request.json()
                    if not isinstance(changes, dict):
                        raise ValueError("the body must be a JSON object of switches")
                    self.set_behaviour(changes)
                except ValueError as exc:
                    return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(dataclasses.asdict(self.behaviour))

        async def requests(request: Request) -> Response:
            if request.method == "DELETE":
                self.requests.clear()
            return JSONResponse(self.requests.to_dict())

        return [
            Route("/reset", reset, methods=["POST"]),
            Route("/load", load, methods=["POST"]),
            Route("/faults", faults, methods=["GET", "PUT"]),
            Route("/state", state, methods=["GET"]),
            Route("/behaviour", behaviour, methods=["GET", "PUT"]),
            Route("/requests", requests, methods=["GET", "DELETE"]),
        ]

    def asgi(self) -> ASGIApp:
        """The simulator as one ASGI app: admin API plus fault-wrapped API routes."""
        app = Starlette(
            routes=[Mount(ADMIN_PREFIX, routes=self.admin_routes()), *self.api_routes()]
        )
        return FaultMiddleware(app, self)


def merge_behaviour(current: Any, changes: Mapping[str, Any]) -> Any:
    """A copy of the behaviour dataclass ``current`` with ``changes``; each value must fit its
    switch's type (a ``Literal`` choice, bool, int, float or str). ``ValueError`` otherwise."""
    cls = type(current)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in known:
            raise ValueError(f"unknown switch {name!r}; known: {', '.join(sorted(known))}")
        checked[name] = _check(name, hints[name], value)
    return dataclasses.replace(current, **checked)


def parse_switch_value(behaviour: Any, name: str, text: str) -> Any:
    """The value of switch ``name`` written as text (the CLI's ``sim.switch=value``)."""
    hints = typing.get_type_hints(type(behaviour))
    if name not in hints or name not in {f.name for f in dataclasses.fields(behaviour)}:
        known = ", ".join(sorted(f.name for f in dataclasses.fields(behaviour)))
        raise ValueError(f"unknown switch {name!r}; known: {known}")
    kind = hints[name]
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"switch {name!r} takes true or false, not {text!r}")
        return text.lower() == "true"
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"switch {name!r} takes a number, not {text!r}") from None
    return text


def _check(name: str, kind: Any, value: Any) -> Any:
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise ValueError(
                f"switch {name!r} takes {' or '.join(map(str, choices))}, not {value!r}"
            )
        return value
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = kind is str and isinstance(value, str)
    if not ok:
        raise ValueError(f"switch {name!r} takes a {getattr(kind, '__name__', kind)}: {value!r}")
    return float(value) if kind is float else value
