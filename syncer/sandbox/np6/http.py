"""HTTP helpers of the NP6 simulator: errors, header checks, bodies and JSON answers."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

VND_IMPORT = "application/vnd.mperf.v8.import.v1+json"


class Np6Error(Exception):
    """An error answer: NP6 bodies are empty unless a body was observed in the wild."""

    def __init__(self, status: int, body: str | None = None) -> None:
        super().__init__(f"{status} {body or ''}".strip())
        self.status = status
        self.body = body

    def response(self) -> Response:
        if self.body is None:
            return Response(status_code=self.status)
        return Response(self.body, status_code=self.status, media_type="text/plain")


def check_auth(request: Request, api_key: str) -> None:
    """``X-Key`` (header names are case-insensitive) must match: else 401, empty body."""
    given = request.headers.get("x-key", "")
    if not given or not hmac.compare_digest(given.encode(), api_key.encode()):
        raise Np6Error(401)


def check_content_length(request: Request) -> None:
    """NP6 answers 411 to a POST without ``Content-Length`` (e.g. chunked)."""
    if request.method == "POST" and "content-length" not in request.headers:
        raise Np6Error(411)


def check_import_accept(request: Request) -> None:
    """406 unless ``Accept`` lists ``application/vnd.mperf.v8.import.v1+json``."""
    accepted = [
        part.split(";")[0].strip().lower() for part in request.headers.get("accept", "").split(",")
    ]
    if VND_IMPORT not in accepted:
        raise Np6Error(406)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_body(request: Request, *, required: bool = True) -> Any:
    """The JSON body: 415 if not ``application/json`` (or ``+json``), 400 if missing/invalid."""
    raw = await request.body()
    if not raw:
        if required:
            raise Np6Error(400)
        return None
    ctype = media_type(request)
    if ctype != "application/json" and not (
        ctype.startswith("application/") and ctype.endswith("+json")
    ):
        raise Np6Error(415)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Np6Error(400) from None


async def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    body = await json_body(request, required=required)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise Np6Error(400)
    return body


def json_response(data: Any, status: int = 200, media: str = "application/json") -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=media)


def import_response(data: Any, status: int = 200) -> Response:
    return json_response(data, status, VND_IMPORT)
