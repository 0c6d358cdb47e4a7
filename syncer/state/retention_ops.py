"""Retention: what the state database forgets, and when (``retention`` in the config).

* ``done`` deliveries older than ``done_deliveries_days`` (by when they were done). Never an
  open or dead row, and never a done row that supersedes an older dead row of the same
  customer, pipeline and target (``dlq retry`` must still see that a newer row exists).
* ``inbox`` rows received more than ``inbox_days`` ago. Nothing reads the inbox to deliver:
  deliveries read ``entities``.
* ``delivery_log`` rows older than ``delivery_log_days`` (on top of its row bound).
* Completed erasures are scrubbed (:func:`.erasure_ops.scrub_completed`), and the SQLite file
  rewritten after them (:func:`compact_scrubbed`).

``0`` days keeps rows of that kind forever. Rows go in chunks of :data:`CHUNK`, one transaction
each, so on SQLite ingest and delivery wait at most one chunk for the write lock.
``entities``, ``id_map``, ``memberships``, ``suppression`` and the erasure ledger are never
pruned by age: open rows need them, and suppression is forever.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, exists, select

from . import erasure_ops, search_ops
from .schema import deliveries, delivery_log, inbox
from .store import Store

CHUNK = 5000
DAY = 86400.0


@dataclass
class PruneResult:
    scrubbed: int = 0
    done_deliveries: int = 0
    inbox: int = 0
    delivery_log: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def prune_done_deliveries(conn: Connection, target: str, cutoff: float, limit: int) -> int:
    """Delete up to ``limit`` done rows of ``target`` done before ``cutoff``."""
    d = deliveries
    older = deliveries.alias("older")
    supersedes_dead = exists().where(
        older.c.subject_id == d.c.subject_id,
        older.c.pipeline == d.c.pipeline,
        older.c.target == d.c.target,
        older.c.state == "dead",
        older.c.id < d.c.id,
    )
    # due_at <= updated_at for a done row: the range on due_at uses ix_deliveries_claim
    ids = list(
        conn.execute(
            select(d.c.id)
            .where(
                d.c.target == target,
                d.c.state == "done",
                d.c.due_at < cutoff,
                d.c.updated_at < cutoff,
                ~supersedes_dead,
            )
            .limit(limit)
        ).scalars()
    )
    if ids:
        conn.execute(delete(d).where(d.c.id.in_(ids), d.c.state == "done"))
    return len(ids)


def prune_oldest(conn: Connection, table: Table, at: Any, cutoff: float, limit: int) -> int:
    """Delete up to ``limit`` of the oldest rows of ``table`` (by id) whose time ``at`` is
    before ``cutoff``, stopping at the first newer one: ids grow with time in the inbox and the
    log, so this reads only the rows it deletes (no index on the time needed)."""
    rows = conn.execute(select(table.c.id, at).order_by(table.c.id).limit(limit)).all()
    ids = []
    for row_id, when in rows:
        if when >= cutoff:
            break
        ids.append(row_id)
    if ids:
        conn.execute(delete(table).where(table.c.id.in_(ids)))
    return len(ids)


def _cutoff(days: float, now: float) -> float | None:
    return None if days <= 0 else now - days * DAY


def prune(
    store: Store,
    *,
    done_deliveries_days: float,
    inbox_days: float,
    delivery_log_days: float,
    now: float | None = None,
    chunk: int = CHUNK,
) -> PruneResult:
    """Scrub completed erasures, apply the retention settings (module docstring), then
    compact the file if a scrub waits for it."""
    now = time.time() if now is None else now
    result = PruneResult()
    result.scrubbed = scrub(store, now, compact=False)
    cutoff = _cutoff(done_deliveries_days, now)
    if cutoff is not None:
        with store.reader() as conn:
            targets = list(conn.execute(select(deliveries.c.target).distinct()).scalars())
        for target in targets:
            while True:
                with store.transaction() as conn:
                    n = prune_done_deliveries(conn, target, cutoff, chunk)
                result.done_deliveries += n
                if n < chunk:
                    break
    search_ops.catch_up(store)  # the console's search keys of every inbox row to prune
    for table, at, days, name in (
        (inbox, inbox.c.received_at, inbox_days, "inbox"),
        (delivery_log, delivery_log.c.at, delivery_log_days, "delivery_log"),
    ):
        cutoff = _cutoff(days, now)
        if cutoff is None:
            continue
        while True:
            with store.transaction() as conn:
                n = prune_oldest(conn, table, at, cutoff, chunk)
            setattr(result, name, getattr(result, name) + n)
            if n < chunk:
                break
    compact_scrubbed(store, now)
    return result


def scrub(
    store: Store,
    now: float | None = None,
    max_batches: int | None = None,
    compact: bool = True,
) -> int:
    """Scrub completed erasures (:func:`.erasure_ops.scrub_completed`), a batch per
    transaction: all of them, or ``max_batches`` batches (the daemon's job, which must end
    in time however many a first run after an upgrade finds); how many were scrubbed. Then,
    with ``compact``, rewrite the file if any scrub (this one or an earlier one, of any
    process) has not been compacted yet (:func:`compact_scrubbed`)."""
    now = time.time() if now is None else now
    total = batches = 0
    while max_batches is None or batches < max_batches:
        with store.transaction() as conn:
            ids = erasure_ops.scrub_completed(conn, now)
        total += len(ids)
        batches += 1
        if len(ids) < erasure_ops.SCRUB_BATCH:
            break
    if compact:
        compact_scrubbed(store, now)
    return total


def compact_scrubbed(store: Store, now: float | None = None) -> int | None:
    """Rewrite the file (:meth:`.Store.compact`) when scrubbed erasures wait for it, and mark
    them compacted; how many it covered (0: none waited), None when the database was busy
    (they wait for the next try)."""
    with store.reader() as conn:
        waiting = erasure_ops.scrubbed_uncompacted(conn)
    if not waiting:
        return 0
    if not store.compact():
        return None
    with store.transaction() as conn:
        erasure_ops.mark_compacted(conn, waiting, time.time() if now is None else now)
    return len(waiting)
