"""The harness: results, targets, medians, ratios, the table and ``results.json``.

A scenario measures a *value* and, in the same run, its *floor* (the best the engine could do
against the same simulator: a bare HTTP loop, an API's call arithmetic, a configured limit).
``ratio = value / floor``; each :class:`Row` carries the target it must meet, on the value or
on the ratio. A scenario that cannot run (its engine parts are missing, a subprocess failed)
yields a row that says ``not run: <reason>``, never a number.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Op = Literal[">=", "<=", "=="]


class NotRun(Exception):
    """A scenario (or one of its rows) cannot be measured; the message says why."""


@dataclass(frozen=True)
class Check:
    """A target: ``on`` (``ratio`` or ``value``) ``op`` ``threshold``."""

    on: Literal["ratio", "value"]
    op: Op
    threshold: float

    def passes(self, value: float | None, ratio: float | None) -> bool | None:
        subject = ratio if self.on == "ratio" else value
        if subject is None or math.isnan(subject):
            return None
        if self.op == ">=":
            return subject >= self.threshold
        if self.op == "<=":
            return subject <= self.threshold
        return math.isclose(subject, self.threshold, rel_tol=1e-9, abs_tol=1e-12)

    def describe(self) -> str:
        return f"{self.on} {self.op} {fmt_number(self.threshold)}"


@dataclass
class Row:
    """One line of the table: a measured quantity, its floor, the ratio and the verdict."""

    scenario: str
    metric: str
    unit: str = ""
    value: float | None = None
    floor: float | None = None
    floor_label: str = ""
    checks: list[Check] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)
    floor_samples: list[float] = field(default_factory=list)
    not_run: str | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.floor)

    @property
    def met(self) -> bool | None:
        """True/False when every check could be evaluated; None when there is nothing to judge."""
        if self.not_run is not None or not self.checks:
            return None
        verdicts = [c.passes(self.value, self.ratio) for c in self.checks]
        if any(v is None for v in verdicts):
            return None
        return all(bool(v) for v in verdicts)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["checks"] = [c.describe() for c in self.checks]
        out["ratio"] = self.ratio
        out["met"] = self.met
        out["verdict"] = verdict(self, None)
        return out


def ratio(value: float | None, floor: float | None) -> float | None:
    """``value / floor``, or None when either is missing or the floor is zero."""
    if value is None or floor is None or floor == 0:
        return None
    return value / floor


def median(samples: Sequence[float]) -> float | None:
    """The median of the samples (None for none); the harness reports medians of repetitions."""
    clean = [s for s in samples if s is not None and not math.isnan(s)]
    if not clean:
        return None
    return float(statistics.median(clean))


def repeat(reps: int, measure: Callable[[int], float]) -> list[float]:
    """Call ``measure(rep)`` ``reps`` times and return the samples in order."""
    return [measure(rep) for rep in range(reps)]


def fmt_number(x: float | None) -> str:
    """A compact human number: 3 significant digits below 1000, thousands separators above."""
    if x is None:
        return "-"
    if math.isnan(x):
        return "nan"
    if x == 0:
        return "0"
    mag = abs(x)
    if mag >= 1000:
        return f"{x:,.0f}"
    if mag >= 100:
        return f"{x:.1f}"
    if mag >= 1:
        return f"{x:.2f}"
    if mag >= 0.001:
        return f"{x:.4f}"
    return f"{x:.2e}"


VERDICT_WIDTH = 72


def verdict(row: Row, width: int | None = VERDICT_WIDTH) -> str:
    """``met`` / ``MISSED`` / ``-``, or ``not run: <reason>`` (cut to ``width`` characters)."""
    if row.not_run is not None:
        text = f"not run: {row.not_run}"
        if width is not None and len(text) > width:
            text = text[: width - 3] + "..."
        return text
    met = row.met
    if met is None:
        return "-" if not row.checks else "n/a"
    return "met" if met else "MISSED"


HEADERS = ("scenario", "metric", "value", "floor", "ratio", "target", "verdict")


def table_lines(rows: Iterable[Row]) -> list[str]:
    """The results as a plain-text table (also valid Markdown)."""
    body: list[tuple[str, ...]] = []
    for row in rows:
        value = "-" if row.not_run else f"{fmt_number(row.value)} {row.unit}".strip()
        floor = "-" if row.floor is None else fmt_number(row.floor)
        if row.floor_label and row.floor is not None:
            floor = f"{floor} ({row.floor_label})"
        body.append(
            (
                row.scenario,
                row.metric,
                value,
                floor,
                fmt_number(row.ratio),
                "; ".join(c.describe() for c in row.checks) or "-",
                verdict(row),
            )
        )
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(HEADERS)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(HEADERS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in body)
    return out


def notes_lines(rows: Iterable[Row]) -> list[str]:
    out: list[str] = []
    said: set[tuple[str, str]] = set()
    for row in rows:
        full = verdict(row, None)
        if row.not_run is not None and verdict(row) != full and (row.scenario, full) not in said:
            said.add((row.scenario, full))
            out.append(f"- {row.scenario}: {full}")
        for note in row.notes:
            out.append(f"- {row.scenario} / {row.metric}: {note}")
    return out


def write_results(path: Path, rows: Sequence[Row], meta: dict[str, Any]) -> None:
    payload = {"meta": meta, "rows": [r.to_dict() for r in rows]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")


class Stopwatch:
    """``with Stopwatch() as sw: ...; sw.seconds``: wall time of a block (monotonic)."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
