"""The ``query`` filter of customer search (SDK JSON format), sorting and field projection.

Format (from the official SDKs)::

    {"name": "query", "query": <query>}
    <query>     = {"type": "simple", "name": "query", "are": {"condition": <condition>}}
                | {"type": "combined", "name": "query", "conjunction": "INTERSECT"|"UNION",
                   "queries": [<query>, ...]}
    <condition> = {"type": "atomic", "attribute": "base.contacts.email", "operator": "EQUALS",
                   "value": ...}
                | {"type": "composite", "conjunction": "and"|"or", "conditions": [...]}

Semantics (Elasticsearch-like, as the real search is): an array attribute matches when any
element matches; missing, ``null`` and ``[]`` are null; values that both parse as ISO dates
compare as instants (a bare date is midnight UTC); ``BETWEEN`` is inclusive at both ends; a
comparison between incomparable types is simply false. Anything else malformed raises
:class:`QueryError` (the API answers 400).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

Predicate = Callable[[dict[str, Any]], bool]
_MISSING = object()
_VALUE_OPS = {"EQUALS", "NOT_EQUALS", "GT", "GTE", "LT", "LTE", "IN", "NOT_IN", "BETWEEN"}
_NULL_OPS = {"IS_NULL", "IS_NOT_NULL"}


class QueryError(ValueError):
    """A malformed ``query``, ``sort`` or ``fields`` parameter."""


def get_path(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted path, or ``None`` when any segment is missing."""
    cur: Any = doc
    for seg in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(seg)
        if cur is None:
            return None
    return cur


