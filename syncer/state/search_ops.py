"""The console's customer search keys, kept behind the stream instead of in ingest's way.

A customer is found by its Contacthub id (the primary key of ``entities``), e-mail (any case),
mobile or fixed phone, or ``externalId``. Expression indexes on ``entities.payload`` made every
ingest write parse the document once per index and update four indexes (20 % of ingest, see
docs/performance.md); instead :func:`catch_up` reads the inbox after its cursor
(``search_cursor``) and writes one ``search_keys`` row per key of every version it finds. The
daemon runs it every :data:`INTERVAL` seconds (its ``search`` job), ``sync --once`` at the end
of its run, and retention before it prunes the inbox (so no row is pruned unread).

The search (:func:`find`) never waits for it: it also scans the inbox rows after the cursor,
so a customer ingested a second ago is found too. A key of an earlier version stays (the
customer is still found by the e-mail it had); a forgotten customer's keys go with its scrub
(:func:`.erasure_ops.scrub`), and no key is written for a suppressed customer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from .schema import inbox, search_cursor, search_keys, suppression
from .store import Store

CURSOR = "customers"
BATCH = 5000  # inbox rows per transaction
INTERVAL = 15.0  # seconds between the daemon's runs

# key kind -> JSON path in a customer document
PATHS: dict[str, tuple[str, ...]] = {
    "email": ("base", "contacts", "email"),
    "mobilePhone": ("base", "contacts", "mobilePhone"),
    "phone": ("base", "contacts", "phone"),
    "externalId": ("externalId",),
}


def _at(doc: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(step)
    return doc


def normal(kind: str, value: str) -> str:
    """The form a key is stored and searched in (e-mails in lower case)."""
    return value.lower() if kind == "email" else value


def keys_of(doc: Any) -> set[str]:
    """The search keys of one customer document (text values only)."""
    out = set()
    for kind, path in PATHS.items():
        value = _at(doc, path)
        if isinstance(value, str) and value:
            out.add(f"{kind}:{normal(kind, value)}")
    return out


def keys_of_payload(payload: str) -> set[str]:
    """:func:`keys_of` a stored document's JSON text (none when it is not JSON)."""
    try:
        return keys_of(orjson.loads(payload))
    except orjson.JSONDecodeError:
        return set()


def cursor(conn: Connection) -> int:
    """The last inbox id read into ``search_keys``."""
    c = search_cursor.c
    value = conn.execute(select(c.inbox_id).where(c.name == CURSOR)).scalar()
    return int(value or 0)


def add_keys(conn: Connection, pairs: Iterable[tuple[str, str]]) -> None:
    """Insert ``(key, entity_id)`` pairs, skipping those already there and suppressed
    customers' (read in this statement's transaction: suppression precedes any scrub)."""
    pairs = sorted(set(pairs))
    if not pairs:
        return
    ids = sorted({e for _, e in pairs})
    gone = set(
        conn.execute(
            select(suppression.c.entity_id).where(suppression.c.entity_id.in_(ids))
        ).scalars()
    )
    rows = [{"key": k, "entity_id": e} for k, e in pairs if e not in gone]
    if not rows:
        return
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(search_keys).on_conflict_do_nothing()
    conn.execute(stmt, rows)


def _move_cursor(conn: Connection, to: int) -> None:
    """Forward only (a slower process running at once must not move it back); migration
    0011 writes the row."""
    c = search_cursor.c
    conn.execute(update(search_cursor).where(c.name == CURSOR, c.inbox_id < to).values(inbox_id=to))


def catch_up(store: Store, max_batches: int | None = None) -> int:
    """Read the inbox after the cursor into ``search_keys``, a batch per transaction; how many
    inbox rows it read. Idempotent: two processes running it at once write the same keys."""
    total = batches = 0
    while max_batches is None or batches < max_batches:
        with store.transaction() as conn:
            after = cursor(conn)
            rows = conn.execute(
                select(inbox.c.id, inbox.c.entity_type, inbox.c.entity_id, inbox.c.payload)
                .where(inbox.c.id > after)
                .order_by(inbox.c.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return total
            pairs = [
                (key, r.entity_id)
                for r in rows
                if r.entity_type == "customer"
                for key in keys_of_payload(r.payload)
            ]
            add_keys(conn, pairs)
            _move_cursor(conn, int(rows[-1].id))
        total += len(rows)
        batches += 1
        if len(rows) < BATCH:
            break
    return total


def _json_text(conn: Connection, path: tuple[str, ...]) -> Any:
    """``inbox.payload`` at ``path`` as text, in each database's own JSON operator."""
    if conn.dialect.name == "postgresql":
        literal = "'{" + ",".join(path) + "}'"
        return inbox.c.payload.cast(JSONB).op("#>>")(literal_column(literal))
    return func.json_extract(inbox.c.payload, literal_column("'$." + ".".join(path) + "'"))


def find(conn: Connection, kind: str, value: str, limit: int) -> list[str]:
    """Customers with the key ``kind``/``value`` in any version: from ``search_keys``, then
    the inbox rows :func:`catch_up` has not read yet. Oldest match first, at most ``limit``."""
    wanted = normal(kind, value)
    found = list(
        conn.execute(
            select(search_keys.c.entity_id)
            .where(search_keys.c.key == f"{kind}:{wanted}")
            .limit(limit)
        ).scalars()
    )
    if len(found) >= limit:
        return found
    query = select(inbox.c.entity_id, inbox.c.payload).where(
        inbox.c.id > cursor(conn), inbox.c.entity_type == "customer"
    )
    if wanted.isascii():  # SQLite's lower() folds ASCII only: other values are read whole
        column = _json_text(conn, PATHS[kind])
        query = query.where((func.lower(column) if kind == "email" else column) == wanted)
    for entity_id, payload in conn.execute(query.order_by(inbox.c.id)):
        # the SQL filter narrows; the keys decide
        if entity_id not in found and f"{kind}:{wanted}" in keys_of_payload(payload):
            found.append(entity_id)
            if len(found) >= limit:
                break
    return found
