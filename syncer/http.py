"""The one HTTP status-to-action table, shared by the source and every target.

=========================  ===========  =============================================
status / failure           action       why
=========================  ===========  =============================================
2xx                        ok
network error, timeout     retry        nothing or something was applied: idempotent
                                        writes make a re-send harmless
408, 425, 500-504          retry        transient on the server side
429                        rate_limit   wait ``Retry-After`` (seconds or HTTP date),
                                        without spending an attempt
401, 403                   stop         credentials/permissions: the operator must act
404                        not_found    the caller decides (a missing mapped contact
                                        means "create it again")
409                        conflict     the caller decides (exists already)
other 4xx                  permanent    the record itself is wrong: dead-letter it
=========================  ===========  =============================================

Backoff: ``backoff_delay`` is "full jitter" exponential backoff, capped.
"""

from __future__ import annotations

import email.utils
import random
import time
from enum import StrEnum

import httpx


class Action(StrEnum):
    OK = "ok"
    RETRY = "retry"
    RATE_LIMIT = "rate_limit"
    STOP = "stop"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PERMANENT = "permanent"


RETRY_STATUSES = frozenset({408, 425, 500, 501, 502, 503, 504})
# Exceptions meaning "no usable answer": the request may or may not have been applied.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError,)
DEFAULT_RETRY_AFTER = 1.0
# The longest Retry-After obeyed: a server asking for a day would otherwise block a target
# past every claim lease and shutdown. Rows wait with their due time, never a sleeping thread.
MAX_RETRY_AFTER = 900.0


def classify_status(status: int) -> Action:
    """What to do about an HTTP status (see the module table)."""
    if 200 <= status < 300:
        return Action.OK
    if status == 429:
        return Action.RATE_LIMIT
    if status in RETRY_STATUSES or status >= 500:
        return Action.RETRY
    if status in (401, 403):
        return Action.STOP
    if status == 404:
        return Action.NOT_FOUND
    if status == 409:
        return Action.CONFLICT
    return Action.PERMANENT


def retry_after_seconds(
    response: httpx.Response, default: float = DEFAULT_RETRY_AFTER, cap: float = MAX_RETRY_AFTER
) -> float:
    """``Retry-After`` as seconds (delta-seconds or HTTP date), else ``default``; at most
    ``cap``."""
    value = response.headers.get("retry-after")
    if not value:
        return min(default, cap)
    try:
        return min(cap, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return min(default, cap)
    return min(cap, max(0.0, when.timestamp() - time.time()))


def backoff_delay(
    attempt: int, base: float = 1.0, cap: float = 600.0, rng: random.Random | None = None
) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th retry (1-based)."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)


def short_body(response: httpx.Response, limit: int = 300) -> str:
    """The start of a response body, for error messages (never the request: it holds secrets)."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return "<unreadable body>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
