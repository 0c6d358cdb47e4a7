"""HTTP helpers of the Contacthub simulator: errors, JSON responses, parameter parsing."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response


class ApiError(Exception):
    """Raised by a handler to answer with the Contactlab standard error body."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.data = data


ERROR_ITEM_KEYS = ("path", "message", "data", "code")


def error_body(
    message: str, errors: list[dict[str, Any]] | None = None, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{message, logref, data, errors: [{path, message, data, code}]}``, every key always
    present (``null`` when empty): the official Python SDK reads ``data`` and ``logref`` of
    every error, the Go SDK's items carry ``code`` (SDK fixtures ``fake_conflict_response``,
    ``client/errors.go``). ``logref`` is a UUID, as in the fixtures."""
    items = [{key: item.get(key) for key in ERROR_ITEM_KEYS} for item in errors or []]
    return {"message": message, "logref": str(uuid.uuid4()), "data": data, "errors": items}


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def empty_response(status: int = 200) -> Response:
    """A status with an empty body (``DELETE /customers/{id}``: "the API returns an empty
    body", Go SDK ``client/customers.go``, whose test answers 200 and nothing)."""
    return Response(b"", status_code=status)


def raw_json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def int_param(
    request: Request, name: str, default: int | None, low: int, high: int | None
) -> int | None:
    """An integer query parameter within ``[low, high]``; 400 otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer", [bad(name, raw)]) from None
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and <= {high}"
        raise ApiError(400, f"{name} must be >= {low}{upper}", [bad(name, raw)])
    return value


def bad(name: str, value: Any) -> dict[str, Any]:
    return {"path": name, "message": f"invalid value {value!r}", "data": None, "code": None}


async def read_json(request: Request, max_bytes: int, what: str) -> Any:
    """The request body as JSON: 413 over ``max_bytes``, 400 when not JSON."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise ApiError(413, f"{what} payload must not exceed {max_bytes // 1024}kB")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "the request body is not valid JSON") from None
