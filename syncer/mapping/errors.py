"""Errors raised by the mapping layer.

Only one: :class:`InvalidRecord`, meaning "this record cannot be sent as it is" (bad phone,
unparseable date, missing key field). The engine dead-letters it without calling the target;
retrying does not help until the source data changes. It is a
:class:`syncer.errors.PermanentError`, so it sits in the one error tree of ``syncer.errors``.
"""

from __future__ import annotations

from syncer.errors import PermanentError

__all__ = ["InvalidRecord"]


class InvalidRecord(PermanentError):
    """A record that cannot be mapped; ``reason`` is a short human-readable explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
