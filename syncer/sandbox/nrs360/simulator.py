"""``Nrs360Simulator``: the 360NRS REST API (contacts, groups, blacklist v2) on the frame."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ..app import Simulator
from ..faults import FaultPlan
from . import blacklist, contacts, groups
from .behaviour import Nrs360Behaviour
from .context import Context, _utc_now
from .loading import load_into
from .store import Store
from .validation import ApiError
from .web import BasicAuth, error_body, error_response, not_found

API_PREFIX = "/api/rest"
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class Nrs360Simulator(Simulator):
    """A faithful local 360NRS; see :mod:`syncer.sandbox.nrs360` for the documented choices."""

    name = "nrs360"

    def __init__(
        self,
        faults: FaultPlan | None = None,
        *,
        username: str = "sandbox-user",
        api_password: str = "sandbox-api-password",
        behaviour: Nrs360Behaviour | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        super().__init__(faults)
        self.username = username
        self.api_password = api_password
        self.behaviour = behaviour or Nrs360Behaviour()
        self.ctx = Context(BasicAuth(username, api_password), self.behaviour, clock)

    def apply_behaviour(self, behaviour: Any) -> None:
        """The handlers read the switches from the context: change both."""
        self.behaviour = behaviour
        self.ctx.behaviour = behaviour

    @property
    def store(self) -> Store:
        """The live data (tests may read it directly)."""
        return self.ctx.store

    # -- Simulator API -------------------------------------------------------------------
    def api_routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            *contacts.routes(self.ctx),
            *groups.routes(self.ctx),
            *blacklist.routes(self.ctx),
        ]
        known = list(routes)

        async def fallback(request: Request) -> Response:
            """Unknown path: 404; known path, wrong method: 405 (Laravel routes before auth)."""
            path = request.url.path.removeprefix(API_PREFIX)
            allowed = sorted(
                {
                    method
                    for route in known
                    if isinstance(route, Route) and route.path_regex.match(path)
                    for method in route.methods or ()
                }
            )
            if not allowed:
                return error_response(not_found())
            error = ApiError(405, 405, "Method not allowed")
            return error_response(error, {"Allow": ", ".join(allowed)})

        routes.append(Route("/{rest:path}", fallback, methods=_ALL_METHODS))
        return [Mount(API_PREFIX, routes=routes)]

    def reset(self) -> None:
        self.ctx.store = Store()

    def load(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add ``{"contacts": [...], "groups": [...], "blacklist": {...}}`` (dump format)."""
        return load_into(self.ctx.store, data, self.ctx.now())

    def dump_state(self) -> dict[str, Any]:
        return self.ctx.store.dump()

    def error_body(self, status: int, message: str) -> Any:
        """Injected faults answer the reference's error body, with the HTTP status as code."""
        return error_body(status, message)
