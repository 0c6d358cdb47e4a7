"""A thin client of the 360NRS REST API (contacts, groups, v2 blacklist); one call per method.

Every failure becomes :class:`ApiFailure`, classified by the shared table in :mod:`syncer.http`
(network errors and 5xx: retry; 429: rate limit; 401/403: stop; 404; other 4xx: permanent),
with the API's own ``error.description`` in the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from ...http import TRANSPORT_ERRORS, Action, classify_status, retry_after_seconds, short_body

PAGE_LIMIT = 1000  # the documented maximum of ``limit``


class ApiFailure(Exception):
    """A call that did not succeed; ``action`` says what to do about it."""

    def __init__(
        self,
        action: Action,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.action = action
        self.message = message
        self.status = status
        self.retry_after = retry_after


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        description = error.get("description") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        description = None
    return f"360NRS {response.status_code}: {description or short_body(response)}"


class Nrs360Client:
    """360NRS calls over one keep-alive ``httpx.Client`` (base URL ``.../api/rest``)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def _call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        try:
            response = self.http.request(method, path, json=json, params=params)
        except TRANSPORT_ERRORS as exc:
            raise ApiFailure(
                Action.RETRY, f"360NRS {method} {path.split('?')[0]}: {type(exc).__name__}: {exc}"
            ) from None
        action = classify_status(response.status_code)
        if action is not Action.OK:
            retry_after = (
                retry_after_seconds(response)
                if action in (Action.RATE_LIMIT, Action.RETRY) and "retry-after" in response.headers
                else None
            )
            raise ApiFailure(action, _message(response), response.status_code, retry_after)
        if response.status_code == 204 or not response.content:
            return None
        try:
            # orjson: a third of stdlib json's time for the same bytes (one decode per call)
            return orjson.loads(response.content)
        except ValueError:
            raise ApiFailure(
                Action.RETRY,
                f"360NRS {method} {path}: unreadable answer {short_body(response)}",
                response.status_code,
            ) from None

    # -- contacts ----------------------------------------------------------------------------
    def find_contact(self, *, email: str | None = None, phone: str | None = None) -> int | None:
        """The oldest contact with this email (else this phone), or None."""
        for key, value in (("email", email), ("phone", phone)):
            if not value:
                continue
            found = self._call("GET", "/contacts", params={key: value, "limit": 10})
            ids = [int(c["id"]) for c in (found or {}).get("data", [])]
            if ids:
                return min(ids)
        return None

    def contacts_page(self, page: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the account's contacts (1,000, the documented maximum), and how many
        pages there are (``meta.pagination.total_pages``)."""
        answer = self._call("GET", "/contacts", params={"limit": PAGE_LIMIT, "page": page}) or {}
        pagination = (answer.get("meta") or {}).get("pagination") or {}
        data = answer.get("data") or []
        return [c for c in data if isinstance(c, dict)], int(pagination.get("total_pages") or 1)

    def create_contact(self, body: dict[str, Any]) -> int:
        return int(self._call("POST", "/contacts", json=body)["data"]["id"])

    def update_contact(self, contact_id: str | int, body: dict[str, Any]) -> None:
        self._call("PUT", f"/contacts/{contact_id}", json=body)

    def contact_group_ids(self, contact_id: str | int) -> set[int]:
        """The ids of the groups a contact is in (``GET /contacts/{id}?include=groups``)."""
        answer = self._call("GET", f"/contacts/{contact_id}", params={"include": "groups"}) or {}
        groups = (answer.get("data") or {}).get("groups") or []
        if isinstance(groups, dict):  # fractal may wrap an include in {"data": [...]}
            groups = groups.get("data") or []
        return {int(g["id"]) for g in groups if isinstance(g, dict) and "id" in g}

    def delete_contact(self, contact_id: str | int) -> bool:
        """Delete; False when it was not there (404 counts as done)."""
        try:
            self._call("DELETE", f"/contacts/{contact_id}")
        except ApiFailure as failure:
            if failure.action is Action.NOT_FOUND:
                return False
            raise
        return True

    # -- groups ------------------------------------------------------------------------------
    def groups(self) -> Iterator[dict[str, Any]]:
        """Every group, following the pages."""
        page = 1
        while True:
            answer = self._call("GET", "/groups", params={"limit": PAGE_LIMIT, "page": page})
            yield from answer.get("data", [])
            pagination = answer.get("meta", {}).get("pagination", {})
            if not pagination.get("links", {}).get("next") or not answer.get("data"):
                return
            page += 1

    def create_group(self, name: str) -> int:
        return int(self._call("POST", "/groups", json={"name": name})["data"]["id"])

    # -- blacklist ---------------------------------------------------------------------------
    def blacklist_add(self, kind: str, recipient: str) -> None:
        """Put ``recipient`` on the ``mailing``/``sms`` blacklist (adding twice is harmless)."""
        self._call("PUT", f"/v2/blacklist/{kind}", json={"recipient": recipient})

    def check(self) -> None:
        self._call("GET", "/groups", params={"limit": 1})
