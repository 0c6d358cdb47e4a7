"""Delivery operations on the state store: claim, read what mapping needs, record outcomes, DLQ.

Every function takes an open :class:`~sqlalchemy.Connection` (from
:meth:`syncer.state.store.Store.transaction`), so the caller decides what shares a transaction:
the engine claims a batch in one transaction and records the whole batch's outcomes, id map,
memberships and log lines in another (:func:`record_outcomes`). The dead-letter store and the
read-only views (``plan``, counts) are in :mod:`.dlq_ops`.

Claiming: due rows (``pending``/``failed`` with ``due_at <= now``, or ``in_flight`` whose claim
expired) of one target, oldest first, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite takes its
write lock at ``BEGIN IMMEDIATE``). A row is skipped while another row of the same customer and
target is in flight under a live claim, so one customer's changes never race each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import exists

from ..targets.base import Known
from . import erasure_ops
from .conflicts import requeue_holders_of_erased, requeue_newer_rivals
from .schema import claims, deliveries, delivery_log, entities, id_map, memberships, target_jobs
from .store import upsert

OPEN_STATES = ("pending", "failed")
# Every state a row can be in. ``discarded``: a dead letter an operator closed without sending
# (the console's Discard); like ``done`` and ``dead`` it is never claimed, coalesced into,
# retried by ``dlq retry`` or counted as a dead letter, and the row stays for the history.
DISCARDED = "discarded"
STATES = ("pending", "in_flight", "failed", "done", "dead", DISCARDED)
LOG_KEEP = 100_000  # delivery_log rows kept (bounded history)


@dataclass(frozen=True)
class ClaimedRow:
    """One claimed delivery."""

    id: int
    pipeline: str
    target: str
    entity_type: str
    entity_id: str
    action: str
    attempts: int  # attempts spent before this claim
    taken_over: bool  # the previous claim expired without an outcome (a worker crashed)
    last_error: str | None
    token: str = ""  # the claim that owns the row; outcomes of a lost claim are dropped
    subject_id: str = ""  # the customer the row is about (the claim's key)

    @classmethod
    def from_row(cls, r: Any, taken_over: bool, token: str = "") -> ClaimedRow:
        """From a ``deliveries`` result row."""
        return cls(
            r.id,
            r.pipeline,
            r.target,
            r.entity_type,
            r.entity_id,
            r.action,
            int(r.attempts),
            taken_over,
            r.last_error,
            token,
            r.subject_id,
        )


@dataclass(frozen=True)
class Entity:
    """The newest known version of a customer or event."""

    entity_type: str
    entity_id: str
    customer_id: str | None
    doc: dict[str, Any]
    deleted: bool
    updated_at: str = ""  # the document's updatedAt (ISO text: orders as time)


@dataclass(frozen=True)
class RowResult:
    """What the engine decided for one claimed row (written by :func:`record_outcomes`)."""

    row: ClaimedRow
    state: str  # done | failed | dead | pending (released without a call)
    outcome: str  # log outcome: created, updated, unchanged, left, deleted, retry, dead...
    subject_id: str  # the customer the id map and memberships are about
    due_at: float | None = None
    spend_attempt: bool = True
    error: str | None = None
    target_id: str | None = None
    target_key: str | None = None
    last_hash: str | None = None
    set_id_map: bool = False  # write id_map (target_id/target_key/last_hash)
    maybe_written: bool = False  # a write may have reached the target: keep an id_map row
    forget: bool = False  # drop id_map and every membership of the subject in this target
    memberships: frozenset[str] | None = None  # this pipeline's set; None = unchanged
    member_key: str | None = None
    origin: str | None = None  # id map provenance learnt now; None = keep the stored one
    # what the write kept for the other customers on the same record (Known.co_held when the
    # row was claimed): a holder recorded since has names it did not keep
    co_held: frozenset[str] = frozenset()
    sent: str | None = None  # the change handed to the target (JSON), for the delivery log
    # (batch, pipeline, position) in the order the writes of one batch and pipeline landed,
    # when the engine knows it (a target that keeps order within a call, calls one after
    # another); None: unknown
    landed: tuple[int, str, int] | None = None


def db_now(conn: Connection) -> float:
    """The database's clock, in seconds since the epoch: every lease and claim is compared
    with it, so replicas on hosts whose clocks disagree still agree on who holds what."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT EXTRACT(EPOCH FROM clock_timestamp())"
    else:
        sql = "SELECT (julianday('now') - 2440587.5) * 86400.0"
    return float(conn.exec_driver_sql(sql).scalar_one())


