"""The erasure ledger and the scrub: what happened to each customer deleted in Contacthub.

* Ingest opens an erasure (``erasures``) with the customer's suppression row
  (:func:`open_erasures`, called by :func:`.ingest_ops.suppress`), in the page's transaction,
  next to the ``delete`` deliveries it queues for the customer.
* A ``delete`` delivery done (the target deleted, unsubscribed or removed the customer from its
  list, as the pipeline's ``on_delete`` says) is that target's acknowledgement
  (``erasure_acks``, written by :func:`acknowledge` inside the fenced part of
  :func:`.delivery_ops.record_outcomes`). It outlives the delivery row, which is pruned.
* An erasure is *pending* while one of the customer's ``delete`` deliveries is not done
  (pending, in flight, failed or dead); per target, the ledger says when it was acknowledged
  or why not yet (the delivery's state, attempts and last error).
* Once nothing is pending and no delivery of the customer is open any more,
  :func:`scrub_completed` removes the customer's personal data from the state: the payloads of
  the customer and its events in ``entities`` become ``{"id": ...}``, their ``inbox`` rows are
  deleted, the error texts of their ``deliveries`` rows and the texts of their ``delivery_log``
  lines (error, what was sent, the record it landed on) are cleared, and
  their ``id_map``, ``memberships`` and ``search_keys`` rows (which hold e-mail/phone
  identities) are deleted.
  What stays is the customer id (``suppression`` keeps it from ever coming back; it needs no
  other key) and this ledger. The daemon runs the scrub every minute, ``syncer sync --once`` at
  the end of its run, ``syncer db prune`` too.
* On SQLite the rows are not the whole story: a page rebuilt when rows move between pages keeps
  stale copies of them in its free area (``secure_delete`` only zeroes what a statement
  deletes). After a scrub the file is rewritten (:meth:`.Store.compact`) and the erasures it
  covered get ``compacted_at``: a scrub whose compaction did not happen is compacted by the next
  scrub of any process (:func:`.retention_ops.scrub`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)

from ..source.contacthub import id_prefix
from .schema import (
    deliveries,
    delivery_log,
    entities,
    erasure_acks,
    erasures,
    id_map,
    inbox,
    memberships,
    search_keys,
)
from .store import upsert

OPEN_STATES = ("pending", "in_flight", "failed")
NOT_DONE = (*OPEN_STATES, "dead")
# a delete that ended without the target's acknowledgement: gave up, or closed unsent by an
# operator (the console's Discard)
UNACKED = ("dead", "discarded")
SCRUB_BATCH = 1000  # customers per transaction (each batch costs a few scans of inbox/entities)


# -- writes ------------------------------------------------------------------------------------
def open_erasures(conn: Connection, ids: Iterable[str], reason: str, now: float) -> None:
    """An erasure request per customer in ``ids`` (a request already open stays as it is)."""
    rows = [{"entity_id": i, "reason": reason, "requested_at": now} for i in dict.fromkeys(ids)]
    upsert(conn, erasures, rows, ["entity_id"], update_cols=[])


def acknowledge(
    conn: Connection, target: str, acks: Sequence[tuple[str, str, int, str]], now: float
) -> None:
    """Record ``(customer, pipeline, delivery id, outcome)`` of ``delete`` deliveries of
    ``target`` that were done: the target acknowledged the erasure (the newest one counts)."""
    rows = {
        (subject, pipeline): {
            "entity_id": subject,
            "pipeline": pipeline,
            "target": target,
            "delivery_id": delivery_id,
            "outcome": outcome,
            "acked_at": now,
        }
        for subject, pipeline, delivery_id, outcome in acks
    }
    upsert(conn, erasure_acks, list(rows.values()), ["entity_id", "pipeline", "target"])


# -- the ledger --------------------------------------------------------------------------------
@dataclass
class TargetAck:
    """One target's (pipeline's) part of an erasure."""

    pipeline: str
    target: str
    state: str  # done (acknowledged), or the delete delivery's: pending, in_flight, failed, dead
    acked_at: float | None = None
    outcome: str | None = None  # what the target said: deleted, left, unchanged...
    attempts: int = 0
    updated_at: float | None = None
    last_error: str | None = None


@dataclass
class ErasureRecord:
    entity_id: str
    reason: str
    requested_at: float
    scrubbed_at: float | None
    targets: list[TargetAck] = field(default_factory=list)
    # SQLite: when the file was rewritten after the scrub (no stale copy left on disk)
    compacted_at: float | None = None

    @property
    def pending(self) -> bool:
        """A target has still to acknowledge, by the engine or an operator's retry (a
        discarded delete will not be sent: it is not pending, and no acknowledgement)."""
        return any(t.state not in ("done", "discarded") for t in self.targets)

    @property
    def discarded(self) -> bool:
        return any(t.state == "discarded" for t in self.targets)

    @property
    def acknowledged_at(self) -> float | None:
        """When the last target acknowledged (None while pending; the request time when no
        target had to be told)."""
        if self.pending or self.discarded:
            return None
        return max((t.acked_at or t.updated_at or 0.0 for t in self.targets), default=None) or (
            self.requested_at
        )

    @property
    def state(self) -> str:
        """``pending``, ``dead`` (a target gave up: an operator must act), ``discarded`` (an
        operator closed a target's delete unsent: never acknowledged, never scrubbed),
        ``acknowledged`` (every target did, the scrub has not run yet) or ``scrubbed``."""
        if any(t.state == "dead" for t in self.targets):
            return "dead"
        if self.pending:
            return "pending"
        if self.discarded:
            return "discarded"
        return "scrubbed" if self.scrubbed_at is not None else "acknowledged"


def _not_done_delete(subject: Any) -> Any:
    d = deliveries
    return exists().where(
        d.c.subject_id == subject, d.c.action == "delete", d.c.state.in_(NOT_DONE)
    )


def of_source(column: ColumnElement[str], source: str) -> ColumnElement[bool]:
    """Erasures of ``source``'s customers: ids are ``<source>:<id>`` except in ``default``
    (as ``dlq_ops.of_source``, which cannot be imported here: delivery_ops imports this)."""
    prefix = id_prefix(source)
    if not prefix:
        return ~column.contains(":", autoescape=True)
    return column.startswith(prefix, autoescape=True)


def pending_summary(conn: Connection, source: str | None = None) -> tuple[int, float | None]:
    """How many erasures (of ``source`` when given) are pending and the request time of the
    oldest. (Only unscrubbed erasures can be pending: the index on ``scrubbed_at`` keeps this
    cheap.)"""
    e = erasures
    query = select(func.count(), func.min(e.c.requested_at)).where(
        e.c.scrubbed_at.is_(None), _not_done_delete(e.c.entity_id)
    )
    if source is not None:
        query = query.where(of_source(e.c.entity_id, source))
    row = conn.execute(query).one()
    return int(row[0]), row[1]


def ledger(
    conn: Connection,
    *,
    pending_only: bool = False,
    before: float | None = None,
    limit: int = 1000,
    ids: Sequence[str] | None = None,
    source: str | None = None,
) -> list[ErasureRecord]:
    """Erasures newest first (``before``: requested before that time; ``source``: of that
    source's customers), each with its targets."""
    e = erasures
    query = select(e).order_by(e.c.requested_at.desc(), e.c.entity_id).limit(limit)
    if pending_only:
        query = query.where(e.c.scrubbed_at.is_(None), _not_done_delete(e.c.entity_id))
    if before is not None:
        query = query.where(e.c.requested_at < before)
    if ids is not None:
        query = query.where(e.c.entity_id.in_(sorted(ids)))
    if source is not None:
        query = query.where(of_source(e.c.entity_id, source))
    records = {
        r.entity_id: ErasureRecord(
            r.entity_id, r.reason, r.requested_at, r.scrubbed_at, compacted_at=r.compacted_at
        )
        for r in conn.execute(query)
    }
    if not records:
        return []
    subjects = sorted(records)
    acks = {
        (a.entity_id, a.pipeline, a.target): a
        for a in conn.execute(select(erasure_acks).where(erasure_acks.c.entity_id.in_(subjects)))
    }
    d = deliveries
    rows = conn.execute(
        select(d).where(d.c.subject_id.in_(subjects), d.c.action == "delete").order_by(d.c.id)
    )
    # per (customer, pipeline, target): the newest delete delivery not done, else the newest
    newest: dict[tuple[str, str, str], Row[Any]] = {}
    waiting: dict[tuple[str, str, str], Row[Any]] = {}
    for r in rows:
        key = (r.subject_id, r.pipeline, r.target)
        newest[key] = r
        if r.state != "done":
            waiting[key] = r
    for key in sorted(set(newest) | set(acks)):
        subject, pipeline, target = key
        row = waiting.get(key)
        ack = acks.get(key)
        if row is not None:
            entry = TargetAck(
                pipeline,
                target,
                row.state,
                attempts=int(row.attempts),
                updated_at=row.updated_at,
                last_error=row.last_error,
            )
        elif ack is not None:
            entry = TargetAck(pipeline, target, "done", ack.acked_at, ack.outcome)
        else:  # done before the ledger existed and not backfilled: the row is the receipt
            done = newest[key]
            entry = TargetAck(
                pipeline,
                target,
                "done",
                done.updated_at,
                "done",
                attempts=int(done.attempts),
            )
        records[subject].targets.append(entry)
    return list(records.values())


# -- the scrub ---------------------------------------------------------------------------------
def completed_unscrubbed(conn: Connection, limit: int | None = None) -> list[str]:
    """Erasures every target acknowledged whose customer has no open delivery left (nothing
    will read its documents again) and that are not scrubbed yet."""
    e, d = erasures, deliveries
    # a dead or discarded delete is no acknowledgement: the target may still hold the customer
    busy = exists().where(
        d.c.subject_id == e.c.entity_id,
        (d.c.state.in_(OPEN_STATES)) | and_(d.c.state.in_(UNACKED), d.c.action == "delete"),
    )
    query = (
        select(e.c.entity_id)
        .where(e.c.scrubbed_at.is_(None), ~busy)
        .order_by(e.c.requested_at)
        .limit(SCRUB_BATCH if limit is None else limit)
    )
    return list(conn.execute(query).scalars())


def scrub(conn: Connection, ids: Sequence[str], now: float) -> None:
    """Remove the personal data of the customers ``ids`` (and their events) from the state;
    keep their ids. See the module docstring."""
    ids = sorted(set(ids))
    if not ids:
        return
    en = entities
    events = list(
        conn.execute(
            select(en.c.entity_id).where(en.c.entity_type == "event", en.c.customer_id.in_(ids))
        ).scalars()
    )
    _blank(conn, "customer", ids)
    _blank(conn, "event", events)
    for kind, which in (("customer", ids), ("event", events)):
        for chunk in _chunks(which):
            conn.execute(
                delete(inbox).where(inbox.c.entity_type == kind, inbox.c.entity_id.in_(chunk))
            )
    for chunk in _chunks([*ids, *events]):
        conn.execute(
            update(delivery_log)
            .where(
                delivery_log.c.entity_id.in_(chunk),
                or_(
                    delivery_log.c.detail.is_not(None),
                    delivery_log.c.sent.is_not(None),
                    delivery_log.c.target_id.is_not(None),
                ),
            )
            .values(detail=None, sent=None, target_id=None)
        )
    conn.execute(
        update(deliveries)
        .where(deliveries.c.subject_id.in_(ids), deliveries.c.last_error.is_not(None))
        .values(last_error=None)
    )
    # identities used in the targets (e-mail, phone): the customer is suppressed for good,
    # so nothing will be sent for it again that would need them
    conn.execute(delete(id_map).where(id_map.c.entity_id.in_(ids)))
    conn.execute(delete(memberships).where(memberships.c.entity_id.in_(ids)))
    conn.execute(delete(search_keys).where(search_keys.c.entity_id.in_(ids)))  # its e-mails...
    conn.execute(update(erasures).where(erasures.c.entity_id.in_(ids)).values(scrubbed_at=now))


def ids_only(entity_id: str) -> str:
    """The document kept for a forgotten customer or one of its events: its id alone."""
    return orjson.dumps({"id": entity_id}).decode()


def _blank(conn: Connection, kind: str, ids: Sequence[str]) -> None:
    """Replace the stored documents by their id alone (the rows stay: the customer's version
    and deleted flag, an event's id that ingest dedupes on)."""
    en = entities
    for chunk in _chunks(ids):
        conn.execute(
            update(en)
            .where(en.c.entity_type == kind, en.c.entity_id == bindparam("b_id"))
            .values(payload=bindparam("b_doc"), pipelines=None),
            [{"b_id": i, "b_doc": ids_only(i)} for i in chunk],
        )


def _chunks(ids: Sequence[str], size: int = SCRUB_BATCH) -> list[list[str]]:
    """Slices of ``ids`` small enough for one statement's parameters (each slice of a
    statement without an index on the column is one scan of the table)."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def scrubbed_uncompacted(conn: Connection) -> list[str]:
    """Erasures scrubbed whose bytes may still be in the SQLite file (not compacted since)."""
    e = erasures
    query = select(e.c.entity_id).where(e.c.compacted_at.is_(None), e.c.scrubbed_at.is_not(None))
    return list(conn.execute(query).scalars())


def mark_compacted(conn: Connection, ids: Sequence[str], now: float) -> None:
    """The file was rewritten after the scrub of ``ids``."""
    for chunk in _chunks(ids):
        conn.execute(
            update(erasures).where(erasures.c.entity_id.in_(chunk)).values(compacted_at=now)
        )


def scrub_completed(conn: Connection, now: float, limit: int | None = None) -> list[str]:
    """Scrub up to ``limit`` completed erasures (:func:`completed_unscrubbed`); their ids."""
    ids = completed_unscrubbed(conn, limit)
    scrub(conn, ids, now)
    return ids
