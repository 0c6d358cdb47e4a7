"""What a scenario is, and the context the harness hands it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .core import Check, Row


@dataclass
class Context:
    """Settings of one bench run, shared by every scenario."""

    workdir: Path
    quick: bool = False
    reps: int = 3
    verbose: bool = True
    started: float = field(default_factory=time.monotonic)

    def log(self, message: str) -> None:
        if self.verbose:
            elapsed = time.monotonic() - self.started
            print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)

    def dir(self, name: str) -> Path:
        """A fresh sub-directory of the work dir for one run of one scenario."""
        path = self.workdir / name
        n = 1
        while path.exists():
            n += 1
            path = self.workdir / f"{name}-{n}"
        path.mkdir(parents=True)
        return path


@dataclass(frozen=True)
class Metric:
    """A row a scenario promises: used for the table when the scenario cannot run."""

    metric: str
    unit: str
    checks: tuple[Check, ...] = ()

    def row(self, scenario: str, **values: object) -> Row:
        """A :class:`Row` of this metric; ``values`` set any of its fields (``metric`` too)."""
        row = Row(scenario=scenario, metric=self.metric, unit=self.unit, checks=list(self.checks))
        for key, value in values.items():
            setattr(row, key, value)
        return row


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    metrics: tuple[Metric, ...]
    run: Callable[[Context], list[Row]]
    budget_s: float  # rough wall time of a full run, for --list and planning

    def not_run(self, reason: str) -> list[Row]:
        return [m.row(self.name, not_run=reason) for m in self.metrics]
