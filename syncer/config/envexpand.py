"""``${VAR}`` and ``${VAR:-default}`` expansion in every string value of a parsed config.

Like a shell, a default applies when the variable is unset or empty; ``$$`` is a literal
``$``. The expansion remembers, per key path, which variables were referenced and how each
was resolved, so secrets can be required to come from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from syncer.config.issues import KeyPath

__all__ = ["Expansion", "Reference", "expand"]

_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_INNER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


@dataclass(frozen=True)
class Reference:
    """One ``${...}`` reference: the variable and how it resolved."""

    name: str
    resolved: Literal["env", "default", "unset"]


@dataclass
class Expansion:
    """The expanded document plus what was found on the way."""

    data: Any
    issues: list[tuple[KeyPath, str]] = field(default_factory=list)
    references: dict[KeyPath, list[Reference]] = field(default_factory=dict)

    @property
    def unset_paths(self) -> set[KeyPath]:
        """Key paths whose value used a variable that is not set (and had no default)."""
        return {
            path
            for path, refs in self.references.items()
            if any(r.resolved == "unset" for r in refs)
        }


def _expand_string(text: str, path: KeyPath, env: Mapping[str, str], out: Expansion) -> str:
    refs: list[Reference] = []

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$$":
            return "$"
        inner = match.group(1)
        parsed = _INNER.fullmatch(inner) if inner is not None else None
        if parsed is None:
            shown = token if inner is not None else text[match.start() :]
            out.issues.append(
                (
                    path,
                    f"malformed environment reference '{shown}': use ${{NAME}} or "
                    "${NAME:-default}",
                )
            )
            refs.append(Reference(shown, "unset"))  # reported here; no follow-up errors
            return ""
        name, default = parsed.group(1), parsed.group(2)
        value = env.get(name)
        if default is not None and not value:
            refs.append(Reference(name, "default"))
            return default
        if value is None:
            refs.append(Reference(name, "unset"))
            out.issues.append((path, f"environment variable {name} is not set"))
            return ""
        refs.append(Reference(name, "env"))
        return value

    result = _TOKEN.sub(substitute, text)
    if refs:
        out.references[path] = refs
    return result


def expand(data: Any, env: Mapping[str, str]) -> Expansion:
    """Expand references in every string value (not in keys) of ``data``."""
    out = Expansion(data=None)

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, dict):
            return {key: walk(value, (*path, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value, (*path, index)) for index, value in enumerate(node)]
        if isinstance(node, str) and "$" in node:
            return _expand_string(node, path, env, out)
        return node

    out.data = walk(data, ())
    return out
