"""The Contacthub (Contactlab CDP) HTTP client: update stream, customer and event search.

The ``httpx.Client`` is injected (the CLI builds it with the base URL, timeout and
``Authorization: Bearer`` header), so tests can hand in a client pointed at the sandbox or a
``MockTransport``. Every call goes through :meth:`ContacthubClient._get`, which applies the
shared status-to-action table of :mod:`syncer.http`:

* network errors, timeouts, 408/425/5xx and bodies that are not JSON (an HTML error page from a
  proxy, a truncated answer): retried with full-jitter exponential backoff, at most
  ``max_attempts`` attempts, then :class:`~syncer.errors.RetryableError`;
* 429: wait ``Retry-After`` (not counted as an attempt, but bounded by ``max_rate_waits``);
* 401/403/404: :class:`~syncer.errors.AuthError` naming the workspace and node (a 404 on a
  single customer is "not found", answered as ``None``);
* other 4xx: :class:`~syncer.errors.PermanentError`; a search over the 10,000-match cap (in
  APIs that refuse it) is :class:`SearchTooBroad`, so the backfill can narrow its slice.

Messages carry the path and the start of the body, never the request headers (the token).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

import httpx
import orjson

from ..errors import AuthError, PermanentError, RateLimited, RetryableError
from ..http import (
    TRANSPORT_ERRORS,
    Action,
    backoff_delay,
    classify_status,
    retry_after_seconds,
    short_body,
)

__all__ = [
    "DEFAULT_SOURCE",
    "SEARCH_CAP",
    "ContacthubClient",
    "SearchPage",
    "SearchTooBroad",
    "UpdatesPage",
    "id_prefix",
    "instant_key",
    "parse_instant",
    "source_of_stream",
    "stream_key",
]

SEARCH_CAP = 10_000  # "The maximum number of matched elements is 10000"
DEFAULT_SOURCE = "default"  # as syncer.config.models.DEFAULT_SOURCE (no import cycle)


def id_prefix(source: str) -> str:
    """The namespace of ``source``'s ids in the state: none for ``default`` (a state database
    of the single-source form keeps its ids), ``<source>:`` for every other source."""
    return "" if source == DEFAULT_SOURCE else f"{source}:"


def stream_key(source: str, workspace_id: str, node_id: str) -> str:
    """The checkpoint key of one node's stream: ``<ws>/<node>``, prefixed like the ids, so a
    node moved to another source starts afresh together with its customers' ids."""
    return f"{id_prefix(source)}{workspace_id}/{node_id}"


def source_of_stream(stream: str) -> str:
    """The source name of a checkpoint key (the inverse of :func:`stream_key`)."""
    head, sep, _ = stream.partition(":")
    return head if sep and "/" not in head else DEFAULT_SOURCE


def parse_instant(value: Any) -> datetime | None:
    """A Contacthub date-time as an aware datetime, or None when it is not one.

    Takes the API's own ``2017-06-29T20:23:09.215+0000`` and the other ISO 8601 spellings
    (``Z``, ``+00:00``, with or without fractions); a time without an offset is UTC.
    """
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _is_key_spelling(value: Any) -> TypeGuard[str]:
    """``value`` is spelled as :func:`instant_key` writes keys (``2017-06-29T20:23:09.215+0000``):
    the API's own spelling, so ingest skips the parse and format of nearly every document."""
    return (
        isinstance(value, str)
        and len(value) == 28
        and value.endswith("+0000")
        and value[4] == value[7] == "-"
        and value[10] == "T"
        and value[13] == value[16] == ":"
        and value[19] == "."
    )


def instant_key(value: Any) -> str:
    """A date-time as fixed-width UTC text with milliseconds (``0001-01-01T00:00:00.000+0000``),
    so that text order is time order wherever it is compared (in Python and in SQL); ``""``
    when ``value`` is no date-time. ``...09.215Z`` and ``...11:23:09.215+0200`` give the keys
    of their instants, never their spellings."""
    if _is_key_spelling(value):
        try:  # the API's own spelling is its key already, when it is a real date-time
            datetime.fromisoformat(value)
        except ValueError:
            return ""
        return value
    moment = parse_instant(value)
    if moment is None:
        return ""
    try:
        m = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+0100 has no UTC instant in datetime's range
        return ""
    # explicit widths: strftime's %Y gives "1", not "0001", for year 1 on glibc
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}+0000"
    )


class SearchTooBroad(PermanentError):
    """The search matched more elements than the API lets a query reach."""


