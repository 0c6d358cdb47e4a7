"""Pipeline conditions (``when``) compiled into fast predicates over documents.

Semantics (all given conditions must hold):

* ``consent: a.b.c``: ``consents.a.b.c.status`` is ``true`` and ``objection`` is not ``true``;
* ``present``: every path is non-empty (see :func:`~syncer.mapping.paths.is_empty`);
* ``tags_any`` / ``tags_all``: over ``tags.auto + tags.manual``;
* ``match: {path: value | [values]}``: the value equals one of the values (type-aware:
  ``1``, ``true`` and ``"1"`` differ); when the document holds a list, any element may match.

Consent and tags belong to the customer: in event pipelines they are read from the event's
``customer`` document. ``present`` and ``match`` paths are read from the document as given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from syncer.config.models import Scalar, WhenConfig
from syncer.mapping.paths import compile_path, is_empty

__all__ = ["Condition", "compile_when", "values_equal"]

Condition = Callable[[Mapping[str, Any]], bool]


def values_equal(actual: Any, expected: Scalar) -> bool:
    """Type-aware equality: booleans only equal booleans, numbers compare numerically."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return actual == expected
    if actual is None or expected is None:
        return actual is None and expected is None
    return type(actual) is type(expected) and bool(actual == expected)


def _tag_set(doc: Mapping[str, Any], prefix: str) -> set[str]:
    tags: set[str] = set()
    for kind in ("auto", "manual"):
        values = compile_path(f"{prefix}tags.{kind}")(doc)
        if isinstance(values, list):
            tags.update(v for v in values if isinstance(v, str))
    return tags


def _consent(path: str) -> Condition:
    getter = compile_path(path)

    def check(doc: Mapping[str, Any]) -> bool:
        leaf = getter(doc)
        return (
            isinstance(leaf, Mapping)
            and leaf.get("status") is True
            and leaf.get("objection") is not True
        )

    return check


def _present(path: str) -> Condition:
    getter = compile_path(path)
    return lambda doc: not is_empty(getter(doc))


def _match(path: str, accepted: Scalar | list[Scalar]) -> Condition:
    getter = compile_path(path)
    options = accepted if isinstance(accepted, list) else [accepted]

    def check(doc: Mapping[str, Any]) -> bool:
        value = getter(doc)
        candidates = value if isinstance(value, list) and value else [value]
        return any(values_equal(c, o) for c in candidates for o in options)

    return check


def compile_when(when: WhenConfig | None, entity: str) -> Condition:
    """A predicate implementing ``when`` for a pipeline of the given entity kind."""
    if when is None:
        return lambda doc: True
    prefix = "customer." if entity == "event" else ""
    checks: list[Condition] = []
    if when.consent:
        checks.append(_consent(f"{prefix}consents.{when.consent}"))
    checks.extend(_present(path) for path in when.present)
    if when.tags_any:
        wanted_any = frozenset(when.tags_any)
        checks.append(lambda doc: not wanted_any.isdisjoint(_tag_set(doc, prefix)))
    if when.tags_all:
        wanted_all = frozenset(when.tags_all)
        checks.append(lambda doc: wanted_all <= _tag_set(doc, prefix))
    for path, accepted in when.match.items():
        checks.append(_match(path, accepted))
    if len(checks) == 1:
        return checks[0]
    return lambda doc: all(check(doc) for check in checks)
