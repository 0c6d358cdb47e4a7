"""Dotted-path lookups in JSON-like documents: ``get_path(doc, "base.contacts.email")``.

A path walks mappings only; lists are not indexed, so a path through a list gives ``None``.
Compile a path once with :func:`compile_path` when it is looked up many times.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

__all__ = ["PathGetter", "compile_path", "get_path", "is_empty"]

PathGetter = Callable[[Mapping[str, Any] | None], Any]


@lru_cache(maxsize=4096)
def compile_path(path: str) -> PathGetter:
    """A function returning the value at ``path`` in a document, or ``None`` if absent."""
    parts = tuple(path.split("."))

    def getter(doc: Mapping[str, Any] | None) -> Any:
        value: Any = doc
        for part in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return getter


def get_path(doc: Mapping[str, Any] | None, path: str) -> Any:
    """The value at dotted ``path`` in ``doc``, or ``None`` when any step is missing."""
    return compile_path(path)(doc)


def is_empty(value: Any) -> bool:
    """``None``, blank strings and empty lists/mappings are empty; ``0`` and ``False`` are not."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict | Mapping):
        return len(value) == 0
    return False
