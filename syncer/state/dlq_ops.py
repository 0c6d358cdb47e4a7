"""The dead-letter store and read-only queue views: ``dlq list|retry``, ``plan``, counts.

Functions take an open connection, like :mod:`.delivery_ops` (the delivery loop's operations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select, update

from ..source.contacthub import id_prefix
from .delivery_ops import DISCARDED, OPEN_STATES, ClaimedRow
from .schema import deliveries


@dataclass
class DeadRow:
    id: int
    pipeline: str
    target: str
    entity_type: str
    entity_id: str
    action: str
    attempts: int
    updated_at: float
    last_error: str | None
    extra: dict[str, Any] = field(default_factory=dict)


def open_rows(conn: Connection, pipeline: str | None = None) -> list[ClaimedRow]:
    """Open (pending/failed) rows, oldest first, for ``plan``; nothing is claimed."""
    d = deliveries
    query = select(d).where(d.c.state.in_(OPEN_STATES)).order_by(d.c.due_at, d.c.id)
    if pipeline:
        query = query.where(d.c.pipeline == pipeline)
    return [ClaimedRow.from_row(r, taken_over=False) for r in conn.execute(query)]


def of_source(column: ColumnElement[str], source: str) -> ColumnElement[bool]:
    """Rows of ``source``'s entities: ids are ``<source>:<id>`` except in ``default``."""
    prefix = id_prefix(source)
    if not prefix:
        return ~column.contains(":", autoescape=True)
    return column.startswith(prefix, autoescape=True)


def dlq_list(
    conn: Connection,
    pipeline: str | None = None,
    limit: int = 1000,
    *,
    source: str | None = None,
) -> list[DeadRow]:
    """Dead rows, newest first."""
    d = deliveries
    query = select(d).where(d.c.state == "dead").order_by(d.c.updated_at.desc(), d.c.id.desc())
    if pipeline:
        query = query.where(d.c.pipeline == pipeline)
    if source is not None:
        query = query.where(of_source(d.c.entity_id, source))
    return [
        DeadRow(
            r.id,
            r.pipeline,
            r.target,
            r.entity_type,
            r.entity_id,
            r.action,
            int(r.attempts),
            r.updated_at,
            r.last_error,
        )
        for r in conn.execute(query.limit(limit))
    ]


def dlq_retry(
    conn: Connection,
    now: float,
    pipeline: str | None = None,
    ids: Sequence[int] | None = None,
    *,
    source: str | None = None,
) -> tuple[int, int]:
    """Move dead rows back to ``pending`` (due now, attempts reset).

    A dead row superseded by any newer row of the same pipeline and customer, whatever its
    state but ``discarded`` (an open one sends the newest state anyway; a done one, a delete
    say, already did) is closed as ``done`` instead, so a retry never resurrects an older
    state. The retried row is planned from the newest entity when it is sent. Returns
    ``(retried, superseded)``.
    """
    d = deliveries
    query = select(d.c.id, d.c.pipeline, d.c.entity_type, d.c.entity_id).where(d.c.state == "dead")
    if pipeline:
        query = query.where(d.c.pipeline == pipeline)
    if source is not None:
        query = query.where(of_source(d.c.entity_id, source))
    if ids:
        query = query.where(d.c.id.in_(list(ids)))
    dead = conn.execute(query.order_by(d.c.id)).all()
    if not dead:
        return 0, 0
    customers = sorted({r.entity_id for r in dead if r.entity_type == "customer"})
    # the newest row of each (pipeline, customer), whatever its state: a dead row older than
    # it is superseded (a done delete after a dead upsert must never be undone by a retry)
    # A discarded row does not count: nothing was sent for it, so the retried row (planned
    # from the newest entity) is what brings the customer's newest state to the target.
    latest = {
        (r.pipeline, r.entity_id): int(r.newest)
        for r in conn.execute(
            select(d.c.pipeline, d.c.entity_id, func.max(d.c.id).label("newest"))
            .where(
                d.c.entity_type == "customer",
                d.c.entity_id.in_(customers),
                d.c.state != DISCARDED,
            )
            .group_by(d.c.pipeline, d.c.entity_id)
        )
    }
    retry: list[int] = []
    superseded: list[int] = []
    for r in dead:
        if r.entity_type != "customer":  # events never coalesce: each one is retried
            retry.append(r.id)
        elif latest.get((r.pipeline, r.entity_id), r.id) > r.id:
            superseded.append(r.id)
        else:
            retry.append(r.id)
    if retry:
        conn.execute(
            update(d)
            .where(d.c.id.in_(retry))
            .values(
                state="pending",
                attempts=0,
                due_at=now,
                updated_at=now,
                claimed_by=None,
                claim_expires_at=None,
                claim_token=None,
            )
        )
    if superseded:
        conn.execute(
            update(d)
            .where(d.c.id.in_(superseded))
            .values(state="done", updated_at=now, last_error="superseded by a newer delivery")
        )
    return len(retry), len(superseded)


def counts_by_state(conn: Connection, pipeline: str | None = None) -> dict[str, dict[str, int]]:
    """``{pipeline: {state: count}}``."""
    d = deliveries
    query = select(d.c.pipeline, d.c.state, func.count()).group_by(d.c.pipeline, d.c.state)
    if pipeline:
        query = query.where(d.c.pipeline == pipeline)
    counts: dict[str, dict[str, int]] = {}
    for p, s, n in conn.execute(query):
        counts.setdefault(p, {})[s] = int(n)
    return counts
