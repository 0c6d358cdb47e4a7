"""A thin client of the Octopush contact API (``/v1/public``, DIGEST section 3).

Only the calls the target needs: ``contact/create`` (upsert into one list),
``contact/delete`` (remove from a list, or delete from the account) and
``contact-list/create``. Every body is JSON, ``DELETE`` included.

Every call goes through :func:`syncer.targets.errors.send` (the shared taxonomy); a rejected
call is an :class:`~syncer.targets.errors.ApiRejected` (``OctopushApiError``) with Octopush's
``code`` and ``message`` from the body.

Any 2xx is success: the docs promise 201/204 but the API is known to answer 200 (DIGEST 3.3).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import httpx

from ...http import Action, classify_status, short_body
from ..errors import ApiRejected, Conflict, send

__all__ = ["MAX_DELETE", "MAX_LIST_NAME", "MAX_TAG", "OctopushApiError", "OctopushClient"]

MAX_DELETE = 200  # "From 1 to 200 contacts" per contact/delete call
MAX_LIST_NAME = 30
MAX_TAG = 20


#: a 4xx answer other than 401/403/429 (the shared class; the message carries Octopush's
#: ``code`` and ``message``)
OctopushApiError = ApiRejected


class OctopushClient:
    """Octopush calls over an injected (already rate-limited) ``httpx.Client``."""

    def __init__(self, http: httpx.Client, base_url: str, api_login: str, api_key: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "api-login": api_login,
            "api-key": api_key,
            "Content-Type": "application/json",
            "cache-control": "no-cache",
        }

    def _call(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return send(
            self.http,
            method,
            path,
            api="Octopush",
            describe=_describe,
            stop_hint="check api_login and api_key",
            url=self.base_url + path,
            json=body,
            headers=self._headers,
        )

    def check(self) -> None:
        """An authenticated no-op: ``contact/create`` with no contacts (400 = credentials ok)."""
        with contextlib.suppress(OctopushApiError):
            self._call("POST", "/contact/create", {"contacts": []})

    def create_contacts(
        self, list_name: str, tag: str | None, contacts: Sequence[dict[str, Any]]
    ) -> dict[str, str]:
        """Upsert ``contacts`` into ``list_name``: ``{E.164 phone: added|updated|skipped}``."""
        body: dict[str, Any] = {"contacts": list(contacts), "list_name": list_name}
        if tag:
            body["tag_name"] = tag
        response = self._call("POST", "/contact/create", body)
        statuses: dict[str, str] = {}
        try:
            items = response.json().get("items") or []
        except ValueError:
            items = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("phone_number"), str):
                statuses[item["phone_number"]] = str(item.get("status") or "updated")
        return statuses

    def delete_contacts(self, numbers: Sequence[str], list_name: str | None) -> None:
        """Remove ``numbers`` (1..200) from ``list_name``, or delete them when it is None."""
        body: dict[str, Any] = {"phone_numbers": list(numbers)}
        if list_name is not None:
            body["list_name"] = list_name
        self._call("DELETE", "/contact/delete", body)

    def create_list(self, list_name: str) -> bool:
        """Create a contact list; False when it existed already (409)."""
        try:
            self._call("POST", "/contact-list/create", {"list_name": list_name})
        except Conflict:
            return False
        return True


def _describe(method: str, path: str, response: httpx.Response) -> str:
    status = response.status_code
    if classify_status(status) in (Action.RETRY, Action.RATE_LIMIT, Action.STOP):
        return f"Octopush {method} {path} -> {status}: {short_body(response)}"
    code, message = _error_body(response)
    return f"Octopush {status}" + (f" code {code}" if code is not None else "") + f": {message}"


def _error_body(response: httpx.Response) -> tuple[int | None, str]:
    """``{"code", "message"}`` from an error answer, tolerating other bodies."""
    try:
        data = response.json()
    except ValueError:
        return None, short_body(response) or response.reason_phrase
    if isinstance(data, dict) and "message" in data:
        code = data.get("code")
        return (code if isinstance(code, int) else None), str(data["message"])
    return None, short_body(response)
