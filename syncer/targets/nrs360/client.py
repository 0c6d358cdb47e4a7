"""A thin client of the 360NRS REST API (contacts, groups, v2 blacklist); one call per method.

Every call goes through :func:`syncer.targets.errors.send`: failures are the shared taxonomy
of :mod:`syncer.targets.errors` (retry, rate limit, stop, not found, rejected), with the API's
own ``error.description`` in the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from ...http import short_body
from ..errors import NotFound, send, unreadable

PAGE_LIMIT = 1000  # the documented maximum of ``limit``


def _message(method: str, path: str, response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        description = error.get("description") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        description = None
    return f"360NRS {response.status_code}: {description or short_body(response)}"


def groups_of(contact: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``{id, name}`` groups of a contact read with ``include=groups`` (the documented
    ``"groups": {"data": [...]}``, S004:L3039; a bare list is taken too)."""
    groups = contact.get("groups")
    if isinstance(groups, dict):
        groups = groups.get("data")
    return [g for g in groups or [] if isinstance(g, dict) and "id" in g]


class Nrs360Client:
    """360NRS calls over one keep-alive ``httpx.Client`` (base URL ``.../api/rest``)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def _call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        response = send(
            self.http,
            method,
            path,
            api="360NRS",
            describe=_message,
            json=json,
            params=params,
        )
        if response.status_code == 204 or not response.content:
            return None
        try:
            # orjson: a third of stdlib json's time for the same bytes (one decode per call)
            return orjson.loads(response.content)
        except ValueError:
            raise unreadable("360NRS", method, path, response) from None

    # -- contacts ----------------------------------------------------------------------------
    def find_contact(self, *, email: str | None = None, phone: str | None = None) -> int | None:
        """The oldest contact with this email (else this phone), or None."""
        found = self.lookup_contact(email=email, phone=phone)
        return int(found["id"]) if found is not None else None

    def lookup_contact(
        self, *, email: str | None = None, phone: str | None = None
    ) -> dict[str, Any] | None:
        """The oldest contact with this email (else this phone) with its groups
        (``include=groups``, S004:L3067: the same call, no extra one), or None."""
        for key, value in (("email", email), ("phone", phone)):
            if not value:
                continue
            params = {key: value, "limit": 10, "include": "groups"}
            found = self._call("GET", "/contacts", params=params)
            contacts = [c for c in (found or {}).get("data", []) if isinstance(c, dict)]
            if contacts:
                return min(contacts, key=lambda c: int(c["id"]))
        return None

    def contact_groups(self, contact_id: str | int) -> list[dict[str, Any]] | None:
        """The groups ``{id, name}`` a contact is in now (``GET /contacts/<ID>?include=groups``,
        S004:L3074-3222), or None when the contact is gone (404)."""
        try:
            answer = self._call("GET", f"/contacts/{contact_id}", params={"include": "groups"})
        except NotFound:
            return None
        return groups_of((answer or {}).get("data") or {})

    def contacts_page(self, page: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the account's contacts (1,000, the documented maximum), and how many
        pages there are (``meta.pagination.total_pages``)."""
        params = {"limit": PAGE_LIMIT, "page": page, "include": "groups"}
        answer = self._call("GET", "/contacts", params=params) or {}
        pagination = (answer.get("meta") or {}).get("pagination") or {}
        data = answer.get("data") or []
        return [c for c in data if isinstance(c, dict)], int(pagination.get("total_pages") or 1)

    def create_contact(self, body: dict[str, Any]) -> int:
        return int(self._call("POST", "/contacts", json=body)["data"]["id"])

    def update_contact(self, contact_id: str | int, body: dict[str, Any]) -> None:
        self._call("PUT", f"/contacts/{contact_id}", json=body)

    def delete_contact(self, contact_id: str | int) -> bool:
        """Delete; False when it was not there (404 counts as done)."""
        try:
            self._call("DELETE", f"/contacts/{contact_id}")
        except NotFound:
            return False
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
