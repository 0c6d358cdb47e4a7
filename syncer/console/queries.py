"""The console's reads: one function per page section, each a few indexed queries.

Every function takes an open connection (from :meth:`Store.reader`) and returns plain data the
templates render. The queries are written so that the indexes listed in
``bench/console_indexes.md`` serve them; on a state database without those indexes they give
the same answers, only slower. Nothing here writes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, and_, cast, func, select

from ..state.delivery_ops import OPEN_STATES
from ..state.schema import checkpoints, deliveries, delivery_log, runs

STATES = ("pending", "in_flight", "failed", "dead", "done", "discarded")
REASON_CHARS = 200  # a dead letter's reason: the first characters of its last error
LOG_WINDOW = 6 * 3600.0  # seconds of delivery_log the overview charts cover
BUCKET = 600.0  # chart bucket, seconds
PAGE = 100


def reason_of() -> ColumnElement[Any]:
    """The dead-letter reason key (matches the partial index ``ix_deliveries_dead``)."""
    return func.substr(deliveries.c.last_error, 1, REASON_CHARS)


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


def counts_by_target(conn: Connection) -> dict[str, dict[str, int]]:
    """``{target: {state: count}}`` (served by ``ix_deliveries_claim``, a covering scan)."""
    d = deliveries
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for t, s, n in conn.execute(
        select(d.c.target, d.c.state, func.count()).group_by(d.c.target, d.c.state)
    ):
        counts[t][s] = int(n)
    return dict(counts)


def counts_by_pipeline(conn: Connection) -> dict[str, dict[str, int]]:
    """``{pipeline: {state: count}}`` (served by ``ix_deliveries_pipeline_state``)."""
    d = deliveries
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for p, s, n in conn.execute(
        select(d.c.pipeline, d.c.state, func.count()).group_by(d.c.pipeline, d.c.state)
    ):
        counts[p][s] = int(n)
    return dict(counts)


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


@dataclass
class Throughput:
    """Per target: finished records per outcome in the last hour, and a series of finished
    (non-retry) records per bucket over :data:`LOG_WINDOW`."""

    last_hour: dict[str, int] = field(default_factory=dict)
    series: list[int] = field(default_factory=list)
    rate_limited: int = 0  # delivery_log details that mention a 429 in the last hour


def throughput(conn: Connection, now: float) -> dict[str, Throughput]:
    """From ``delivery_log`` (bounded to its newest rows, so a scan of the window is cheap)."""
    log = delivery_log
    since = now - LOG_WINDOW
    buckets = int(LOG_WINDOW // BUCKET)
    out: dict[str, Throughput] = defaultdict(lambda: Throughput(series=[0] * buckets))
    bucket = cast((log.c.at - since) / BUCKET, Integer)
    query = (
        select(log.c.target, log.c.outcome, bucket.label("b"), func.count())
        .where(log.c.at >= since)
        .group_by(log.c.target, log.c.outcome, bucket)
    )
    hour_bucket = int((now - 3600 - since) // BUCKET)
    for target, outcome, b, n in conn.execute(query):
        t = out[target]
        index = min(max(int(b), 0), buckets - 1)
        if outcome not in ("retry", "released"):
            t.series[index] += int(n)
        if int(b) >= hour_bucket:
            t.last_hour[outcome] = t.last_hour.get(outcome, 0) + int(n)
    limited = (
        select(log.c.target, func.count())
        .where(log.c.at >= now - 3600, log.c.detail.like("%429%"))
        .group_by(log.c.target)
    )
    for target, n in conn.execute(limited):
        out[target].rate_limited = int(n)
    return dict(out)


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
        select(reason.label("reason"), d.c.pipeline, d.c.target, func.count().label("n"))
        .where(d.c.state == "dead")
        .group_by(reason, d.c.pipeline, d.c.target)
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
    terms: list[ColumnElement[bool]] = [d.c.state == "dead"]
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


def dead_count(conn: Connection) -> int:
    d = deliveries
    return int(
        conn.execute(select(func.count()).select_from(d).where(d.c.state == "dead")).scalar_one()
    )


def top_reasons(conn: Connection, per_pipeline: int = 5) -> dict[str, list[tuple[str, int]]]:
    """Per pipeline, its most frequent dead-letter reasons."""
    d = deliveries
    reason = reason_of()
    query = (
        select(d.c.pipeline, reason.label("reason"), func.count().label("n"))
        .where(d.c.state == "dead")
        .group_by(d.c.pipeline, reason)
    )
    out: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for r in conn.execute(query):
        out[r.pipeline].append((r.reason or "", int(r.n)))
    return {
        p: sorted(items, key=lambda x: (-x[1], x[0]))[:per_pipeline] for p, items in out.items()
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