def new_token() -> str:
    """A claim's fencing token: unique per claim call."""
    return uuid.uuid4().hex


def claim(
    conn: Connection, target: str, worker: str, limit: int, now: float, lease: float
) -> list[ClaimedRow]:
    """Claim due rows of up to ``limit`` rows' worth of customers of ``target`` for ``worker``
    until ``now + lease`` (``now``: :func:`db_now`).

    The protocol, the same on SQLite and PostgreSQL:

    1. read candidate rows (due, oldest id first, of customers with no live claim) without
       locking them;
    2. take a claim per candidate customer in ``claims`` (insert, or take over an expired one),
       in customer-id order so two claimers never wait on each other in a cycle; the primary
       key makes a customer claimed by another worker (another thread or replica, committed
       or not) unavailable: on PostgreSQL the insert waits for the other transaction and then
       sees its claim;
    3. lock and take every due row of the customers won (re-read under the lock: a row ingest
       rewrote meanwhile is taken as it is now), holding back rows behind an older row of the
       customer that waits for its retry, so a customer's changes are sent in order;
    4. mark them in flight with the claim's token.

    Locks are always taken claims first, then deliveries (as :func:`record_outcomes` does).
    """
    d = deliveries
    held = exists().where(
        claims.c.target == d.c.target,
        claims.c.subject_id == d.c.subject_id,
        claims.c.expires_at >= now,
    )
    # a row behind an older row of its customer that waits for its retry waits too
    older = deliveries.alias("older")
    waiting = exists().where(
        older.c.subject_id == d.c.subject_id,
        older.c.target == d.c.target,
        older.c.id < d.c.id,
        older.c.state.in_(OPEN_STATES),
        older.c.due_at > now,
    )
    candidates = conn.execute(
        select(d.c.id, d.c.subject_id)
        .where(d.c.target == target, _due(now), ~held, ~waiting)
        .order_by(d.c.id)
        .limit(limit)
    ).all()
    # the candidates' customers (a dict, not a list: an NP6 claim holds 50,000 of them)
    wanted = dict.fromkeys(r.subject_id for r in candidates)
    if not wanted:
        return []
    token = new_token()
    won = _take_claims(conn, target, sorted(wanted), worker, token, now + lease, now)
    if not won:
        return []
    rows = conn.execute(
        select(
            d.c.id,
            d.c.pipeline,
            d.c.target,
            d.c.entity_type,
            d.c.entity_id,
            d.c.action,
            d.c.attempts,
            d.c.state,
            d.c.claimed_by,
            d.c.last_error,
            d.c.subject_id,
            d.c.due_at,
        )
        .where(
            d.c.target == target,
            d.c.subject_id.in_(sorted(won)),
            d.c.state.in_((*OPEN_STATES, "in_flight")),
        )
        .order_by(d.c.id)
        .with_for_update(of=d)
    ).all()
    taken = _in_order(rows, now)
    idle = won - {r.subject_id for r in taken}
    if idle:  # the rows moved on meanwhile (done by an older claim, or not due after all)
        conn.execute(
            delete(claims).where(
                claims.c.target == target,
                claims.c.token == token,
                claims.c.subject_id.in_(sorted(idle)),
            )
        )
    if not taken:
        return []
    conn.execute(
        update(d)
        .where(d.c.id.in_([r.id for r in taken]))
        .values(
            state="in_flight",
            claimed_by=worker,
            claim_token=token,
            claim_expires_at=now + lease,
            updated_at=now,
        )
    )
    return [ClaimedRow.from_row(r, r.claimed_by is not None, token) for r in taken]


