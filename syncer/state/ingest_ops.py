"""Ingest's database operations (SQLAlchemy Core), run inside :meth:`Store.transaction`.

Everything here is batch-shaped: lookups take the ids of a whole page (one list parameter)
and writes are ``executemany``. No ORM objects, no per-row
round trips. The same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, select, update

from ..errors import StateError
from . import erasure_ops
from .schema import backfill_slices, checkpoints
from .store import upsert

OPEN_STATES = ("pending", "failed")

# Column orders of the tuples the hot-path writers take.
INBOX_COLUMNS = (
    "stream",
    "page_offset",
    "position",
    "origin",
    "entity_type",
    "entity_id",
    "operation",
    "payload",
    "received_at",
)
ENTITY_COLUMNS = (
    "entity_type",
    "entity_id",
    "customer_id",
    "payload",
    "version",
    "updated_at",
    "deleted",
    "pipelines",
)
DELIVERY_COLUMNS = (
    "pipeline",
    "target",
    "entity_type",
    "entity_id",
    "action",
    "state",
    "attempts",
    "due_at",
    "created_at",
    "updated_at",
    "subject_id",
)

# The per-page statements below are driver SQL on purpose: SQLAlchemy's per-row parameter
# processing and expanding IN lists cost more than the database work on 4,000-row pages. The
# SQL is the common subset of SQLite (>= 3.24) and PostgreSQL (ON CONFLICT, excluded.*); only
# placeholders and "id in a list" differ, see _sql() and _in_list().


def _sql(conn: Connection, text: str) -> str:
    return text if conn.dialect.paramstyle == "qmark" else text.replace("?", "%s")


def _in_list(conn: Connection, ids: Collection[str]) -> tuple[str, Any]:
    """``(sql, parameter)`` testing a column against all ``ids`` with one parameter."""
    if conn.dialect.name == "postgresql":
        return "= ANY(?)", list(ids)
    return "IN (SELECT value FROM json_each(?))", orjson.dumps(list(ids)).decode()


def _select_in(
    conn: Connection, sql: str, ids: Collection[str], *params: Any
) -> list[tuple[Any, ...]]:
    """Run ``sql`` (ending in a column to test) with ``params`` then the id list."""
    if not ids:
        return []
    test, arg = _in_list(conn, ids)
    result = conn.exec_driver_sql(_sql(conn, f"{sql} {test}"), (*params, arg))
    return [tuple(r) for r in result]


def _many(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        conn.exec_driver_sql(_sql(conn, sql), list(rows))


def _insert_sql(table: str, columns: Sequence[str], conflict: str = "") -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) {conflict}".strip()


# -- checkpoint ----------------------------------------------------------------------------
def read_offset(conn: Connection, stream: str) -> int:
    value = conn.execute(
        select(checkpoints.c.offset).where(checkpoints.c.stream == stream)
    ).scalar_one_or_none()
    return int(value or 0)


def advance_offset(conn: Connection, stream: str, old: int, new: int) -> bool:
    """Compare-and-set ``offset`` from ``old`` to ``new``; False when it was not ``old``.

    Run first in the page's transaction: on PostgreSQL the row lock it takes serialises two
    writers of the same stream, and the loser sees 0 rows and rolls back.
    """
    if new <= old:
        raise StateError(f"refusing to move the offset of {stream} from {old} to {new}")
    result = conn.execute(
        update(checkpoints)
        .where(checkpoints.c.stream == stream, checkpoints.c.offset == old)
        .values(offset=new, updated_at=time.time())
    )
    return result.rowcount == 1


# -- batch lookups -------------------------------------------------------------------------
def entity_versions(
    conn: Connection, entity_type: str, ids: Collection[str]
) -> dict[str, tuple[int, str]]:
    """``id -> (version, updatedAt)`` of the stored entities among ``ids``."""
    rows = _select_in(
        conn,
        "SELECT entity_id, version, updated_at FROM entities WHERE entity_type = ? AND entity_id",
        ids,
        entity_type,
    )
    return {r[0]: (int(r[1]), r[2]) for r in rows}


def entity_payloads(conn: Connection, entity_type: str, ids: Collection[str]) -> dict[str, str]:
    """``id -> payload`` (JSON text) of the stored, not deleted, entities among ``ids``."""
    rows = _select_in(
        conn,
        "SELECT entity_id, payload FROM entities WHERE entity_type = ? AND deleted = ? "
        "AND entity_id",
        ids,
        entity_type,
        False,
    )
    return {r[0]: r[1] for r in rows}


def suppressed(conn: Connection, ids: Collection[str]) -> set[str]:
    rows = _select_in(conn, "SELECT entity_id FROM suppression WHERE entity_id", ids)
    return {r[0] for r in rows}


def customer_states(
    conn: Connection, ids: Collection[str]
) -> dict[str, tuple[tuple[int, str], frozenset[str]]]:
    """``id -> ((version, updatedAt), pipelines selecting it)`` of the stored customers among
    ``ids``. (The selection lives in the customer's row: reading and writing it costs no
    extra rows, where a table of (pipeline, customer) pairs cost three B-tree inserts per
    new customer.)"""
    rows = _select_in(
        conn,
        "SELECT entity_id, version, updated_at, pipelines FROM entities "
        "WHERE entity_type = ? AND entity_id",
        ids,
        "customer",
    )
    return {r[0]: ((int(r[1]), r[2]), frozenset((r[3] or "").split())) for r in rows}


def open_customer_deliveries(conn: Connection, ids: Collection[str]) -> dict[tuple[str, str], int]:
    """``(pipeline, customer id) -> delivery id`` of open (pending/failed) customer rows.

    ``in_flight`` rows are left out on purpose: a worker owns them, so a change adds a new row.
    On PostgreSQL the rows are locked (in id order, as the claim locks them) until the page
    commits: a worker cannot claim a row ingest is about to rewrite, and a row a worker claimed
    meanwhile is re-read as in flight and gets a new row instead of a rewrite that matches
    nothing (READ COMMITTED re-checks a locked row's state). SQLite serialises writers anyway.
    """
    lock = " ORDER BY id FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    if not ids:
        return {}
    test, arg = _in_list(conn, ids)
    sql = (
        "SELECT pipeline, entity_id, id FROM deliveries WHERE entity_type = ? "
        f"AND state IN (?, ?) AND subject_id {test}{lock}"
    )
    rows = conn.exec_driver_sql(_sql(conn, sql), ("customer", *OPEN_STATES, arg))
    out: dict[tuple[str, str], int] = {}
    for pipeline, entity_id, row_id in rows:
        key = (pipeline, entity_id)
        out[key] = max(out.get(key, 0), int(row_id))
    return out


def targets_holding(
    conn: Connection, targets: Collection[str], ids: Collection[str]
) -> dict[str, dict[str, set[str]]]:
    """``customer id -> target -> pipelines holding memberships there`` for the targets syncer
    wrote the customer to, as the state remembers it: an ``id_map`` row (also one noted
    before a create whose answer never came), a membership, or a row of the customer in
    flight there now (its write may land after the delete); the pipelines are empty when
    none holds a membership (after a leave, or for event pipelines). Asked only for customers
    deleted in a page (rare), by primary-key prefix per target."""
    held: dict[str, dict[str, set[str]]] = {}
    if not ids:
        return held
    wanted = set(targets)
    flying = _select_in(
        conn,
        "SELECT DISTINCT subject_id, target FROM deliveries WHERE state = ? AND subject_id",
        ids,
        "in_flight",
    )
    for cid, target in flying:
        if target in wanted:
            held.setdefault(cid, {}).setdefault(target, set())
    for target in sorted(wanted):
        sql = "SELECT DISTINCT entity_id FROM id_map WHERE target = ? AND entity_id"
        for (cid,) in _select_in(conn, sql, ids, target):
            held.setdefault(cid, {}).setdefault(target, set())
        sql = "SELECT DISTINCT entity_id, pipeline FROM memberships WHERE target = ? AND entity_id"
        for cid, pipeline in _select_in(conn, sql, ids, target):
            held.setdefault(cid, {}).setdefault(target, set()).add(pipeline)
    return held


# -- writes ---------------------------------------------------------------------------------
def insert_inbox(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows in :data:`INBOX_COLUMNS` order."""
    _many(conn, _insert_sql("inbox", INBOX_COLUMNS), rows)


_NEWER = (
    "ON CONFLICT (entity_type, entity_id) DO UPDATE SET customer_id = excluded.customer_id, "
    "payload = excluded.payload, version = excluded.version, "
    "updated_at = excluded.updated_at, deleted = excluded.deleted, pipelines = excluded.pipelines "
    "WHERE entities.version < excluded.version OR (entities.version = excluded.version "
    "AND entities.updated_at < excluded.updated_at)"
)


def upsert_newer_entities(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert entities (:data:`ENTITY_COLUMNS` order) or replace stored ones that are older
    (by ``version``, then ``updatedAt``); a stored newer version wins, whoever wrote it."""
    _many(conn, _insert_sql("entities", ENTITY_COLUMNS, _NEWER), rows)


def insert_entities_if_absent(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    conflict = "ON CONFLICT (entity_type, entity_id) DO NOTHING"
    _many(conn, _insert_sql("entities", ENTITY_COLUMNS, conflict), rows)


def mark_deleted(conn: Connection, entity_type: str, ids: Iterable[str]) -> None:
    sql = "UPDATE entities SET deleted = ? WHERE entity_type = ? AND entity_id = ?"
    _many(conn, sql, [(True, entity_type, i) for i in ids])


def set_pipelines(conn: Connection, rows: Sequence[tuple[str, str]]) -> None:
    """Rewrite the selection ``(pipelines, customer id)`` of stored customers."""
    sql = "UPDATE entities SET pipelines = ? WHERE entity_type = 'customer' AND entity_id = ?"
    _many(conn, sql, rows)


def suppress(conn: Connection, ids: Iterable[str], reason: str, now: float) -> None:
    """Suppress ``ids`` for good and open their erasure requests (the erasure ledger)."""
    ids = list(ids)
    conflict = "ON CONFLICT (entity_id) DO NOTHING"
    sql = _insert_sql("suppression", ("entity_id", "reason", "suppressed_at"), conflict)
    _many(conn, sql, [(i, reason, now) for i in ids])
    if ids:
        erasure_ops.open_erasures(conn, ids, reason, now)


def insert_deliveries(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows in :data:`DELIVERY_COLUMNS` order."""
    _many(conn, _insert_sql("deliveries", DELIVERY_COLUMNS), rows)


def reopen_deliveries(conn: Connection, changes: Sequence[tuple[int, str]], now: float) -> None:
    """Coalesce: rewrite open rows ``(id, action)`` to the newest action, due now."""
    sql = (
        "UPDATE deliveries SET action = ?, state = 'pending', attempts = 0, due_at = ?, "
        "updated_at = ?, last_error = NULL WHERE id = ? AND state IN ('pending', 'failed')"
    )
    _many(conn, sql, [(action, now, now, row_id) for row_id, action in changes])


def cancel_deliveries(conn: Connection, ids: Iterable[int]) -> None:
    """Drop open rows that must not be sent any more (a deleted customer, on_delete: ignore)."""
    sql = "DELETE FROM deliveries WHERE id = ? AND state IN ('pending', 'failed')"
    _many(conn, sql, [(i,) for i in ids])


# -- backfill slices -------------------------------------------------------------------------
def slices_todo(conn: Connection, stream: str, entity_type: str) -> list[tuple[str, str]]:
    """Open slices ``(lo, hi)`` in ascending ``lo`` order."""
    c = backfill_slices.c
    rows = conn.execute(
        select(c.lo, c.hi)
        .where(c.stream == stream, c.entity_type == entity_type, c.state == "todo")
        .order_by(c.lo)
    )
    return [(r[0], r[1]) for r in rows]


def put_slices(
    conn: Connection, stream: str, entity_type: str, spans: Iterable[tuple[str, str]]
) -> None:
    rows = [
        {
            "stream": stream,
            "entity_type": entity_type,
            "lo": lo,
            "hi": hi,
            "state": "todo",
            "count": 0,
        }
        for lo, hi in spans
    ]
    upsert(conn, backfill_slices, rows, ["stream", "entity_type", "lo"], ["hi", "state"])


def update_slice(
    conn: Connection,
    stream: str,
    entity_type: str,
    lo: str,
    *,
    new_lo: str,
    new_hi: str,
    finished: bool,
    fed: int,
) -> None:
    """Record a slice's progress: its remaining span, or that it is done; ``fed`` documents
    more were taken from it."""
    c = backfill_slices.c
    where = (c.stream == stream, c.entity_type == entity_type, c.lo == lo)
    values: dict[str, Any] = {"count": c.count + fed}
    if finished:
        values["state"] = "done"
    else:
        values.update(lo=new_lo, hi=new_hi)
    conn.execute(update(backfill_slices).where(*where).values(**values))


def slice_states(conn: Connection, stream: str, entity_type: str) -> tuple[int, int]:
    """``(open, done)`` slice counts."""
    c = backfill_slices.c
    rows = conn.execute(
        select(c.state, func.count())
        .where(c.stream == stream, c.entity_type == entity_type)
        .group_by(c.state)
    )
    counts = {r[0]: int(r[1]) for r in rows}
    return counts.get("todo", 0), counts.get("done", 0)


def clear_slices(conn: Connection, stream: str) -> None:
    conn.execute(delete(backfill_slices).where(backfill_slices.c.stream == stream))


def set_backfill(conn: Connection, stream: str, state: str | None, offset: int | None) -> None:
    conn.execute(
        update(checkpoints)
        .where(checkpoints.c.stream == stream)
        .values(backfill_state=state, backfill_offset=offset, updated_at=time.time())
    )


# -- status ---------------------------------------------------------------------------------
def deliveries_by_state(conn: Connection) -> dict[str, dict[str, int]]:
    """``pipeline -> state -> count``."""
    rows = conn.exec_driver_sql(
        "SELECT pipeline, state, COUNT(*) FROM deliveries GROUP BY pipeline, state"
    )
    out: dict[str, dict[str, int]] = {}
    for pipeline, state, count in rows:
        out.setdefault(pipeline, {})[state] = int(count)
    return out


def dead_letters(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest dead deliveries with their reason."""
    rows = conn.exec_driver_sql(
        _sql(
            conn,
            "SELECT id, pipeline, target, entity_type, entity_id, action, attempts, updated_at, "
            "last_error FROM deliveries WHERE state = 'dead' ORDER BY updated_at DESC LIMIT ?",
        ),
        (limit,),
    ).mappings()
    return [dict(r) for r in rows]


def count_dead(conn: Connection) -> int:
    return int(
        conn.exec_driver_sql("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'").scalar_one()
    )
