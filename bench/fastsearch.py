"""An indexed answer to the backfill's search, for the bench's Contacthub simulator only.

The simulator answers a customer search by testing every stored customer against the query
(about 0.5 s per query at 100,000 customers), and a backfill asks one new query per page of
50 (its cursor moves), so a 1,000,000-customer backfill would take days against it. The
backfill's queries are ``registeredAt`` ranges sorted by ``registeredAt`` ascending: here the
matching customers are a contiguous run of the simulator's own sorted id list, found by
bisection. Any other search (or data whose ``registeredAt`` values are not all in the
canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ`` form, where text order is time order) takes the
simulator's own path. Conditions besides the range are still tested, on the run only, with
the simulator's own predicate, so answers are identical (``tests/bench`` checks it).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

import orjson

from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.contacthub.query import canonical, compile_query, parse_instant
from syncer.sandbox.contacthub.store import WorkspaceStore

PROP = "registeredAt"
CANONICAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
Bounds = tuple[tuple[str, bool] | None, tuple[str, bool] | None, bool]


def range_of(query_text: str) -> Bounds | None:
    """``(low, high, others)`` of a query that is an AND holding ``registeredAt`` bounds.

    ``low``/``high`` are ``(canonical text, inclusive)``; ``others`` says whether the query
    has further conditions. None when the query is not of that shape.
    """
    try:
        wrapper = orjson.loads(query_text)
        cond = wrapper["query"]["are"]["condition"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(cond, dict):
        return None
    if cond.get("type") == "composite":
        if str(cond.get("conjunction", "")).lower() != "and":
            return None
        conds = cond.get("conditions") or []
    else:
        conds = [cond]
    low: tuple[str, bool] | None = None
    high: tuple[str, bool] | None = None
    others = False
    for c in conds:
        if not isinstance(c, dict) or c.get("type") != "atomic" or c.get("attribute") != PROP:
            others = True
            continue
        op = c.get("operator")
        moment = parse_instant(c.get("value"))
        if moment is None or op not in ("GTE", "GT", "LT", "LTE"):
            return None
        text = canonical(moment)
        if moment.microsecond % 1000:  # finer than the canonical form can say
            return None
        if op in ("GTE", "GT"):
            if low is not None:
                return None
            low = (text, op == "GTE")
        else:
            if high is not None:
                return None
            high = (text, op == "LTE")
    if low is None and high is None:
        return None
    return low, high, others


class IndexedStore(WorkspaceStore):
    """:class:`WorkspaceStore` whose search cache answers range queries by bisection."""

    _keys_for: tuple[int, list[str] | None] = (0, None)

    def _keys(self, ids: list[str]) -> list[str] | None:
        """``registeredAt`` of each id of the sorted list (None if not all canonical)."""
        marker, keys = self._keys_for
        if marker == id(ids) and keys is not None:
            return keys
        out: list[str] = []
        for cid in ids:
            value = self.customers[cid].get(PROP)
            if value is None:
                break  # nulls sort last: the keyed part ends here
            if not isinstance(value, str) or not CANONICAL.match(value):
                return None
            out.append(value)
        self._keys_for = (id(ids), out)
        return out

    def cached_search(self, key: tuple[Any, ...], compute: Callable[[], list[str]]) -> list[str]:
        fast = self._range_search(key)
        if fast is not None:
            return fast
        return super().cached_search(key, compute)

    def _range_search(self, key: tuple[Any, ...]) -> list[str] | None:
        node, prop, desc, external_id, query_text = key
        if prop != PROP or desc or external_id is not None or not query_text:
            return None
        bounds = range_of(query_text)
        if bounds is None:
            return None
        ids = self.sorted_customer_ids(node, PROP, False)
        keys = self._keys(ids)
        if keys is None:
            return None
        low, high, others = bounds
        start = 0 if low is None else (bisect_left if low[1] else bisect_right)(keys, low[0])
        end = (
            len(keys) if high is None else (bisect_right if high[1] else bisect_left)(keys, high[0])
        )
        run = ids[start : max(start, end)]
        if others:
            pred = compile_query(query_text)
            run = [cid for cid in run if pred(self.customers[cid])]
        return run


class IndexedContacthub(ContacthubSimulator):
    """The Contacthub simulator with :class:`IndexedStore` workspaces."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for store in self.workspaces.values():
            store.__class__ = IndexedStore
