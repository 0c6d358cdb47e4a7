"""The console's reads: one function per page section, each a few indexed queries.

Every function takes an open connection (from :meth:`Store.reader`) and returns plain data the
templates render. The queries are written so that the indexes of migration 0007 (listed in
``bench/console_indexes.md``) serve them; on a state database without those indexes they
give the same answers, only slower. Nothing here writes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, literal_column, select

from ..state.delivery_ops import OPEN_STATES
from ..state.schema import checkpoints, deliveries, delivery_log, runs

STATES = ("pending", "in_flight", "failed", "dead", "done", "discarded")  # display order
REASON_CHARS = 200  # a dead letter's reason: the first characters of its last error
LOG_WINDOW = 6 * 3600.0  # seconds of delivery_log the overview charts cover
BUCKET = 600.0  # chart bucket, seconds
PAGE = 100


# Literal, not bound: the partial index ``... WHERE state = 'dead'`` is only used by a query
# whose WHERE spells the same constant (SQLite cannot match a bound parameter).
DEAD: ColumnElement[Any] = literal_column("'dead'")


def reason_of() -> ColumnElement[Any]:
    """The dead-letter reason key (matches the partial index ``ix_deliveries_dead``)."""
    # literal arguments: the expression index only matches the same literal expression
    return func.substr(
        deliveries.c.last_error, literal_column("1"), literal_column(str(REASON_CHARS))
    )


@dataclass
class StreamLag:
    stream: str
    offset: int
    last_offset: int | None
    lag_offsets: int | None
    lag_seconds: float | None
    lease_owner: str | None
    updated_at: float


def stream_lags(conn: Connection, now: float) -> list[StreamLag]:
    """Per stream: committed offset, the stream's end as last seen, and the lag (as the
    ``syncer_stream_lag_*`` metrics compute it)."""
    out = []
    for r in conn.execute(select(checkpoints).order_by(checkpoints.c.stream)):
        behind = None if r.stream_last_offset is None else max(0, r.stream_last_offset - r.offset)
        seconds = None if behind is None else (0.0 if behind == 0 else now - r.updated_at)
        out.append(
            StreamLag(
                r.stream,
                int(r.offset),
                r.stream_last_offset,
                behind,
                seconds,
                r.lease_owner,
                r.updated_at,
            )
        )
    return out


CAP = 10_000  # ``done`` rows are counted up to this (the queue states are always exact)
CAPPED_STATES = ("done", "discarded")


def _counts(conn: Connection, column: Any, keys: list[str]) -> dict[str, dict[str, int]]:
    """``{key: {state: count}}`` by index range counts, one per (key, state): the ``done``
    majority is counted up to ``CAP`` (``CAP + 1`` means "more"), so a page never walks a
    million index entries to print one number nobody acts on."""
    d = deliveries
    out: dict[str, dict[str, int]] = {}
    for key in keys:
        counts: dict[str, int] = {}
        for state in STATES:
            where = and_(column == key, d.c.state == state)
            if state in CAPPED_STATES:
                inner = select(literal_column("1")).where(where).limit(CAP + 1).subquery()
                query = select(func.count()).select_from(inner)
            else:
                query = select(func.count()).select_from(d).where(where)
            n = int(conn.execute(query).scalar_one())
            if n:
                counts[state] = n
        out[key] = counts
    return out


def counts_by_target(conn: Connection, targets: list[str]) -> dict[str, dict[str, int]]:
    """``{target: {state: count}}`` (``ix_deliveries_claim`` range counts)."""
    return _counts(conn, deliveries.c.target, targets)


def counts_by_pipeline(conn: Connection, pipelines: list[str]) -> dict[str, dict[str, int]]:
    """``{pipeline: {state: count}}`` (``ix_deliveries_pipeline_state`` range counts)."""
    return _counts(conn, deliveries.c.pipeline, pipelines)


def show_count(n: int) -> str:
    """A count for a page: ``10,000+`` past the cap."""
    return f"{CAP:,}+" if n > CAP else f"{n:,}"


def oldest_due(conn: Connection, targets: list[str]) -> dict[str, float]:
    """Per target, the ``due_at`` of its oldest open row (one index seek per target/state)."""
    d = deliveries
    out: dict[str, float] = {}
    for target in targets:
        values = [
            conn.execute(
                select(func.min(d.c.due_at)).where(d.c.target == target, d.c.state == state)
            ).scalar_one_or_none()
            for state in OPEN_STATES
        ]
        present = [v for v in values if v is not None]
        if present:
            out[target] = float(min(present))
    return out


# delivery_log outcomes of a row that is not finished: it waits for another attempt
# (syncer.engine.outcomes.to_result); every other outcome closed the row, delivered or dead
UNFINISHED = ("retry", "released", "rate_limited", "job_pending")
# the closing outcomes that are not a delivery: the row went dead
DEAD_OUTCOMES = ("dead", "invalid")


@dataclass
class Throughput:
    """Per target: logged outcomes in the last hour, and a series of finished records (done
    or dead, not waiting for a retry) per bucket over :data:`LOG_WINDOW`."""

    last_hour: dict[str, int] = field(default_factory=dict)
    series: list[int] = field(default_factory=list)
    rate_limited: int = 0  # delivery_log details that mention a 429 in the last hour

    @property
    def done_last_hour(self) -> int:
        """Records delivered (or found already there) in the last hour: dead ones are not."""
        skip = UNFINISHED + DEAD_OUTCOMES
        return sum(n for outcome, n in self.last_hour.items() if outcome not in skip)


def throughput(conn: Connection, targets: list[str], now: float) -> dict[str, Throughput]:
    """From ``delivery_log`` by range counts on ``ix_delivery_log_target_at`` (target, at,
    outcome): one per target and bucket, no sort (grouping 100,000 log lines costs more)."""
    log = delivery_log
    since = now - LOG_WINDOW
    buckets = int(LOG_WINDOW // BUCKET)
    # comparisons, not NOT IN (list): an expanding IN is re-rendered at every execution
    finished = and_(*(log.c.outcome != o for o in UNFINISHED))
    out: dict[str, Throughput] = {}
    for target in targets:
        t = Throughput(series=_buckets(conn, target, since, buckets, finished))
        hour = log.c.target == target, log.c.at >= now - 3600
        for outcome, n in conn.execute(
            select(log.c.outcome, func.count()).where(*hour).group_by(log.c.outcome)
        ):
            t.last_hour[outcome] = int(n)
        t.rate_limited = int(
            conn.execute(
                select(func.count()).select_from(log).where(*hour, log.c.detail.like("%429%"))
            ).scalar_one()
        )
        out[target] = t
    return out


def _buckets(
    conn: Connection, target: str, since: float, buckets: int, finished: ColumnElement[bool]
) -> list[int]:
    """Finished records of ``target`` per :data:`BUCKET` since ``since``."""
    log = delivery_log
    if conn.dialect.name == "postgresql":
        window = (log.c.target == target, log.c.at >= since, log.c.at < since + buckets * BUCKET)
        # one index-only range scan and a hash aggregate: PostgreSQL plans each of the 36
        # subqueries below on every execution, which costs more than the counting
        bucket = func.floor((log.c.at - since) / BUCKET).label("bucket")
        series = [0] * buckets
        for b, n in conn.execute(
            select(bucket, func.count()).where(*window, finished).group_by(bucket)
        ):
            if 0 <= int(b) < buckets:
                series[int(b)] = int(n)
        return series
    # SQLite: one statement of scalar range counts (a GROUP BY would sort the whole range;
    # the per-statement cost, not the counting, is what 36 separate queries would spend)
    counts = [
        select(func.count())
        .select_from(log)
        .where(
            log.c.target == target,
            log.c.at >= since + i * BUCKET,
            log.c.at < since + (i + 1) * BUCKET,
            finished,
        )
        .scalar_subquery()
        for i in range(buckets)
    ]
    return [int(n) for n in conn.execute(select(*counts)).one()]


@dataclass
class ReasonGroup:
    reason: str
    count: int
    pipelines: list[str]
    targets: list[str]


def dead_groups(
    conn: Connection,
    pipeline: str | None = None,
    target: str | None = None,
    limit: int = 200,
) -> list[ReasonGroup]:
    """Dead letters grouped by reason, biggest first (``ix_deliveries_dead``, covering)."""
    d = deliveries
    reason = reason_of()
    query = (
        select(d.c.pipeline, d.c.target, reason.label("reason"), func.count().label("n"))
        .where(d.c.state == DEAD)
        .group_by(d.c.pipeline, d.c.target, reason)  # the index's order: no sort
    )
    if pipeline:
        query = query.where(d.c.pipeline == pipeline)
    if target:
        query = query.where(d.c.target == target)
    groups: dict[str, ReasonGroup] = {}
    for r in conn.execute(query):
        key = r.reason or ""
        g = groups.setdefault(key, ReasonGroup(key, 0, [], []))
        g.count += int(r.n)
        if r.pipeline not in g.pipelines:
            g.pipelines.append(r.pipeline)
        if r.target not in g.targets:
            g.targets.append(r.target)
    return sorted(groups.values(), key=lambda g: (-g.count, g.reason))[:limit]


def dead_filter(
    pipeline: str | None, target: str | None, reason: str | None
) -> ColumnElement[bool]:
    """The WHERE clause of the dead letters a page (or an action) is about."""
    d = deliveries
    terms: list[ColumnElement[bool]] = [d.c.state == DEAD]
    if pipeline:
        terms.append(d.c.pipeline == pipeline)
    if target:
        terms.append(d.c.target == target)
    if reason is not None:
        terms.append(reason_of() == reason)
    return and_(*terms)


def dead_rows(
    conn: Connection,
    pipeline: str | None,
    target: str | None,
    reason: str | None,
    before: int | None = None,
    limit: int = PAGE,
) -> list[Any]:
    """One page of dead letters, newest id first; ``before``: the page after that id."""
    d = deliveries
    query = select(
        d.c.id,
        d.c.pipeline,
        d.c.target,
        d.c.entity_type,
        d.c.entity_id,
        d.c.subject_id,
        d.c.action,
        d.c.attempts,
        d.c.updated_at,
        d.c.last_error,
    ).where(dead_filter(pipeline, target, reason))
    if before is not None:
        query = query.where(d.c.id < before)
    return list(conn.execute(query.order_by(d.c.id.desc()).limit(limit)))


def top_reasons(conn: Connection, per_pipeline: int = 5) -> dict[str, list[tuple[str, int]]]:
    """Per pipeline, its most frequent dead-letter reasons."""
    d = deliveries
    reason = reason_of()
    query = (
        select(d.c.pipeline, d.c.target, reason.label("reason"), func.count().label("n"))
        .where(d.c.state == DEAD)
        .group_by(d.c.pipeline, d.c.target, reason)  # the index's order: no sort
    )
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in conn.execute(query):
        out[r.pipeline][r.reason or ""] += int(r.n)
    return {
        p: sorted(items.items(), key=lambda x: (-x[1], x[0]))[:per_pipeline]
        for p, items in out.items()
    }


@dataclass
class RunRow:
    id: int
    run_id: str
    kind: str
    started_at: float
    finished_at: float | None
    status: str
    counts: dict[str, Any]
    message: str | None

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


def last_runs(conn: Connection, limit: int = 50, before: int | None = None) -> list[RunRow]:
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(runs.c.id < before)
    out = []
    for r in conn.execute(query):
        try:
            counts = json.loads(r.counts or "{}")
        except ValueError:
            counts = {}
        out.append(
            RunRow(
                r.id,
                r.run_id,
                r.kind,
                r.started_at,
                r.finished_at,
                r.status,
                counts if isinstance(counts, dict) else {},
                r.message,
            )
        )
    return out