def _take_claims(
    conn: Connection,
    target: str,
    subjects: Sequence[str],
    worker: str,
    token: str,
    expires_at: float,
    now: float,
) -> set[str]:
    """Insert or take over (when expired) the claims of ``subjects``; the ones won."""
    dialect = conn.dialect.name
    stmt: Any = postgresql.insert(claims) if dialect == "postgresql" else sqlite.insert(claims)
    stmt = stmt.on_conflict_do_update(
        index_elements=["target", "subject_id"],
        set_={"owner": worker, "token": token, "expires_at": expires_at},
        where=claims.c.expires_at < now,
    ).returning(claims.c.subject_id)
    rows = [
        {
            "target": target,
            "subject_id": s,
            "owner": worker,
            "token": token,
            "expires_at": expires_at,
        }
        for s in subjects
    ]
    # Many rows per statement (SQLAlchemy's "insertmanyvalues"), in subject order: a
    # multi-row insert takes its row locks in the order of its rows, so the order of
    # `subjects` stays the lock order. One statement per claim cost 0.2 ms a claim.
    return set(conn.execute(stmt, rows).scalars())


def _in_order(rows: Sequence[Any], now: float) -> list[Any]:
    """Of a claimed customer's rows (id order), the due ones that no earlier open row waiting
    for its retry holds back: the newest state is always sent last."""
    blocked: set[str] = set()
    taken = []
    for r in rows:
        if r.subject_id in blocked:
            continue
        due = r.state == "in_flight" or r.due_at <= now  # in flight: its claim expired (won)
        if due:
            taken.append(r)
        else:
            blocked.add(r.subject_id)
    return taken


def renew_claims(
    conn: Connection, target: str, tokens: Sequence[str], now: float, lease: float
) -> set[str]:
    """Extend the live claims of ``tokens`` to ``now + lease``; the tokens still held (a claim
    lost to another worker after it expired is not renewed: its outcomes will be dropped)."""
    if not tokens:
        return set()
    held = set(
        conn.execute(
            update(claims)
            .where(claims.c.target == target, claims.c.token.in_(list(tokens)))
            .values(expires_at=now + lease)
            .returning(claims.c.token)
        ).scalars()
    )
    if held:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.claim_token.in_(sorted(held)), deliveries.c.state == "in_flight")
            .values(claim_expires_at=now + lease)
        )
    return held


def live_claimers(conn: Connection, target: str, now: float) -> list[str]:
    """The workers holding unexpired claims on customers of ``target``."""
    rows = conn.execute(
        select(claims.c.owner)
        .where(claims.c.target == target, claims.c.expires_at >= now)
        .distinct()
    ).scalars()
    return [w for w in rows if w]


def expire_claims(conn: Connection, target: str, workers: Sequence[str]) -> int:
    """End the claims of ``workers`` (dead processes) on ``target`` now: their customers can be
    claimed again (and their rows, claimed again, count as taken over)."""
    if not workers:
        return 0
    conn.execute(
        update(claims)
        .where(claims.c.target == target, claims.c.owner.in_(list(workers)))
        .values(expires_at=0.0)
    )
    d = deliveries
    result = conn.execute(
        update(d)
        .where(d.c.target == target, d.c.state == "in_flight", d.c.claimed_by.in_(list(workers)))
        .values(claim_expires_at=0.0)
    )
    return int(result.rowcount or 0)