@dataclass(frozen=True, slots=True)
class UpdatesPage:
    """One page of the update stream: ``updates`` are the raw JSON objects, in order."""

    next_offset: int
    updates: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a customer or event search."""

    elements: list[dict[str, Any]]
    total: int  # matched elements the API reports (at most the cap)
    max_elements: int  # the cap the API reports (10,000 when absent)


class ContacthubClient:
    """Reads one workspace/node of Contacthub through an injected ``httpx.Client``.

    ``http`` must already carry the base URL up to ``/hub/v1`` (paths here start at
    ``/workspaces/...``) and the ``Authorization`` header. ``stop`` (an Event) cuts retry
    waits short on shutdown.
    """

    def __init__(
        self,
        http: httpx.Client,
        workspace_id: str,
        node_id: str,
        *,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_rate_waits: int = 50,
        sleep: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
        source: str = DEFAULT_SOURCE,
    ) -> None:
        self.http = http
        self.workspace_id = workspace_id
        self.node_id = node_id
        self.source = source
        self.prefix = id_prefix(source)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_rate_waits = max_rate_waits
        self._stop = stop or threading.Event()
        self._sleep = sleep or self._interruptible_sleep
        self._prefix = f"/workspaces/{workspace_id}"

    @property
    def stream(self) -> str:
        """The checkpoint key of this client's update stream (see :func:`stream_key`)."""
        return stream_key(self.source, self.workspace_id, self.node_id)

    # -- the update stream -------------------------------------------------------------------
    def updates(self, offset: int, size: int) -> UpdatesPage:
        """Up to ``size`` updates after ``offset`` (exclusive) of this node."""
        body = self._get(
            "/updates", {"offset": offset, "size": size, "nodeId": self.node_id}, "update stream"
        )
        updates = body.get("updates")
        next_offset = body.get("nextOffset")
        if not isinstance(updates, list) or not isinstance(next_offset, int):
            raise RetryableError(
                f"Contacthub update stream answered an unexpected body (no 'updates' list or "
                f"integer 'nextOffset') for workspace {self.workspace_id}, node {self.node_id}"
            )
        return UpdatesPage(next_offset, updates)

    def last_offset(self) -> int:
        """The offset of the newest update of this node."""
        body = self._get("/updates/last-offset", {"nodeId": self.node_id}, "last offset")
        value = body.get("lastOffset")
        if not isinstance(value, int):
            raise RetryableError("Contacthub last-offset answer has no integer 'lastOffset'")
        return value

    # -- customers and events ----------------------------------------------------------------
    def search_customers(
        self, query: Mapping[str, Any] | None, page: int, size: int, sort: str | None = None
    ) -> SearchPage:
        """One page of customers of this node matching ``query`` (the SDK JSON condition)."""
        params: dict[str, Any] = {"nodeId": self.node_id, "page": page, "size": size}
        if query is not None:
            params["query"] = orjson.dumps(query).decode()
        if sort:
            params["sort"] = sort
        return _search_page(self._get("/customers", params, "customer search"))

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer, or ``None`` when Contacthub does not know it (deleted)."""
        body = self._get(f"/customers/{customer_id}", {}, "customer", missing_ok=True)
        return body or None

    def search_events(
        self,
        page: int,
        size: int,
        *,
        types: list[str] | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        customer_id: str | None = None,
    ) -> SearchPage:
        """One page of events of this node (newest first), filtered as given."""
        params: dict[str, Any] = {"nodeId": self.node_id, "page": page, "size": size}
        if types:
            params["type"] = ",".join(types)
        if date_from:
            params["dateFrom"] = date_from
        if date_to:
            params["dateTo"] = date_to
        if customer_id:
            params["customerId"] = customer_id
        return _search_page(self._get("/events", params, "event search"))

    # -- the request loop --------------------------------------------------------------------
    def _get(
        self, path: str, params: Mapping[str, Any], what: str, *, missing_ok: bool = False
    ) -> dict[str, Any]:
        url = self._prefix + path
        attempt = 0
        rate_waits = 0
        while True:
            problem = self._attempt(url, params, what, missing_ok)
            if isinstance(problem, dict):
                return problem
            if isinstance(problem, RateLimited):
                rate_waits += 1
                if rate_waits > self.max_rate_waits:
                    raise problem
                delay = problem.retry_after or 1.0
            else:
                attempt += 1
                if attempt >= self.max_attempts:
                    raise RetryableError(f"{problem} (gave up after {attempt} attempts)")
                delay = backoff_delay(attempt, self.backoff_base, self.backoff_cap)
            if self._stop.is_set():
                raise problem
            self._sleep(delay)
            if self._stop.is_set():  # woken by a stop: no further attempt, the caller ends
                raise problem

    def _attempt(
        self, url: str, params: Mapping[str, Any], what: str, missing_ok: bool
    ) -> dict[str, Any] | RetryableError:
        """The decoded body, or the retryable failure; raises the rest."""
        try:
            response = self.http.get(url, params=dict(params))
        except TRANSPORT_ERRORS as exc:
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
            return RetryableError(f"Contacthub {what} request {kind}: {type(exc).__name__}")
        action = classify_status(response.status_code)
        if action is Action.OK:
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                return RetryableError(
                    f"Contacthub {what} answered {response.status_code} with a body that is "
                    f"not JSON (truncated or an HTML page?): {short_body(response, 120)}"
                )
            if not isinstance(body, dict):
                return RetryableError(f"Contacthub {what} answered JSON that is not an object")
            return body
        if action is Action.RATE_LIMIT:
            delay = retry_after_seconds(response)
            return RateLimited(f"Contacthub {what} throttled (429)", retry_after=delay)
        if action is Action.RETRY:
            status = response.status_code
            return RetryableError(f"Contacthub {what} answered {status}")
        if action is Action.NOT_FOUND and missing_ok and "node" not in _message(response):
            return {}
        if action in (Action.STOP, Action.NOT_FOUND):
            raise AuthError(
                f"Contacthub refused the {what} request ({response.status_code}: "
                f"{_message(response) or 'no message'}) for workspace {self.workspace_id}, "
                f"node {self.node_id}: check the token, workspace_id and node_id in the config"
            )
        message = _message(response) or short_body(response)
        if "maximum number of matched" in message.lower():
            raise SearchTooBroad(f"Contacthub {what}: {message}")
        raise PermanentError(f"Contacthub {what} answered {response.status_code}: {message}")

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else ""


def _search_page(body: dict[str, Any]) -> SearchPage:
    elements = body.get("elements")
    if not isinstance(elements, list):
        raise RetryableError("Contacthub search answered a body without an 'elements' list")
    page = body.get("page")
    if not isinstance(page, dict):
        page = {}
    total = page.get("totalElements", len(elements))
    cap = page.get("maxElements") or SEARCH_CAP
    return SearchPage(elements, int(total), int(cap))
