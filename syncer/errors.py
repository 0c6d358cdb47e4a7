"""Every error syncer raises, organised by what the caller does about it.

::

    SyncerError
    ├── StopError            stop the job and tell the operator (exit non-zero); never retried
    │   ├── ConfigError      (syncer.config.loader) bad config file: file, key path, message
    │   ├── StateError       state database unusable: schema too new, lease held, SQLite in use
    │   └── AuthError        401/403 on a target, 401/403/404 on the source: credentials,
    │                        account, workspace, node
    ├── RetryableError       try again later with backoff; attempts are counted
    │   └── RateLimited      429: wait ``retry_after``; the wait does not spend an attempt
    └── PermanentError       the record can never succeed as sent: dead-letter it with the reason
        ├── InvalidRecord    (syncer.mapping.errors) rejected before sending: bad phone, no key
        └── ApiRejected      (syncer.targets.errors) a target's 4xx; NotFound 404, Conflict 409

HTTP statuses map to these classes in one table, :mod:`syncer.http`; every target call goes
through :func:`syncer.targets.errors.send`, whose docstring draws the same tree as a target
sees it (retry with a due time, dead with the target's reason, stop the target).
"""

from __future__ import annotations


class SyncerError(Exception):
    """Base of every error syncer raises on purpose."""


class StopError(SyncerError):
    """The job cannot go on; the operator must act. The message says what to do."""


class StateError(StopError):
    """The state database cannot be used as it is."""


class AuthError(StopError):
    """Credentials, workspace or node refused by an API."""


class RetryableError(SyncerError):
    """A transient failure: retry with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(RetryableError):
    """The API said 429; wait ``retry_after`` seconds. Does not spend the attempt budget."""


class PermanentError(SyncerError):
    """The API rejected the record itself; sending it again cannot help."""