def load_entities(
    conn: Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Entity]:
    """The entities for ``(entity_type, entity_id)`` keys, in one query per entity type."""
    by_type: dict[str, set[str]] = {}
    for kind, ident in keys:
        by_type.setdefault(kind, set()).add(ident)
    found: dict[tuple[str, str], Entity] = {}
    for kind, ids in by_type.items():
        result = conn.execute(
            select(
                entities.c.entity_type,
                entities.c.entity_id,
                entities.c.customer_id,
                entities.c.payload,
                entities.c.deleted,
                entities.c.updated_at,
            ).where(entities.c.entity_type == kind, entities.c.entity_id.in_(sorted(ids)))
        )
        for r in result:
            found[(r.entity_type, r.entity_id)] = Entity(
                r.entity_type,
                r.entity_id,
                r.customer_id,
                orjson.loads(r.payload),  # ingest wrote it with orjson.dumps
                bool(r.deleted),
                r.updated_at or "",
            )
    return found


def load_known(
    conn: Connection, target: str, subject_ids: Iterable[str]
) -> tuple[dict[str, Known], dict[str, str | None], set[str]]:
    """What the store remembers per subject in ``target`` (two queries): :class:`Known`, the
    last accepted hashes, and the subjects with an id map row (a write may have happened)."""
    ids = sorted(set(subject_ids))
    if not ids:
        return {}, {}, set()
    maps = {
        r.entity_id: r
        for r in conn.execute(
            select(id_map).where(id_map.c.target == target, id_map.c.entity_id.in_(ids))
        )
    }
    names: dict[str, dict[str, set[str]]] = {}
    keys: dict[str, dict[str, str]] = {}
    for r in conn.execute(
        select(memberships).where(memberships.c.target == target, memberships.c.entity_id.in_(ids))
    ):
        names.setdefault(r.entity_id, {}).setdefault(r.pipeline, set()).add(r.name)
        if r.member_key is not None:
            keys.setdefault(r.entity_id, {})[r.pipeline] = r.member_key
    co_held = _co_held(conn, target, {i: m.target_id for i, m in maps.items() if m.target_id})
    known: dict[str, Known] = {}
    hashes: dict[str, str | None] = {}
    for ident in ids:
        m = maps.get(ident)
        known[ident] = Known(
            target_id=m.target_id if m is not None else None,
            target_key=m.target_key if m is not None else None,
            memberships={p: frozenset(n) for p, n in names.get(ident, {}).items()},
            member_keys=keys.get(ident, {}),
            origin=m.origin if m is not None else None,
            noted_at=m.updated_at if m is not None and m.target_id is None else None,
            co_held=co_held.get(ident, (frozenset(), False))[0],
            co_created=co_held.get(ident, (frozenset(), False))[1],
        )
        hashes[ident] = m.last_hash if m is not None else None
    return known, hashes, set(maps)


def _co_held(
    conn: Connection, target: str, record_of: dict[str, str]
) -> dict[str, tuple[frozenset[str], bool]]:
    """Per customer of ``record_of`` (customer -> its record in ``target``) whose record other
    customers map to as well: the names those hold on it, and whether syncer created it for one
    of them (one indexed query; a second only when records are shared)."""
    if not record_of:
        return {}
    sharers: dict[str, dict[str, str | None]] = {}  # record -> customer -> provenance
    for row in conn.execute(
        select(id_map.c.entity_id, id_map.c.target_id, id_map.c.origin).where(
            id_map.c.target == target, id_map.c.target_id.in_(sorted(set(record_of.values())))
        )
    ):
        sharers.setdefault(row.target_id, {})[row.entity_id] = row.origin
    others = {
        c: {o: origin for o, origin in sharers.get(t, {}).items() if o != c}
        for c, t in record_of.items()
    }
    others = {c: os for c, os in others.items() if os}
    if not others:
        return {}
    held: dict[str, set[str]] = {}
    for r in conn.execute(
        select(memberships.c.entity_id, memberships.c.name).where(
            memberships.c.target == target,
            memberships.c.entity_id.in_(sorted(set().union(*others.values()))),
        )
    ):
        held.setdefault(r.entity_id, set()).add(r.name)
    return {
        c: (
            frozenset(set().union(*(held.get(o, set()) for o in os))),
            "syncer" in os.values(),
        )
        for c, os in others.items()
    }


