"""A thin client of the NP6 (mperf 8.x) API: fields, import formats, imports and targets.

DIGEST section 4. Every call sends ``X-Key``; every call of the imports resource (``/imports``
and below, GETs and DELETEs included) also sends ``Accept:
application/vnd.mperf.v8.import.v1+json``: NP6-SLATE ``_imports.md`` L401-403 calls it
"imperative" for imports, and a server enforcing it on GETs too would refuse the polls.

Every call goes through :func:`syncer.targets.errors.send` (the shared taxonomy); NP6's own
parts are the message (method, path, status, ``x-request-id``: bodies are mostly empty) and a
429's wait (``Retry-After``, else ``X-RateLimit-Reset``). ``Np6ApiError`` and ``Np6NotFound``
are the shared ``ApiRejected`` and ``NotFound``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from ...errors import RetryableError
from ...http import short_body
from ..errors import ApiRejected, NotFound, send

__all__ = ["VND_IMPORT", "Np6ApiError", "Np6Client", "Np6NotFound"]

VND_IMPORT = "application/vnd.mperf.v8.import.v1+json"


#: a 4xx answer other than 401/403/404/429 (or a verdict on the tenant's schema, status 0)
Np6ApiError = ApiRejected
#: 404: unknown import, target, format, or (observed) an invalid value
Np6NotFound = NotFound


def _rate_limit_wait(response: httpx.Response) -> float | None:
    """``X-RateLimit-Reset`` (epoch seconds) as a wait; ``Retry-After`` comes first."""
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.isdigit():
        return max(1.0, float(reset) - time.time())
    return None


def _describe(method: str, path: str, response: httpx.Response) -> str:
    request_id = response.headers.get("x-request-id", "-")
    where = f"NP6 {method} {path} -> {response.status_code} (x-request-id {request_id})"
    body = short_body(response)
    return f"{where}: {body}" if body else where


class Np6Client:
    """NP6 calls over an injected (already rate-limited) ``httpx.Client``."""

    def __init__(self, http: httpx.Client, base_url: str, api_key: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._key = api_key

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {"X-Key": self._key, **(headers or {})}
        if path == "/imports" or path.startswith("/imports/"):
            all_headers["Accept"] = VND_IMPORT  # the whole resource, not only its writes
        return send(
            self.http,
            method,
            path,
            api="NP6",
            describe=_describe,
            stop_hint="check the NP6 api_key",
            rate_wait=_rate_limit_wait,
            url=self.base_url + path,
            json=json,
            content=content,
            headers=all_headers,
            params=params,
        )

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    # -- schema ------------------------------------------------------------------------------
    def fields(self) -> list[dict[str, Any]]:
        data = self._json(self._call("GET", "/fields"))
        return [f for f in data if isinstance(f, dict)] if isinstance(data, list) else []

    def import_format(self, format_id: int) -> dict[str, Any]:
        data = self._json(self._call("GET", f"/importFormats/{format_id}"))
        return data if isinstance(data, dict) else {}

    # -- imports -----------------------------------------------------------------------------
    def list_imports(self) -> list[dict[str, Any]]:
        data = self._json(self._call("GET", "/imports"))
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    def create_import(self, body: dict[str, Any]) -> int:
        """``POST /imports`` -> the new definition's id."""
        response = self._call("POST", "/imports", json=body)
        data = self._json(response)
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise RetryableError(
                f"NP6 POST /imports answered without an id: {short_body(response)}"
            )
        return int(data["id"])

    def upload_source(self, import_id: int, data: bytes, filename: str) -> dict[str, Any]:
        """``PUT /imports/{id}/source`` with the raw file -> the source object."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'form-data; filename="{filename}"',
        }
        response = self._call("PUT", f"/imports/{import_id}/source", content=data, headers=headers)
        body = self._json(response)
        return body if isinstance(body, dict) else {}

    def start_execution(self, import_id: int, binding: int) -> dict[str, Any]:
        """``POST /imports/{id}/executions`` -> the execution (state 0)."""
        response = self._call(
            "POST",
            f"/imports/{import_id}/executions",
            json={"binding": binding},
        )
        body = self._json(response)
        return body if isinstance(body, dict) else {}

    def last_execution(self, import_id: int) -> dict[str, Any] | None:
        """``GET /imports/{id}/executions`` -> the last execution, None if there is none."""
        try:
            response = self._call("GET", f"/imports/{import_id}/executions")
        except Np6NotFound:
            return None
        body = self._json(response)
        return body if isinstance(body, dict) else None

    # -- targets -----------------------------------------------------------------------------
    def find_target(self, unicity: str) -> dict[str, Any] | None:
        """``GET /targets?unicity=`` -> the target, None if unknown."""
        try:
            response = self._call("GET", "/targets", params={"unicity": unicity})
        except Np6NotFound:
            return None
        body = self._json(response)
        return body if isinstance(body, dict) else None

    def upsert_target(self, unicity: str, values: dict[str, Any]) -> dict[str, Any]:
        """``PUT /targets?unicity=`` with a flat ``{fieldId: value}`` body -> the target."""
        path = "/targets?unicity=" + quote(unicity, safe="")
        body = self._json(self._call("PUT", path, json=values))
        return body if isinstance(body, dict) else {}

    def delete_targets(self, unicities: Sequence[str]) -> None:
        """``DELETE /targets`` in bulk by unicity (unknown values are ignored by NP6)."""
        body = {"type": "unicity", "value": [[u] for u in unicities]}
        self._call("DELETE", "/targets", json=body, headers={"Accept": "application/vnd.np6.cm.v1"})

    def redlist(self, target_id: str, channel: str, detail: str) -> None:
        """``POST /targets/{id}/redlist/{mail|sms}`` with origin 1 (API)."""
        body = {"id": target_id, "timestamp": int(time.time()), "origin": 1, "detail": detail}
        self._call("POST", f"/targets/{quote(target_id, safe='')}/redlist/{channel}", json=body)
