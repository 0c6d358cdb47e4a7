"""A thin client of the NP6 (mperf 8.x) API: fields, import formats, imports and targets.

DIGEST section 4. Every call sends ``X-Key``; every call of the imports resource (``/imports``
and below, GETs and DELETEs included) also sends ``Accept:
application/vnd.mperf.v8.import.v1+json``: NP6-SLATE ``_imports.md`` L401-403 calls it
"imperative" for imports, and a server enforcing it on GETs too would refuse the polls.

Failures follow :mod:`syncer.http`'s table::

    transport error, 408/425/5xx  -> RetryableError
    429                           -> RateLimited (Retry-After, else X-RateLimit-Reset)
    401/403                       -> AuthError
    404                           -> Np6NotFound (the caller decides)
    any other non-2xx             -> Np6ApiError (status, x-request-id; bodies are mostly empty)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from ...errors import AuthError, PermanentError, RateLimited, RetryableError
from ...http import TRANSPORT_ERRORS, Action, classify_status, retry_after_seconds, short_body

__all__ = ["VND_IMPORT", "Np6ApiError", "Np6Client", "Np6NotFound"]

VND_IMPORT = "application/vnd.mperf.v8.import.v1+json"


class Np6ApiError(PermanentError):
    """A 4xx answer other than 401/403/404/429."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Np6NotFound(Np6ApiError):
    """404: unknown import, target, format, or (observed) an invalid value."""


def _rate_limit_wait(response: httpx.Response) -> float:
    if response.headers.get("retry-after"):
        return retry_after_seconds(response)
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.isdigit():
        return max(1.0, float(reset) - time.time())
    return retry_after_seconds(response)


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
        try:
            response = self.http.request(
                method,
                self.base_url + path,
                json=json,
                content=content,
                headers=all_headers,
                params=params,
            )
        except TRANSPORT_ERRORS as exc:
            raise RetryableError(f"NP6 {method} {path}: {type(exc).__name__}: {exc}") from exc
        action = classify_status(response.status_code)
        if action is Action.OK:
            return response
        request_id = response.headers.get("x-request-id", "-")
        where = f"NP6 {method} {path} -> {response.status_code} (x-request-id {request_id})"
        body = short_body(response)
        if body:
            where += f": {body}"
        if action is Action.RATE_LIMIT:
            raise RateLimited(where, _rate_limit_wait(response))
        if action is Action.RETRY:
            raise RetryableError(where)
        if action is Action.STOP:
            raise AuthError(f"{where}; check the NP6 api_key")
        if action is Action.NOT_FOUND:
            raise Np6NotFound(404, where)
        raise Np6ApiError(response.status_code, where)

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
