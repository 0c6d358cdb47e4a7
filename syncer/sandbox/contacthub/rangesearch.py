"""Customer search by bisection when the query bounds the sort property by date-time.

A backfill pages through customers with ``registeredAt`` ranges sorted by ``registeredAt``;
testing every stored customer per page would cost seconds per page at 1,000,000 customers.
When every non-null value of the sort property is a canonical timestamp
(``YYYY-MM-DDTHH:MM:SS.mmm+0000``, which :mod:`.query` compares as text), the customers matching
such a range are one contiguous run of the sorted id list, found by bisection. The rest of the
query (if any) is still tested by the caller on that run only, so answers are the linear
evaluator's (``tests/sandbox/test_contacthub_rangesearch.py`` checks it).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from .query import canonical, is_canonical, parse_instant

# (canonical text, inclusive)
Bound = tuple[str, bool]
_LOW_OPS = {"GT": False, "GTE": True}
_HIGH_OPS = {"LT": False, "LTE": True}


@dataclass(frozen=True)
class Range:
    """Bounds on one property; ``exact``: the query says nothing but these bounds."""

    low: Bound | None
    high: Bound | None
    exact: bool


def _tighter(a: Bound | None, b: Bound | None, low: bool) -> Bound | None:
    if a is None or b is None:
        return a or b
    if a[0] != b[0]:
        return max(a, b) if low else min(a, b)
    return (a[0], a[1] and b[1])  # same instant: exclusive wins


def _instant(value: Any) -> str | None:
    moment = parse_instant(value)
    return None if moment is None else canonical(moment)


class _Collector:
    """Walks the AND-structure of a query, collecting bounds on ``prop``."""

    def __init__(self, prop: str) -> None:
        self.prop = prop
        self.low: Bound | None = None
        self.high: Bound | None = None
        self.exact = True

    def add(self, low: Bound | None, high: Bound | None) -> None:
        self.low = _tighter(self.low, low, low=True)
        self.high = _tighter(self.high, high, low=False)

    def query(self, node: Any) -> None:
        if node.get("type") == "combined" and node.get("conjunction") == "INTERSECT":
            for part in node["queries"]:
                self.query(part)
        elif node.get("type") == "simple":
            self.condition(node["are"]["condition"])
        else:
            self.exact = False

    def condition(self, cond: Any) -> None:
        if cond.get("type") == "composite" and cond.get("conjunction") == "and":
            for part in cond["conditions"]:
                self.condition(part)
        elif not (cond.get("type") == "atomic" and self.atomic(cond)):
            self.exact = False

    def atomic(self, cond: dict[str, Any]) -> bool:
        """Take the bounds of a condition on ``prop`` with date-time values; False otherwise."""
        op = cond.get("operator")
        if cond.get("attribute") != self.prop or "value" not in cond:
            return False
        raw = cond["value"]  # compile_query checked its shape (a pair for BETWEEN)
        if op in ("BETWEEN", "EQUALS"):
            pair = raw if op == "BETWEEN" else [raw, raw]
            low, high = _instant(pair[0]), _instant(pair[1])
            if low is None or high is None:
                return False
            self.add((low, True), (high, True))
            return True
        text = _instant(raw)
        if text is None or (op not in _LOW_OPS and op not in _HIGH_OPS):
            return False
        if op in _LOW_OPS:
            self.add((text, _LOW_OPS[op]), None)
        else:
            self.add(None, (text, _HIGH_OPS[op]))
        return True


def query_range(query_text: str, prop: str) -> Range | None:
    """The date-time bounds a (valid) query puts on ``prop``; None when it puts none."""
    found = _Collector(prop)
    found.query(orjson.loads(query_text)["query"])
    if found.low is None and found.high is None:
        return None
    return Range(found.low, found.high, found.exact)


def sort_keys(values: Iterable[Any]) -> list[str] | None:
    """The keyed prefix of a property's values in ascending sort order (nulls last), or None
    when a non-null value is not a canonical timestamp (text order would not be time order)."""
    keys: list[str] = []
    for value in values:
        if value is None or value == []:
            break
        if not is_canonical(value):
            return None
        keys.append(value)
    return keys


def run_of(keys: list[str], bounds: Range, desc: bool) -> tuple[int, int]:
    """``[start, end)`` of the matching run in the sorted ids (ascending or descending).

    The descending list holds the same groups of equal keys in reverse order, so the run is
    mirrored; nulls come last in both.
    """
    low, high = bounds.low, bounds.high
    start = 0 if low is None else (bisect_left if low[1] else bisect_right)(keys, low[0])
    end = len(keys) if high is None else (bisect_right if high[1] else bisect_left)(keys, high[0])
    end = max(start, end)
    return (len(keys) - end, len(keys) - start) if desc else (start, end)
