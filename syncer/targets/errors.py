"""The one error taxonomy of target calls, and the one call that applies it.

Every target sends its HTTP requests through :func:`send`, which turns each failure into one
class of :mod:`syncer.errors` by the status table of :mod:`syncer.http`; every target turns a
failed change into an :class:`~syncer.targets.base.Outcome` with :func:`outcome_for`. So a
status means the same thing in every target, and a new target writes neither table::

    failure of a target call
    ├── retry with a due time                      -> Outcome "retry"
    │   ├── RetryableError   network error, timeout, 408/425/5xx, an unreadable 2xx answer
    │   │                    (due: Retry-After when given, else the engine's backoff)
    │   ├── RateLimited      429 (due: Retry-After, or the target's own reset header, else
    │   │                    1 s); the wait spends no attempt
    │   └── JobPending       not a failure: a job (an NP6 import) is in progress; due when
    │                        it is worth asking again, spends no attempt. Targets never
    │                        sleep: the engine re-queues the change and the job resumes
    ├── dead with the target's reason              -> Outcome "dead"
    │   └── ApiRejected      any other 4xx: the record as sent can never succeed; the message
    │       │                is the API's own reason (the target's ``describe``)
    │       ├── NotFound     404: the caller may decide otherwise first (re-create, "done")
    │       └── Conflict     409: the caller may decide otherwise first (exists already)
    └── stop the target                            -> raised out of ``apply``
        └── AuthError        401/403: credentials or account; the worker stops the target,
                             its rows go back untouched and the operator is told

``ApiRejected`` is a :class:`~syncer.errors.PermanentError`, ``AuthError`` a
:class:`~syncer.errors.StopError`: the tree in :mod:`syncer.errors` is this one, seen from the
whole program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from ..errors import AuthError, PermanentError, RateLimited, RetryableError
from ..http import TRANSPORT_ERRORS, Action, classify_status, retry_after_seconds, short_body
from .base import Change, Outcome

__all__ = [
    "ApiRejected",
    "AuthError",
    "Conflict",
    "JobPending",
    "NotFound",
    "RateLimited",
    "RetryableError",
    "describe_body",
    "outcome_for",
    "send",
    "unreadable",
]


class JobPending(RetryableError):
    """A job of the target is in progress; ask again in ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after)


class ApiRejected(PermanentError):
    """A 4xx other than 401/403/429 (or a target-side verdict of the same kind): ``status``
    (0 when no call answered it), the API's ``code`` when its body has one."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class NotFound(ApiRejected):
    """404: the record, list or definition is not there."""


class Conflict(ApiRejected):
    """409: it exists already (or, for NP6, an execution is still processing)."""


#: ``describe(method, path, response)``: the target's reason for a failed answer
Describe = Callable[[str, str, httpx.Response], str]
#: ``wait(response)``: seconds a 429 asks for, from a target's own header; None: Retry-After
RateWait = Callable[[httpx.Response], float | None]


def describe_body(api: str) -> Describe:
    """The default reason: ``"<api> <method> <path> -> <status>: <start of the body>"``."""

    def describe(method: str, path: str, response: httpx.Response) -> str:
        body = short_body(response)
        where = f"{api} {method} {path.split('?')[0]} -> {response.status_code}"
        return f"{where}: {body}" if body else where

    return describe


def send(
    http: httpx.Client,
    method: str,
    path: str,
    *,
    api: str,
    describe: Describe | None = None,
    stop_hint: str = "",
    rate_wait: RateWait | None = None,
    url: str | None = None,
    **request: Any,
) -> httpx.Response:
    """One request; the 2xx response, or the failure of the taxonomy above.

    ``api`` names the API in messages; ``path`` is what messages show (``url``, when given,
    is what is requested); ``stop_hint`` is added to a 401/403's message (what to check).
    """
    try:
        response = http.request(method, url if url is not None else path, **request)
    except TRANSPORT_ERRORS as exc:
        where = f"{api} {method} {path.split('?')[0]}"
        raise RetryableError(f"{where}: {type(exc).__name__}: {exc}") from exc
    action = classify_status(response.status_code)
    if action is Action.OK:
        return response
    message = (describe or describe_body(api))(method, path, response)
    given = retry_after_seconds(response) if "retry-after" in response.headers else None
    if action is Action.RATE_LIMIT:
        own = rate_wait(response) if rate_wait is not None else None
        wait = given if given is not None else own
        raise RateLimited(message, wait if wait is not None else retry_after_seconds(response))
    if action is Action.RETRY:
        raise RetryableError(message, given)
    if action is Action.STOP:
        raise AuthError(f"{message}; {stop_hint}" if stop_hint else message)
    if action is Action.NOT_FOUND:
        raise NotFound(response.status_code, message)
    if action is Action.CONFLICT:
        raise Conflict(response.status_code, message)
    raise ApiRejected(response.status_code, message)


def outcome_for(change: Change, exc: RetryableError | PermanentError) -> Outcome:
    """A failed change's outcome: retry with its due time, or dead with the target's reason.
    (``AuthError`` is never caught for this: it stops the target.)"""
    if isinstance(exc, JobPending):
        return Outcome.retry(change, str(exc), retry_after=exc.retry_after, pending=True)
    if isinstance(exc, RetryableError):
        return Outcome.retry(
            change, str(exc), retry_after=exc.retry_after, rate_limited=isinstance(exc, RateLimited)
        )
    return Outcome.dead(change, str(exc))


def unreadable(api: str, method: str, path: str, response: httpx.Response) -> RetryableError:
    """A 2xx whose body cannot be read: nothing says what was applied, so retry."""
    return RetryableError(
        f"{api} {method} {path.split('?')[0]}: unreadable answer {short_body(response)}"
    )
