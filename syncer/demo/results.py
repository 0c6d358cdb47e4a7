"""What the demo reports, read from the state database (never computed on the side)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from ..config.models import SyncerConfig
from ..logs import mask_values
from ..source.contacthub import source_of_stream
from ..state.dlq_ops import of_source
from ..state.schema import checkpoints, delivery_log, entities, erasures, id_map
from ..state.store import Store

__all__ = [
    "COLUMNS",
    "PipelineRun",
    "RunSummary",
    "SourceCounts",
    "id_map_counts",
    "read_run",
    "scrubbed_count",
    "short_reason",
    "source_counts",
]

COLUMNS = ("created", "updated", "unchanged", "left", "deleted", "invalid", "dead")
FAILED = ("invalid", "dead")
GAVE_UP = "gave up after"  # the engine's prefix of a dead letter that ran out of retries


def short_reason(detail: str) -> str:
    """A reason with its record-specific values masked (see :func:`syncer.logs.mask_values`)."""
    return mask_values(detail)


@dataclass
class PipelineRun:
    """One pipeline's delivery outcomes in one run (``delivery_log`` rows of that run)."""

    pipeline: str
    target: str
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # of invalid/dead rows
    examples: dict[str, str] = field(default_factory=dict)  # short reason -> one full text

    def count(self, outcome: str) -> int:
        return self.outcomes.get(outcome, 0)

    @property
    def other(self) -> int:
        """Outcomes outside :data:`COLUMNS` (retry, rate_limited, released, ...)."""
        return sum(n for o, n in self.outcomes.items() if o not in COLUMNS)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "target": self.target,
            "outcomes": dict(self.outcomes),
            "reasons": dict(self.reasons),
        }


@dataclass
class RunSummary:
    """One ``sync --once``: its exit code, its ``runs`` row and its per-pipeline outcomes."""

    label: str
    run_id: str | None
    exit_code: int
    status: str | None
    counts: dict[str, Any]
    pipelines: list[PipelineRun]

    def pipeline(self, name: str) -> PipelineRun:
        return next(p for p in self.pipelines if p.pipeline == name)

    def total(self, outcome: str) -> int:
        return sum(p.count(outcome) for p in self.pipelines)

    @property
    def target_errors(self) -> dict[str, str]:
        targets = self.counts.get("targets", {})
        return {n: str(t["error"]) for n, t in targets.items() if t.get("error")}

    @property
    def waiting(self) -> int:
        return sum(int(t.get("waiting") or 0) for t in self.counts.get("targets", {}).values())

    @property
    def exhausted(self) -> int:
        """Dead letters of records that ran out of retries (the target kept failing)."""
        return sum(n for p in self.pipelines for r, n in p.reasons.items() if r.startswith(GAVE_UP))

    @property
    def healthy(self) -> bool:
        """The run finished and every record was delivered or refused for its data (invalid
        before sending, or rejected by the target with a reason): no target stopped, nothing
        waiting for a retry, no record that ran out of retries."""
        return (
            self.run_id is not None
            and self.exit_code in (0, 1)
            and self.waiting == 0
            and self.exhausted == 0
            and not self.target_errors
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "run_id": self.run_id,
            "exit_code": self.exit_code,
            "status": self.status,
            "counts": self.counts,
            "pipelines": [p.as_dict() for p in self.pipelines],
        }


def read_run(
    store: Store, cfg: SyncerConfig, label: str, exit_code: int, known: set[str]
) -> RunSummary:
    """The newest ``sync`` run not in ``known`` (the one the command just made), with the
    delivery outcomes it logged; ``run_id`` is ``None`` if the command recorded no run."""
    run = next(
        (r for r in store.last_runs(20) if r["kind"] == "sync" and r["run_id"] not in known),
        None,
    )
    pipelines = [PipelineRun(p.name, p.target) for p in cfg.pipelines]
    if run is None:
        return RunSummary(label, None, exit_code, None, {}, pipelines)
    by_name = {p.pipeline: p for p in pipelines}
    log = delivery_log.c
    query = (
        select(log.pipeline, log.target, log.outcome, log.detail, func.count())
        .where(log.run_id == run["run_id"])
        .group_by(log.pipeline, log.target, log.outcome, log.detail)
    )
    with store.engine.connect() as conn:
        for pipeline, target, outcome, detail, n in conn.execute(query):
            entry = by_name.get(pipeline)
            if entry is None:
                entry = by_name[pipeline] = PipelineRun(pipeline, target)
                pipelines.append(entry)
            entry.outcomes[outcome] += int(n)
            if outcome in FAILED or (outcome not in COLUMNS and detail):
                reason = short_reason(detail or outcome)
                entry.reasons[reason] += int(n)
                entry.examples.setdefault(reason, detail or outcome)
    return RunSummary(label, run["run_id"], exit_code, run["status"], run["counts"], pipelines)


def scrubbed_count(store: Store) -> int:
    """Forgotten customers whose personal data left the state (the erasure ledger)."""
    with store.engine.connect() as conn:
        query = select(func.count()).where(erasures.c.scrubbed_at.is_not(None))
        return int(conn.execute(query).scalar_one())


def id_map_counts(store: Store) -> dict[str, int]:
    """Per target: distinct target ids in the id map (customers sharing an e-mail address
    share one contact)."""
    query = (
        select(id_map.c.target, func.count(id_map.c.target_id.distinct()))
        .where(id_map.c.target_id.is_not(None))
        .group_by(id_map.c.target)
    )
    with store.engine.connect() as conn:
        return {str(target): int(n) for target, n in conn.execute(query)}


@dataclass
class SourceCounts:
    """One source, as the state database holds it: its streams' committed offsets, its
    customers and events (not deleted), and per target the records its entities resolved to
    (distinct target ids in the id map: a contact two sources share counts in both)."""

    source: str
    offsets: dict[str, int]  # stream key -> committed offset
    last_offsets: dict[str, int | None]  # stream key -> the stream's end, when last checked
    customers: int
    events: int
    held: dict[str, int]  # target -> distinct target ids

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "offsets": self.offsets,
            "last_offsets": self.last_offsets,
            "customers": self.customers,
            "events": self.events,
            "held": self.held,
        }


def source_counts(store: Store, cfg: SyncerConfig) -> list[SourceCounts]:
    """Per source of ``cfg``, in config order (see :class:`SourceCounts`)."""
    out = []
    with store.engine.connect() as conn:
        streams = conn.execute(
            select(checkpoints.c.stream, checkpoints.c.offset, checkpoints.c.stream_last_offset)
        ).all()
        for name in cfg.sources:
            mine = sorted(r for r in streams if source_of_stream(str(r[0])) == name)
            alive = entities.c.deleted.is_(False) & of_source(entities.c.entity_id, name)
            kinds: dict[str, int] = dict(
                conn.execute(
                    select(entities.c.entity_type, func.count())
                    .where(alive)
                    .group_by(entities.c.entity_type)
                ).all()
            )
            held = conn.execute(
                select(id_map.c.target, func.count(id_map.c.target_id.distinct()))
                .where(id_map.c.target_id.is_not(None) & of_source(id_map.c.entity_id, name))
                .group_by(id_map.c.target)
            ).all()
            out.append(
                SourceCounts(
                    name,
                    {str(s): int(o) for s, o, _ in mine},
                    {str(s): None if last is None else int(last) for s, _, last in mine},
                    int(kinds.get("customer", 0)),
                    int(kinds.get("event", 0)),
                    {str(t): int(n) for t, n in held},
                )
            )
    return out
