"""The Erasures page's data, behind one small interface.

The record of an erasure is its row in the erasure ledger (``erasures``, opened by ingest with
the customer's suppression row), and its progress per target is that target's acknowledgement
(``erasure_acks``) or, until then, the state of its ``delete`` delivery:
:class:`TableLedger` reads them through :mod:`syncer.state.erasure_ops`, as ``syncer erasures``
does. :class:`SuppressionLedger` reads a database from before the ledger (schema 0004 and
older: ``suppression`` rows and ``delete`` deliveries); :func:`ledger_for` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, distinct, func, inspect, literal_column, select

from ..state import erasure_ops
from ..state.delivery_ops import DISCARDED
from ..state.schema import deliveries, suppression

OPEN = ("pending", "in_flight", "failed")


@dataclass
class TargetErasure:
    target: str
    pipeline: str
    state: str  # the delete delivery's state (syncer.state.delivery_ops.STATES)
    attempts: int
    updated_at: float
    last_error: str | None


@dataclass
class Erasure:
    entity_id: str
    reason: str
    requested_at: float
    targets: list[TargetErasure] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``done`` when every target finished, ``dead`` when one gave up, ``discarded`` when
        an operator closed one unsent, else ``open`` (``none``: no target had to be told, e.g.
        only ``on_delete: ignore`` pipelines). A discarded delete is not an erasure done."""
        states = {t.state for t in self.targets}
        if not states:
            return "none"
        if "dead" in states:
            return "dead"
        if states & set(OPEN):
            return "open"
        if DISCARDED in states:
            return DISCARDED
        return "done"


class ErasureLedger(Protocol):
    def pending(self, conn: Connection) -> int:
        """Erasures that some target has not finished yet."""
        ...

    def page(self, conn: Connection, before: float | None, limit: int) -> list[Erasure]:
        """Newest first; ``before``: the page after that request time."""
        ...


class SuppressionLedger:
    """Erasures as ``suppression`` rows plus their ``delete`` deliveries."""

    def pending(self, conn: Connection) -> int:
        d = deliveries
        # literals: the partial index ``ix_deliveries_deletes`` (WHERE action = 'delete')
        # serves only a query spelling that constant
        states = ", ".join(f"'{s}'" for s in (*OPEN, "dead"))
        query = select(func.count(distinct(d.c.subject_id))).where(
            d.c.action == literal_column("'delete'"),
            literal_column(f"deliveries.state IN ({states})"),
        )
        return int(conn.execute(query).scalar_one())

    def page(self, conn: Connection, before: float | None, limit: int) -> list[Erasure]:
        s = suppression
        query = select(s).order_by(s.c.suppressed_at.desc(), s.c.entity_id).limit(limit)
        if before is not None:
            query = query.where(s.c.suppressed_at < before)
        rows = {
            r.entity_id: Erasure(r.entity_id, r.reason, r.suppressed_at)
            for r in conn.execute(query)
        }
        if not rows:
            return []
        d = deliveries
        deletes = conn.execute(
            select(d)
            .where(d.c.subject_id.in_(sorted(rows)), d.c.action == "delete")
            .order_by(d.c.id)
        )
        for r in deletes:
            rows[r.subject_id].targets.append(
                TargetErasure(
                    r.target, r.pipeline, r.state, int(r.attempts), r.updated_at, r.last_error
                )
            )
        return list(rows.values())


class TableLedger:
    """Erasures as the erasure ledger records them (:mod:`syncer.state.erasure_ops`)."""

    def pending(self, conn: Connection) -> int:
        return erasure_ops.pending_summary(conn)[0]

    def page(self, conn: Connection, before: float | None, limit: int) -> list[Erasure]:
        return [
            Erasure(
                r.entity_id,
                r.reason,
                r.requested_at,
                [
                    TargetErasure(
                        t.target,
                        t.pipeline,
                        t.state,
                        t.attempts,
                        t.acked_at if t.acked_at is not None else (t.updated_at or 0.0),
                        t.last_error,
                    )
                    for t in r.targets
                ],
            )
            for r in erasure_ops.ledger(conn, before=before, limit=limit)
        ]


def ledger_for(conn: Connection) -> ErasureLedger:
    """The ledger the state database has: the erasure ledger table, or (a database the
    console reads without migrating it) suppression rows and their deliveries."""
    if inspect(conn).has_table("erasures"):
        return TableLedger()
    return SuppressionLedger()