def record_outcomes(
    conn: Connection, target: str, results: Sequence[RowResult], now: float, run_id: str | None
) -> list[RowResult]:
    """Write a batch's results: delivery states, id map, memberships and the log (batched),
    and release the batch's claims. Fenced: only results whose claim is still held (its token
    in ``claims``, locked here until commit) are written; the others are returned untouched.
    A lost claim's customer row whose call went out gets a new pending row, so the customer's
    newest state is sent after whatever that late call wrote."""
    if not results:
        return []
    tokens = sorted({r.row.token for r in results})
    held = set(
        conn.execute(
            select(claims.c.token)
            .where(claims.c.target == target, claims.c.token.in_(tokens))
            .with_for_update()
        ).scalars()
    )
    lost = [r for r in results if r.row.token not in held]
    results = [r for r in results if r.row.token in held]
    _requeue(conn, [r for r in lost if r.outcome != "released"], now)
    if held:
        # only the claims of the customers recorded here: a worker may hold some customers of
        # one claim back for a later call (batch targets filling per-list calls)
        pairs = sorted({(r.row.token, r.row.subject_id) for r in results})
        conn.execute(
            delete(claims).where(
                claims.c.target == target,
                claims.c.token == bindparam("b_token"),
                claims.c.subject_id == bindparam("b_subject"),
            ),
            [{"b_token": t, "b_subject": s} for t, s in pairs],
        )
    if not results:
        return lost
    _update_rows(conn, results, now)
    # a forgotten customer's delete done: the target's acknowledgement (the erasure ledger)
    erasure_ops.acknowledge(
        conn,
        target,
        [
            (r.subject_id, r.row.pipeline, r.row.id, r.outcome)
            for r in results
            if r.row.action == "delete" and r.state == "done"
        ],
        now,
    )
    _write_id_map(conn, target, results, now)
    _write_memberships(conn, target, results)
    requeue_newer_rivals(conn, target, results, now)  # one contact, several customers
    requeue_holders_of_erased(conn, target, results, now)
    conn.execute(
        insert(delivery_log),
        [
            {
                "at": now,
                "run_id": run_id,
                "delivery_id": r.row.id,
                "pipeline": r.row.pipeline,
                "target": target,
                "entity_id": r.row.entity_id,
                "outcome": r.outcome,
                "detail": r.error,
                "sent": r.sent,
                "target_id": r.target_id if r.state == "done" else None,
            }
            for r in results
        ],
    )
    return lost


