"""The Jinja environment that renders mapping templates, and the checks the config uses.

* Sandboxed, autoescape off (values go to APIs, not HTML).
* A list or an object printed by ``{{ }}`` is an :class:`InvalidRecord` (Jinja would print it
  as Python source, ``['a@b.c']``, and that would be sent as the value).
* A missing path renders as ``""``, never an error, and so does a ``null`` value: both
  are "undefined" here, so ``default`` applies to them and ``lower`` gives ``""``.
* On a mapping, ``a.b`` means the key ``b`` only, never a dict method (``extended.items``
  is the workspace property called ``items``).
* Templates are compiled once per distinct source text and cached.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from syncer.mapping.errors import InvalidRecord
from syncer.mapping.filters import FILTERS, collection_kind

__all__ = ["ENV", "compile_template", "is_template", "render_name", "template_problems"]


class _Outputs:
    """What the ``{{ }}`` expressions of one render printed: how many, how many not blank."""

    __slots__ = ("filled", "printed")

    def __init__(self) -> None:
        self.printed = 0
        self.filled = 0


_OUTPUTS: ContextVar[_Outputs | None] = ContextVar("mapping_template_outputs", default=None)


def _finalize(value: Any) -> Any:
    kind = collection_kind(value)
    if kind is not None:  # Jinja would print it as Python source: not a value for an API
        raise InvalidRecord(f"expected a single value, got {kind}")
    out = "" if value is None else value
    seen = _OUTPUTS.get()
    if seen is not None:
        seen.printed += 1
        if str(out).strip():
            seen.filled += 1
    return out


class _DocumentEnvironment(SandboxedEnvironment):
    """Sandboxed environment where mapping keys win over attributes and null is undefined."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Keys of a mapping win, and only keys: extended.items is data, never dict.items.
        is_doc = isinstance(obj, Mapping)
        value = obj.get(attribute) if is_doc else super().getattr(obj, attribute)
        if value is None:
            return self.undefined(obj=obj, name=attribute)
        return value

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # Fail loudly: a chainable undefined would silently render "" instead.
        kind = type(obj).__name__
        raise SecurityError(f"access to attribute {attribute!r} of {kind!r} object is unsafe")

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        if value is None:
            return self.undefined(obj=obj, name=str(argument))
        return value


ENV = _DocumentEnvironment(
    undefined=ChainableUndefined,
    autoescape=False,
    finalize=_finalize,
    keep_trailing_newline=False,
)
ENV.filters.update(FILTERS)


def is_template(text: str) -> bool:
    """Whether ``text`` is a Jinja template rather than a plain string or path."""
    return "{{" in text or "{%" in text or "{#" in text


@lru_cache(maxsize=2048)
def compile_template(source: str) -> Template:
    """The compiled template for ``source`` (cached; raises TemplateSyntaxError)."""
    return ENV.from_string(source)


def render_name(template: Template, doc: Mapping[str, Any]) -> str | None:
    """A group or list name rendered from ``doc``, or None when there is none to give.

    None when the text is empty or blank, and when the template prints values and every one
    of them is missing (``"Country {{ base.address.country | upper }}"`` with ``address:
    null`` is no group, not the group ``Country``). A template that prints nothing (plain
    text, ``{% if %}`` blocks only) is taken as it renders.
    """
    seen = _Outputs()
    token = _OUTPUTS.set(seen)
    try:
        text = template.render(doc).strip()
    finally:
        _OUTPUTS.reset(token)
    if not text or (seen.printed and not seen.filled):
        return None
    return text


def _unknown(kind: str, name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {kind} '{name}'{hint}"


def template_problems(source: str) -> list[str]:
    """What is wrong with a template: syntax errors, unknown filters or tests. Empty if ok."""
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError as exc:
        return [f"template syntax error: {exc.message} (line {exc.lineno})"]
    problems: list[str] = []
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        if isinstance(node, nodes.Filter) and node.name not in ENV.filters:
            problems.append(_unknown("filter", node.name, ENV.filters))
        elif isinstance(node, nodes.Test) and node.name not in ENV.tests:
            problems.append(_unknown("test", node.name, ENV.tests))
    if not problems:
        try:
            compile_template(source)
        except TemplateSyntaxError as exc:
            problems.append(f"template error: {exc.message} (line {exc.lineno})")
    return list(dict.fromkeys(problems))
