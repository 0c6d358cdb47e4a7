"""What the route handlers share: the store, the behaviour switches, the clock, the auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from .behaviour import Nrs360Behaviour
from .store import Store, format_ts
from .validation import ApiError
from .web import UNAUTHORISED, BasicAuth, error_response

Handler = Callable[[Request], Awaitable[Response]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """Shared by the handlers; ``store`` is replaced on reset."""

    auth: BasicAuth
    behaviour: Nrs360Behaviour
    clock: Callable[[], datetime] = _utc_now
    store: Store = field(default_factory=Store)

    def now(self) -> str:
        return format_ts(self.clock())

    def endpoint(self, handler: Handler) -> Handler:
        """Wrap a handler: Basic auth first (401/103), then :class:`ApiError` -> error body."""

        async def endpoint(request: Request) -> Response:
            if not self.auth.allows(request.headers.get("authorization")):
                return error_response(UNAUTHORISED)
            try:
                return await handler(request)
            except ApiError as error:
                return error_response(error)

        endpoint.__name__ = handler.__name__
        return endpoint