def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 date or date-time as an aware datetime, else ``None``."""
    if not isinstance(value, str) or len(value) < 10 or value[4:5] != "-":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Instant(NamedTuple):
    """A date-time query literal: the instant and its canonical text (``...T..:..:...mmm+0000``)."""

    moment: datetime
    text: str


CANONICAL_SUFFIX = "+0000"


def canonical(moment: datetime) -> str:
    """The API's own spelling, ``2017-06-29T20:23:09.215+0000`` (milliseconds, ``+0000``; every
    fixture of the official SDKs). Fixed width and always UTC, so text order is time order."""
    m = moment.astimezone(UTC)
    # explicit widths: strftime's %Y gives "1", not "0001", for year 1 on glibc
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}{CANONICAL_SUFFIX}"
    )


def is_canonical(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 28
        and value.endswith(CANONICAL_SUFFIX)
        and value[10] == "T"
        and value[19] == "."
    )


def _comparable(stored: Any, wanted: Any) -> tuple[Any, Any] | None:
    if isinstance(wanted, Instant):
        if is_canonical(stored):  # stored timestamps: compare as text, no parsing
            return stored, wanted.text
        inst = parse_instant(stored)
        return None if inst is None else (inst, wanted.moment)
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return (stored, wanted) if type(stored) is type(wanted) else None
    if isinstance(stored, int | float) and isinstance(wanted, int | float):
        return stored, wanted
    if isinstance(stored, str) and isinstance(wanted, str):
        return stored, wanted
    return None


def _norm(value: Any) -> Any:
    """Query literal -> comparison form (ISO strings become instants)."""
    inst = parse_instant(value)
    return Instant(inst, canonical(inst)) if inst is not None else value


def _equal(stored: Any, wanted: Any) -> bool:
    pair = _comparable(stored, wanted)
    return pair is not None and pair[0] == pair[1]


def _compile_atomic(cond: dict[str, Any]) -> Predicate:
    attr, op = cond.get("attribute"), cond.get("operator")
    if not isinstance(attr, str) or not attr:
        raise QueryError("atomic condition needs a non-empty 'attribute'")
    if op in _NULL_OPS:
        want_null = op == "IS_NULL"
        return lambda doc: (get_path(doc, attr) in (None, [])) is want_null
    if op not in _VALUE_OPS:
        raise QueryError(f"unknown operator {op!r}")
    if "value" not in cond:
        raise QueryError(f"operator {op} needs a 'value'")
    raw = cond["value"]
    if op in ("IN", "NOT_IN") and not isinstance(raw, list | dict):
        raw = [raw]  # both official SDKs send IN with a scalar and expect results
    if op in ("IN", "NOT_IN", "BETWEEN"):
        if not isinstance(raw, list) or not raw:
            raise QueryError(f"operator {op} needs a non-empty list value")
        if op == "BETWEEN" and len(raw) != 2:
            raise QueryError("operator BETWEEN needs a [from, to] value")
    elif isinstance(raw, list | dict):
        raise QueryError(f"operator {op} needs a scalar value")

    def test(one: Callable[[Any], bool], negate: bool = False) -> Predicate:
        def pred(doc: dict[str, Any]) -> bool:
            value = get_path(doc, attr)
            values = value if isinstance(value, list) else ([] if value is None else [value])
            hit = any(one(v) for v in values)
            return not hit if negate else hit

        return pred

    if op in ("EQUALS", "NOT_EQUALS"):
        wanted = _norm(raw)
        return test(lambda v: _equal(v, wanted), negate=op == "NOT_EQUALS")
    if op in ("IN", "NOT_IN"):
        options = [_norm(x) for x in raw]
        return test(lambda v: any(_equal(v, o) for o in options), negate=op == "NOT_IN")
    if op == "BETWEEN":
        low, high = _norm(raw[0]), _norm(raw[1])

        def between(v: Any) -> bool:
            a, b = _comparable(v, low), _comparable(v, high)
            return a is not None and b is not None and a[1] <= a[0] and b[0] <= b[1]

        return test(between)
    wanted = _norm(raw)
    cmp: dict[str, Callable[[Any, Any], bool]] = {
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
    }
    fn = cmp[op]

    def ordered(v: Any) -> bool:
        pair = _comparable(v, wanted)
        return pair is not None and fn(pair[0], pair[1])

    return test(ordered)


def _compile_condition(cond: Any) -> Predicate:
    if not isinstance(cond, dict):
        raise QueryError("a condition must be an object")
    kind = cond.get("type")
    if kind == "atomic":
        return _compile_atomic(cond)
    if kind == "composite":
        conj, parts = cond.get("conjunction"), cond.get("conditions")
        if conj not in ("and", "or"):
            raise QueryError(f"composite conjunction must be 'and' or 'or', not {conj!r}")
        if not isinstance(parts, list) or not parts:
            raise QueryError("composite condition needs a non-empty 'conditions' list")
        preds = [_compile_condition(p) for p in parts]
        if conj == "and":
            return lambda doc: all(p(doc) for p in preds)
        return lambda doc: any(p(doc) for p in preds)
    raise QueryError(f"unknown condition type {kind!r}")


def _compile_query(query: Any) -> Predicate:
    if not isinstance(query, dict):
        raise QueryError("a query must be an object")
    kind = query.get("type")
    if kind == "simple":
        are = query.get("are")
        if not isinstance(are, dict) or "condition" not in are:
            raise QueryError("simple query needs 'are': {'condition': ...}")
        return _compile_condition(are["condition"])
    if kind == "combined":
        conj, parts = query.get("conjunction"), query.get("queries")
        if conj not in ("INTERSECT", "UNION"):
            raise QueryError(f"combined conjunction must be INTERSECT or UNION, not {conj!r}")
        if not isinstance(parts, list) or not parts:
            raise QueryError("combined query needs a non-empty 'queries' list")
        preds = [_compile_query(p) for p in parts]
        if conj == "INTERSECT":
            return lambda doc: all(p(doc) for p in preds)
        return lambda doc: any(p(doc) for p in preds)
    raise QueryError(f"unknown query type {kind!r}")


def compile_query(text: str) -> Predicate:
    """Parse the ``query`` parameter (a JSON string) into a predicate over customers."""
    try:
        wrapper = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise QueryError(f"query is not valid JSON: {exc}") from None
    if not isinstance(wrapper, dict) or "query" not in wrapper:
        raise QueryError("query must be {'name': 'query', 'query': {...}}")
    return _compile_query(wrapper["query"])


def parse_sort(text: str | None, default: tuple[str, bool]) -> tuple[str, bool]:
    """``"registeredAt,desc"`` -> ``("registeredAt", True)``; direction defaults to asc."""
    if not text:
        return default
    prop, _, direction = text.partition(",")
    direction = direction.strip().lower() or "asc"
    prop = prop.strip()
    if not prop or direction not in ("asc", "desc") or not all(s for s in prop.split(".")):
        raise QueryError(f"bad sort {text!r}: expected '<property>,<asc|desc>'")
    return prop, direction == "desc"


def sort_ids(docs: dict[str, dict[str, Any]], prop: str, desc: bool) -> list[str]:
    """Ids of ``docs`` sorted by ``prop`` (ties by id ascending), nulls last either way."""
    present: list[tuple[int, Any, str]] = []
    nulls: list[str] = []
    for doc_id, doc in docs.items():
        value = get_path(doc, prop)
        if value is None or value == []:
            nulls.append(doc_id)
        elif isinstance(value, bool | int | float):
            present.append((0, value, doc_id))
        elif isinstance(value, str):
            present.append((1, value, doc_id))
        else:
            present.append((2, orjson.dumps(value, option=orjson.OPT_SORT_KEYS), doc_id))
    present.sort()
    if desc:
        present.sort(key=lambda t: (t[0], t[1]), reverse=True)  # stable: ties keep id order
    nulls.sort()
    return [t[2] for t in present] + nulls


def project(doc: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Only the dotted ``paths`` of ``doc`` that exist (plus ``id``), keeping the nesting."""
    out: dict[str, Any] = {"id": doc.get("id")}
    for path in paths:
        segs = path.split(".")
        cur: Any = doc
        for seg in segs:
            if not isinstance(cur, dict) or seg not in cur:
                break
            cur = cur[seg]
        else:
            target = out
            for seg in segs[:-1]:
                nxt = target.setdefault(seg, {})
                if not isinstance(nxt, dict):
                    break
                target = nxt
            else:
                target[segs[-1]] = cur
    return out
