"""The console's state changes, each in one transaction: retry and discard dead letters.

Retry is :func:`syncer.state.dlq_ops.dlq_retry` (the same as ``syncer dlq retry``: a dead row
superseded by a newer one is closed instead of resurrected), called on the ids an operator
chose, in chunks so a reason group of any size stays within the database's parameter limits.
Discard closes dead rows as ``discarded``: no state the engine claims, kept for the history.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from ..state import dlq_ops
from ..state.delivery_ops import DISCARDED
from ..state.schema import deliveries
from .queries import dead_filter

CHUNK = 500  # ids per statement


@dataclass
class Scope:
    """Which dead letters an action is about: one id, or every dead row matching filters."""

    id: int | None = None
    pipeline: str | None = None
    target: str | None = None
    reason: str | None = None

    def describe(self) -> str:
        if self.id is not None:
            return f"dead letter {self.id}"
        parts = [
            f"{k}={v!r}"
            for k, v in (
                ("pipeline", self.pipeline),
                ("target", self.target),
                ("reason", self.reason),
            )
            if v is not None and v != ""
        ]
        return "all dead letters" + (" with " + ", ".join(parts) if parts else "")


def scope_ids(conn: Connection, scope: Scope) -> list[int]:
    d = deliveries
    if scope.id is not None:
        query = select(d.c.id).where(d.c.id == scope.id, d.c.state == "dead")
    else:
        query = select(d.c.id).where(
            dead_filter(scope.pipeline or None, scope.target or None, scope.reason)
        )
    return list(conn.execute(query.order_by(d.c.id)).scalars())


def retry(conn: Connection, scope: Scope, now: float) -> tuple[int, int]:
    """``(retried, superseded)`` over the scope's dead rows."""
    ids = scope_ids(conn, scope)
    retried = superseded = 0
    for start in range(0, len(ids), CHUNK):
        r, s = dlq_ops.dlq_retry(conn, now, ids=ids[start : start + CHUNK])
        retried, superseded = retried + r, superseded + s
    return retried, superseded


def discard(conn: Connection, scope: Scope, now: float) -> int:
    """Close the scope's dead rows as ``discarded``; returns how many."""
    ids = scope_ids(conn, scope)
    d = deliveries
    for start in range(0, len(ids), CHUNK):
        conn.execute(
            update(d)
            .where(d.c.id.in_(ids[start : start + CHUNK]), d.c.state == "dead")
            .values(state=DISCARDED, updated_at=now)
        )
    return len(ids)
