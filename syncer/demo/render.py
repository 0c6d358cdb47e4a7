"""The demo's summary as text lines (plain text: readable in a terminal and in a CI log)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..config.models import SyncerConfig
from .landed import HELD, Landed
from .results import COLUMNS, RunSummary, SourceCounts
from .workspace import SIMULATOR_OF_TARGET

__all__ = [
    "Check",
    "checks",
    "churn_line",
    "landed_lines",
    "reason_lines",
    "source_lines",
    "table_lines",
    "verdict_lines",
]

MAX_REASONS = 4


@dataclass(frozen=True)
class Check:
    """What the state database says a simulator holds, against what it holds."""

    simulator: str
    what: str
    expected: int  # distinct target ids in the id map, over the config targets on this simulator
    found: int
    # records a target keeps by its pipelines' on_delete (ignore; an Octopush list removal
    # keeps the number on the account) for forgotten customers whose state was scrubbed: the
    # id map no longer has them, the simulator may
    kept: int = 0

    @property
    def ok(self) -> bool:
        return self.expected <= self.found <= self.expected + self.kept

    def line(self) -> str:
        mark = "ok" if self.ok else "MISMATCH"
        extra = f" (+ up to {self.kept} kept for forgotten customers)" if self.kept else ""
        return (
            f"  {self.simulator}: {self.found} {self.what}; the state database's id map: "
            f"{self.expected}{extra} -> {mark}"
        )


def checks(
    landed: dict[str, Landed], id_maps: dict[str, int], cfg: SyncerConfig, scrubbed: int = 0
) -> list[Check]:
    """``scrubbed``: forgotten customers whose state was scrubbed (see :class:`Check`)."""
    out = []
    for sim, view in landed.items():
        names = [n for n, t in cfg.targets.items() if SIMULATOR_OF_TARGET.get(t.type) == sim]
        expected = sum(id_maps.get(n, 0) for n in names)
        keeps = any(
            p.on_delete == "ignore" or (p.on_delete == "remove_from_list" and sim == "octopush")
            for p in cfg.pipelines
            if p.target in names
        )
        out.append(Check(sim, HELD[sim], expected, view.held, scrubbed if keeps else 0))
    return out


def churn_line(done: Counter[str], accepted: int, total: int) -> str:
    ops = ", ".join(f"{n} {op}" for op, n in sorted(done.items()))
    return f"churn: {total} operations through the Contacthub API ({ops}); {accepted} accepted"


def table_lines(runs: Sequence[RunSummary]) -> list[str]:
    """Per pipeline and run: created, updated, ... as logged in ``delivery_log``."""
    head = f"{'pipeline':<14}{'target':<8}{'run':<14}" + "".join(f"{c:>10}" for c in COLUMNS)
    lines = [head + f"{'other':>8}"]
    names = [p.pipeline for p in runs[0].pipelines] if runs else []
    for name in names:
        for index, run in enumerate(runs):
            p = run.pipeline(name)
            left = f"{name:<14}{p.target:<8}" if index == 0 else " " * 22
            cells = "".join(f"{p.count(c):>10}" for c in COLUMNS)
            lines.append(f"{left}{run.label:<14}{cells}{p.other:>8}")
    return lines


def reason_lines(runs: Sequence[RunSummary]) -> list[str]:
    """Why records were rejected (invalid) or dead-lettered, grouped by reason, per pipeline."""
    lines: list[str] = []
    names = [p.pipeline for p in runs[0].pipelines] if runs else []
    for name in names:
        reasons: Counter[str] = Counter()
        examples: dict[str, str] = {}
        for run in runs:
            p = run.pipeline(name)
            reasons.update(p.reasons)
            for short, full in p.examples.items():
                examples.setdefault(short, full)
        for short, n in reasons.most_common(MAX_REASONS):
            example = examples[short]
            lines.append(f"  {name}: {n} x {short}" + (f"  (e.g. {example})" * (example != short)))
        hidden = len(reasons) - MAX_REASONS
        if hidden > 0:
            lines.append(f"  {name}: ... and {hidden} more reasons (`syncer dlq list`)")
    return lines or ["  none"]


def source_lines(sources: Sequence[SourceCounts], cfg: SyncerConfig) -> list[str]:
    """Per source: offsets of its streams, what the state holds of it, records per target."""
    targets = list(cfg.targets)
    head = f"  {'source':<12}{'offset':>8}{'customers':>11}{'events':>8}"
    lines = [head + "".join(f"{t:>8}" for t in targets) + "   (records per target)"]
    for s in sources:
        offset = sum(s.offsets.values())
        lines.append(
            f"  {s.source:<12}{offset:>8}{s.customers:>11}{s.events:>8}"
            + "".join(f"{s.held.get(t, 0):>8}" for t in targets)
        )
        for stream, at in s.offsets.items():
            end = s.last_offsets.get(stream)
            lines.append(f"    stream {stream}: offset {at}" + (f" of {end}" * (end is not None)))
    return lines


def landed_lines(landed: dict[str, Landed], cfg: SyncerConfig) -> list[str]:
    """Holdings and sample records of each target simulator, with the pipelines feeding it."""
    lines: list[str] = []
    for tname, tcfg in cfg.targets.items():
        sim = SIMULATOR_OF_TARGET.get(tcfg.type)
        view = landed.get(sim or "")
        if view is None:
            continue
        feeding = ", ".join(p.name for p in cfg.pipelines if p.target == tname) or "no pipeline"
        counts = ", ".join(f"{n} {what}" for what, n in view.counts.items())
        lines.append(f"  {sim} (target {tname}: {feeding}): {counts}")
        if view.members:
            members = ", ".join(f"{name} {n}" for name, n in view.members.items())
            lines.append(f"    members: {members}")
        for sample in view.samples:
            lines.append(f"    {json.dumps(sample, ensure_ascii=False, default=str)}")
    return lines


def verdict_lines(runs: Sequence[RunSummary]) -> list[str]:
    lines = []
    for run in runs:
        invalid = run.total("invalid")
        state = f"run {run.run_id}: {run.status}" if run.run_id else "no run recorded"
        what = [f"{invalid} records rejected as invalid"] if invalid else []
        what += [f"{run.total('dead')} dead letters"] if run.total("dead") else []
        what += [f"{run.exhausted} out of retries"] if run.exhausted else []
        what += [f"{run.waiting} waiting for a retry"] if run.waiting else []
        what += [f"target {n} stopped: {e}" for n, e in run.target_errors.items()]
        detail = "; ".join(what) or "every record delivered"
        verdict = "ok" if run.healthy else "FAILED"
        lines.append(
            f"  {run.label}: `syncer sync --once` exit {run.exit_code} ({state}; {detail}) "
            f"-> {verdict}"
        )
    return lines