def _requeue(conn: Connection, lost: Sequence[RowResult], now: float) -> None:
    """A pending copy of each lost customer row (events are sent by the row's new owner; a
    customer's state is idempotent to re-send, an event is not re-created)."""
    rows = [r.row for r in lost if r.row.entity_type == "customer"]
    if rows:
        conn.execute(
            insert(deliveries),
            [
                {
                    "pipeline": r.pipeline,
                    "target": r.target,
                    "entity_type": r.entity_type,
                    "entity_id": r.entity_id,
                    "subject_id": r.subject_id or r.entity_id,
                    "action": r.action,
                    "state": "pending",
                    "attempts": 0,
                    "due_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for r in rows
            ],
        )


def _update_rows(conn: Connection, results: Sequence[RowResult], now: float) -> None:
    stmt = (
        update(deliveries)
        .where(deliveries.c.id == bindparam("b_id"), deliveries.c.claim_token == bindparam("b_tok"))
        .values(
            state=bindparam("b_state"),
            attempts=deliveries.c.attempts + bindparam("b_spent"),
            due_at=func.coalesce(bindparam("b_due"), deliveries.c.due_at),
            updated_at=now,
            claimed_by=None,
            claim_expires_at=None,
            claim_token=None,
            last_error=bindparam("b_error"),
        )
    )
    conn.execute(
        stmt,
        [
            {
                "b_id": r.row.id,
                "b_tok": r.row.token,
                "b_state": r.state,
                "b_spent": int(r.spend_attempt),
                "b_due": r.due_at,
                "b_error": r.error if r.error is not None else r.row.last_error,
            }
            for r in results
        ],
    )


def _write_id_map(conn: Connection, target: str, results: Sequence[RowResult], now: float) -> None:
    # Later results of one subject win (a batch may hold several pipelines' rows for it).
    rows: dict[str, dict[str, Any]] = {}
    maybe: dict[str, dict[str, Any]] = {}
    forget: set[str] = set()  # subjects whose last result forgets them
    forgotten = {r.subject_id for r in results if r.forget}  # what was stored is gone
    origins: dict[str, str] = {}  # subjects whose "maybe written" write said what it was
    for r in results:
        if r.maybe_written:
            if r.origin is not None:
                origins[r.subject_id] = r.origin
            maybe[r.subject_id] = {
                "target": target,
                "entity_id": r.subject_id,
                "target_id": None,
                "target_key": r.target_key,  # the identity the write that may be there used
                "last_hash": None,
                "updated_at": now,
            }
        if r.forget:
            forget.add(r.subject_id)
            rows.pop(r.subject_id, None)
        elif r.set_id_map:
            forget.discard(r.subject_id)
            row = {
                "target": target,
                "entity_id": r.subject_id,
                "target_id": r.target_id,
                "target_key": r.target_key,
                "last_hash": r.last_hash,
                "updated_at": now,
            }
            before = rows.get(r.subject_id, {}).get("origin")
            if r.origin is not None or before is not None:  # learnt now or earlier in the batch
                row["origin"] = r.origin or before
            rows[r.subject_id] = row
    if forgotten:  # results after the forget (re-created in the same batch) are written below
        ids = sorted(forgotten)
        conn.execute(delete(id_map).where(id_map.c.target == target, id_map.c.entity_id.in_(ids)))
        conn.execute(
            delete(memberships).where(
                memberships.c.target == target, memberships.c.entity_id.in_(ids)
            )
        )
    # rows that learnt their provenance write it; the others keep the stored one
    keys = ["target", "entity_id"]
    upsert(conn, id_map, [r for r in rows.values() if "origin" in r], keys)
    upsert(conn, id_map, [r for r in rows.values() if "origin" not in r], keys)
    # "Maybe written" never replaces what is known: insert only where there is no row yet.
    upsert(
        conn,
        id_map,
        [m for k, m in maybe.items() if k not in rows and k not in forget],
        ["target", "entity_id"],
        update_cols=[],
    )
    # what the failed write was (a create, or a write to a record that was there): the
    # provenance of whatever a re-send finds under that identity
    stages = [
        {"b_target": target, "b_entity": k, "b_origin": origins[k]}
        for k in maybe
        if k in origins and k not in rows and k not in forget
    ]
    if stages:
        conn.execute(
            update(id_map)
            .where(
                id_map.c.target == bindparam("b_target"),
                id_map.c.entity_id == bindparam("b_entity"),
                id_map.c.target_id.is_(None),
            )
            .values(origin=bindparam("b_origin")),
            stages,
        )


def _write_memberships(conn: Connection, target: str, results: Sequence[RowResult]) -> None:
    changed = [r for r in results if r.memberships is not None or r.forget]
    if not changed:
        return
    conn.execute(
        delete(memberships).where(
            memberships.c.target == target,
            memberships.c.entity_id == bindparam("b_entity"),
            memberships.c.pipeline == bindparam("b_pipeline"),
        ),
        [{"b_entity": r.subject_id, "b_pipeline": r.row.pipeline} for r in changed],
    )
    final: dict[tuple[str, str, str], str | None] = {}
    for r in changed:  # the last result of a (subject, pipeline) wins
        if r.forget:  # the subject is gone from the target: what came before in the batch too
            for key in [k for k in final if k[0] == r.subject_id]:
                del final[key]
            continue
        for key in [k for k in final if k[0] == r.subject_id and k[1] == r.row.pipeline]:
            del final[key]
        for name in r.memberships or ():
            final[(r.subject_id, r.row.pipeline, name)] = r.member_key
    if final:
        conn.execute(
            insert(memberships),
            [
                {"target": target, "entity_id": e, "pipeline": p, "name": n, "member_key": k}
                for (e, p, n), k in final.items()
            ],
        )


def note_identities(
    conn: Connection, target: str, intents: Sequence[tuple[str, str]], now: float
) -> None:
    """Before a create: an id map row without target id holding the identity it uses
    (``(subject, key)``), inserted only where the subject has no row (as "maybe written")."""
    upsert(
        conn,
        id_map,
        [
            {
                "target": target,
                "entity_id": subject,
                "target_id": None,
                "target_key": key,
                "last_hash": None,
                "updated_at": now,
            }
            for subject, key in dict(intents).items()
        ],
        ["target", "entity_id"],
        update_cols=[],
    )


def finish_jobs(conn: Connection, job_ids: Sequence[int]) -> None:
    """Drop target jobs the target finished (with the outcomes they produced, see
    :class:`~syncer.engine.context.CallContext`)."""
    if job_ids:
        conn.execute(delete(target_jobs).where(target_jobs.c.id.in_(list(job_ids))))


def prune_log(conn: Connection, keep: int = LOG_KEEP) -> None:
    """Keep the newest ``keep`` delivery_log rows."""
    newest = conn.execute(select(func.max(delivery_log.c.id))).scalar_one_or_none()
    if newest is not None and newest > keep:
        conn.execute(delete(delivery_log).where(delivery_log.c.id <= newest - keep))


def _due(now: float) -> Any:
    """Rows a worker may claim at ``now``: open and due, or in flight under an expired claim
    (a worker died)."""
    d = deliveries
    return or_(
        and_(d.c.state.in_(OPEN_STATES), d.c.due_at <= now),
        and_(d.c.state == "in_flight", d.c.claim_expires_at < now),
    )


def due_summary(conn: Connection, target: str, now: float) -> tuple[int, float | None]:
    """How many rows of ``target`` are claimable now (:func:`claim`), and the oldest due time
    (for flush policies)."""
    d = deliveries
    row = conn.execute(
        select(func.count(), func.min(d.c.due_at)).where(d.c.target == target, _due(now))
    ).one()
    return int(row[0]), row[1]


def next_due(conn: Connection, target: str) -> float | None:
    """When the next open row of ``target`` comes due (None: nothing open)."""
    d = deliveries
    return conn.execute(
        select(func.min(d.c.due_at)).where(d.c.target == target, d.c.state.in_(OPEN_STATES))
    ).scalar_one_or_none()


# the phase a job target records while the remote side executes the job (an NP6 import
# execution being processed): its rows wait for the job, not for a retry
JOB_RUNNING = "running"


def has_running_job(conn: Connection, target: str) -> bool:
    """Whether ``target`` has a job executing (an NP6 import), whichever process began it."""
    j = target_jobs
    query = select(j.c.id).where(j.c.target == target, j.c.phase == JOB_RUNNING).limit(1)
    return conn.execute(query).first() is not None


def count_open(conn: Connection, target: str) -> int:
    """Rows of ``target`` not finished yet (pending, failed or in flight)."""
    d = deliveries
    return int(
        conn.execute(
            select(func.count()).where(
                d.c.target == target, d.c.state.in_((*OPEN_STATES, "in_flight"))
            )
        ).scalar_one()
    )
