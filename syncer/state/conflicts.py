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

from .schema import deliveries, entities, id_map, memberships

if TYPE_CHECKING:
    from .delivery_ops import RowResult

__all__ = ["requeue_holders_of_erased", "requeue_newer_rivals"]

_OPEN = ("pending", "failed", "in_flight")
REQUEUE_CHUNK = 5000  # customers per statement (bind parameters stay far below any limit)


def requeue_newer_rivals(
    conn: Connection, target: str, results: Sequence[RowResult], now: float
) -> list[str]:
    """Queue again, per contact written here that other customers map to, its newest
    customer when the contact may not hold that customer's data and every holder's names:

    * the newest was not written here (an older customer's write landed last);
    * several holders were written here and the newest may not have landed last (their calls
      ran at once; unless the batch's writes landed in a known order, newest last);
    * a writer kept fewer names for the other holders than they hold now (a holder recorded
      after the writer was claimed).

    Returns their ids."""
    written = {
        r.subject_id: str(r.target_id)
        for r in results
        if r.set_id_map and r.target_id and not r.forget and r.row.entity_type == "customer"
    }
    if not written:
        return []
    holders: dict[str, set[str]] = {}  # contact -> every customer mapped to it
    for r in conn.execute(
        select(id_map.c.entity_id, id_map.c.target_id).where(
            id_map.c.target == target,
            id_map.c.target_id.in_(sorted(set(written.values()))),
        )
    ):
        holders.setdefault(str(r.target_id), set()).add(r.entity_id)
    shared = {tid: cids for tid, cids in holders.items() if len(cids) > 1}
    if not shared:
        return []
    everyone = sorted(set().union(*shared.values()))
    stamps: dict[str, tuple[str, str]] = {
        r.entity_id: (r.updated_at or "", r.entity_id)
        for r in conn.execute(
            select(entities.c.entity_id, entities.c.updated_at).where(
                entities.c.entity_type == "customer",
                entities.c.entity_id.in_(everyone),
                entities.c.deleted.is_(False),
            )
        )
    }
    held: dict[str, set[str]] = {}
    for m in conn.execute(
        select(memberships.c.entity_id, memberships.c.name).where(
            memberships.c.target == target, memberships.c.entity_id.in_(everyone)
        )
    ):
        held.setdefault(m.entity_id, set()).add(m.name)
    kept: dict[str, frozenset[str]] = {r.subject_id: r.co_held for r in results}
    landed = {r.subject_id: r.landed for r in results}
    writers_of: dict[str, list[str]] = {}  # contact -> the customers written to it here
    for cid, tid in written.items():
        if tid in shared:
            writers_of.setdefault(tid, []).append(cid)
    again: set[str] = set()
    for tid, cids in shared.items():
        live = [c for c in cids if c in stamps]
        if not live:
            continue
        newest = max(live, key=lambda c: stamps[c])
        writers = writers_of.get(tid, [])
        short = any(
            not set().union(*(held.get(o, set()) for o in cids - {w}))
            <= kept.get(w, frozenset()) | held.get(w, set())  # what the write left there
            for w in writers
        )
        if newest not in writers or short or _newest_may_not_be_last(newest, writers, landed):
            again.add(newest)
    _requeue_customers(conn, target, sorted(again), now)
    return sorted(again)


def _newest_may_not_be_last(
    newest: str, writers: Sequence[str], landed: dict[str, tuple[int, str, int] | None]
) -> bool:
    """Several writes to one contact: unless the engine knows the order they landed in (one
    batch, one pipeline's calls, a target that keeps order within a call), any may have been
    last. ``landed``: customer -> (batch, pipeline, position)."""
    if len(writers) < 2:
        return False
    order = [landed.get(w) for w in writers]
    if any(o is None for o in order) or len({o[:2] for o in order if o is not None}) > 1:
        return True
    return max(writers, key=lambda w: landed[w] or (0, "", 0)) != newest


def requeue_holders_of_erased(
    conn: Connection, target: str, results: Sequence[RowResult], now: float
) -> list[str]:
    """A forgotten customer's delete that kept a contact other customers hold too (the target
    answered ``left``): queue the newest of them again, so that its data, not the forgotten
    customer's, is what the contact holds. Returns their ids."""
    erased = {
        r.subject_id: str(r.target_id)
        for r in results
        if r.row.action == "delete" and r.outcome == "left" and r.target_id
    }
    if not erased:
        return []
    holders = conn.execute(
        select(id_map.c.entity_id, id_map.c.target_id).where(
            id_map.c.target == target,
            id_map.c.target_id.in_(sorted(set(erased.values()))),
            id_map.c.entity_id.notin_(sorted(erased)),
        )
    ).all()
    if not holders:
        return []
    stamps = {
        r.entity_id: (r.updated_at or "", r.entity_id)
        for r in conn.execute(
            select(entities.c.entity_id, entities.c.updated_at).where(
                entities.c.entity_type == "customer",
                entities.c.entity_id.in_(sorted({h.entity_id for h in holders})),
                entities.c.deleted.is_(False),
            )
        )
    }
    newest: dict[str, str] = {}
    for h in holders:
        if h.entity_id in stamps and (
            h.target_id not in newest or stamps[h.entity_id] > stamps[newest[h.target_id]]
        ):
            newest[h.target_id] = h.entity_id
    again = sorted(set(newest.values()))
    _requeue_customers(conn, target, again, now)
    return again


def _requeue_customers(conn: Connection, target: str, cids: Sequence[str], now: float) -> None:
    """Clear the customers' last hashes in ``target`` and give each pipeline that selects them
    and has no open row there a pending upsert (an open row sends the newest state anyway).
    A fixed number of statements per chunk, however many customers: this runs inside the
    transaction that records a batch (up to an NP6 import's 50,000 rows)."""
    for at in range(0, len(cids), REQUEUE_CHUNK):
        chunk = list(cids[at : at + REQUEUE_CHUNK])
        conn.execute(
            update(id_map)
            .where(id_map.c.target == target, id_map.c.entity_id.in_(chunk))
            .values(last_hash=None)
        )
        d = deliveries
        delivered: dict[str, set[str]] = {}
        open_: set[tuple[str, str]] = set()
        for r in conn.execute(
            select(d.c.entity_id, d.c.pipeline, d.c.state)
            .where(
                d.c.subject_id.in_(chunk),  # = entity_id for customer rows (indexed)
                d.c.target == target,
                d.c.entity_type == "customer",
            )
            .distinct()
        ):
            delivered.setdefault(r.entity_id, set()).add(r.pipeline)
            if r.state in _OPEN:
                open_.add((r.entity_id, r.pipeline))
        selected = {
            r.entity_id: set((r.pipelines or "").split())
            for r in conn.execute(
                select(entities.c.entity_id, entities.c.pipelines).where(
                    and_(entities.c.entity_type == "customer", entities.c.entity_id.in_(chunk))
                )
            )
        }
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
            for cid in chunk
            for p in sorted(delivered.get(cid, set()) & selected.get(cid, set()))
            if (cid, p) not in open_
        ]
        if rows:
            conn.execute(insert(deliveries), rows)
