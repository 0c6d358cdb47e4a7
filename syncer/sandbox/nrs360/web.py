"""HTTP plumbing for the 360NRS simulator: JSON in/out, errors, Basic auth, pagination."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from collections.abc import Iterable
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .validation import ApiError

T = TypeVar("T")

UNAUTHORISED = ApiError(401, 103, "Username or password unknown")  # answered, never raised


def not_found() -> ApiError:
    """404, code 404, ``"Resource not found"`` (a fresh instance: raising a shared exception
    object would keep growing its traceback)."""
    return ApiError(404, 404, "Resource not found")


class OrjsonResponse(JSONResponse):
    """``JSONResponse`` rendered with orjson (the simulator answers hundreds of calls/s)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(code: int, description: str) -> dict[str, Any]:
    """The reference's error body: ``{"error": {"code": ..., "description": ...}}``."""
    return {"error": {"code": code, "description": description}}


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return OrjsonResponse(error_body(error.code, error.description), error.status, headers)


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is ``{}``; anything else is error 125."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, 125, "Invalid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, 125, "Invalid JSON")
    return body


class BasicAuth:
    """Checks ``Authorization: Basic base64(username:apiPassword)`` in constant time."""

    def __init__(self, username: str, api_password: str) -> None:
        self._expected = f"{username}:{api_password}".encode()

    def allows(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            credentials = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(credentials, self._expected)


def page_url(request: Request, page: int) -> str:
    """The request's URL with ``page`` set, other query parameters kept in order (Laravel)."""
    params = [(k, v) for k, v in request.query_params.multi_items()]
    if any(k == "page" for k, _ in params):
        params = [(k, str(page) if k == "page" else v) for k, v in params]
    else:
        params.append(("page", str(page)))
    url = request.url
    return f"{url.scheme}://{url.netloc}{url.path}?{urlencode(params)}"


def paginate(
    request: Request, items: Iterable[T], total: int, limit: int, page: int
) -> tuple[list[T], dict[str, Any]]:
    """One page of ``items`` plus ``meta`` in the reference's (league/fractal) format.

    ``links.previous`` appears when ``page > 1`` and ``links.next`` when ``page`` is before
    the last page; ``links`` is ``{}`` when neither applies. A page past the end is empty.
    """
    total_pages = max(1, math.ceil(total / limit))
    start = (page - 1) * limit
    chunk = list(islice(items, start, start + limit))
    links: dict[str, str] = {}
    if page > 1:
        links["previous"] = page_url(request, page - 1)
    if page < total_pages:
        links["next"] = page_url(request, page + 1)
    pagination = {
        "total": total,
        "count": len(chunk),
        "per_page": limit,
        "current_page": page,
        "total_pages": total_pages,
        "links": links,
    }
    return chunk, {"pagination": pagination}
