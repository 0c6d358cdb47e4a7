"""One contact, several customers: the newest ``updatedAt`` wins (docs/sources.md).

Two customers (of two sources, or of one) whose records resolve to one contact of a target
(the same e-mail found by the target's lookup) end up with the same ``id_map.target_id``. When
a write lands on a contact that another customer with a newer ``updatedAt`` also maps to, the
target now holds the older data: that newer customer is queued again (its last hash cleared,
so it is sent, not judged "unchanged"). Its write then lands last. A write by the newest
customer queues nobody, so this ends after at most one extra write per conflict, and the
end state does not depend on the order in which sources or deliveries ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, insert, select, update

from .schema import deliveries, entities, id_map

if TYPE_CHECKING:
    from .delivery_ops import RowResult

__all__ = ["requeue_newer_rivals"]

_OPEN = ("pending", "failed", "in_flight")


def requeue_newer_rivals(
    conn: Connection, target: str, results: Sequence[RowResult], now: float
) -> list[str]:
    """Queue again the customers that share a contact written here and are newer than the
    customer written; returns their ids."""
    written = {
        r.subject_id: r.target_id
        for r in results
        if r.set_id_map and r.target_id and not r.forget and r.row.entity_type == "customer"
    }
    if not written:
        return []
    rivals = conn.execute(
        select(id_map.c.entity_id, id_map.c.target_id).where(
            id_map.c.target == target,
            id_map.c.target_id.in_(sorted({str(t) for t in written.values()})),
            id_map.c.entity_id.notin_(sorted(written)),
        )
    ).all()
    if not rivals:
        return []
    ids = sorted(set(written) | {r.entity_id for r in rivals})
    stamps: dict[str, tuple[str, str]] = {
        r.entity_id: (r.updated_at or "", r.entity_id)
        for r in conn.execute(
            select(entities.c.entity_id, entities.c.updated_at).where(
                entities.c.entity_type == "customer",
                entities.c.entity_id.in_(ids),
                entities.c.deleted.is_(False),
            )
        )
    }
    newest: dict[str, str] = {}  # contact -> the newest customer mapping to it
    for cid, tid in [*written.items(), *((r.entity_id, r.target_id) for r in rivals)]:
        if cid in stamps and (tid not in newest or stamps[cid] > stamps[newest[tid]]):
            newest[str(tid)] = cid
    again = sorted({cid for tid, cid in newest.items() if cid not in written})
    for cid in again:
        _requeue_customer(conn, target, cid, now)
    return again


def _requeue_customer(conn: Connection, target: str, cid: str, now: float) -> None:
    conn.execute(
        update(id_map)
        .where(id_map.c.target == target, id_map.c.entity_id == cid)
        .values(last_hash=None)
    )
    d = deliveries
    pipelines = set(
        conn.execute(
            select(d.c.pipeline)
            .where(d.c.target == target, d.c.entity_type == "customer", d.c.entity_id == cid)
            .distinct()
        ).scalars()
    )
    selected = conn.execute(
        select(entities.c.pipelines).where(
            and_(entities.c.entity_type == "customer", entities.c.entity_id == cid)
        )
    ).scalar()
    pipelines &= set((selected or "").split())
    open_ = set(
        conn.execute(
            select(d.c.pipeline).where(
                d.c.target == target,
                d.c.entity_type == "customer",
                d.c.entity_id == cid,
                d.c.state.in_(_OPEN),
            )
        ).scalars()
    )
    rows: list[dict[str, Any]] = [
        {
            "pipeline": p,
            "target": target,
            "entity_type": "customer",
            "entity_id": cid,
            "subject_id": cid,
            "action": "upsert",
            "state": "pending",
            "attempts": 0,
            "due_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for p in sorted(pipelines - open_)  # an open row sends the newest state anyway
    ]
    if rows:
        conn.execute(insert(deliveries), rows)
