"""Turn pydantic's errors into readable config issues with user-facing key paths.

Discriminated unions put their tag into pydantic's error location
(``targets.nrs.360nrs.rate_limit``); the path here follows the YAML document instead, so
users only ever see keys they wrote (``targets.nrs.rate_limit``).
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from syncer.config.issues import KeyPath
from syncer.config.models import (
    TARGET_MODELS,
    ContacthubSourceConfig,
    EngineConfig,
    MetricsConfig,
    Np6ImportConfig,
    PipelineConfig,
    StateConfig,
    SyncerConfig,
    WhenConfig,
)
from syncer.config.target_rules import known_target_types

__all__ = ["pydantic_issues"]

_SECTIONS: dict[str, type[BaseModel]] = {
    "state": StateConfig,
    "source": ContacthubSourceConfig,
    "metrics": MetricsConfig,
    "engine": EngineConfig,
}


def _document_path(loc: tuple[int | str, ...], data: Any, keep_last: bool) -> KeyPath:
    """Keep the parts of ``loc`` that exist in the document (plus a missing last key)."""
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            path.append(part)
        elif keep_last and index == len(loc) - 1:
            path.append(part)
    return tuple(path)


def _get(data: Any, path: KeyPath) -> Any:
    node = data
    for part in path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _model_at(path: KeyPath, data: Any) -> type[BaseModel] | None:
    """The model that validates the mapping at ``path``, if the document says which."""
    match path:
        case ():
            return SyncerConfig
        case (str(section),) if section in _SECTIONS:
            return _SECTIONS[section]
        case ("sources", str()):
            return ContacthubSourceConfig
        case ("targets", str()):
            target = _get(data, path)
            kind = target.get("type") if isinstance(target, dict) else None
            return TARGET_MODELS.get(kind) if isinstance(kind, str) else None
        case ("targets", str(), "import"):
            return Np6ImportConfig
        case ("pipelines", int()):
            return PipelineConfig
        case ("pipelines", int(), "when"):
            return WhenConfig
    return None


def _unknown_key(path: KeyPath, data: Any) -> str:
    model = _model_at(path[:-1], data)
    key = str(path[-1])
    if model is None:
        return "unknown key"
    allowed = [info.alias or name for name, info in model.model_fields.items()]
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return f"unknown key; allowed keys: {', '.join(allowed)}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _message(err: ErrorDetails, path: KeyPath, data: Any) -> str:
    kind, given = err["type"], err.get("input")
    ctx = err.get("ctx") or {}
    shown = given if isinstance(given, str | int | float | bool) else None
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(path, data)
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if path == ("version",) and kind == "literal_error":
        return f"unsupported config version {given!r}; this syncer reads version 1"
    if kind == "string_pattern_mismatch" and len(path) == 3 and path[-1] == "name":
        return f"invalid pipeline name {given!r}: use lower-case letters, digits, '-' and '_'"
    if kind == "string_pattern_mismatch" and len(path) == 2 and path[0] == "sources":
        return (
            f"invalid source name {path[1]!r}: use lower-case letters, digits, '-' and '_' "
            "(at most 40)"
        )
    if kind == "string_pattern_mismatch" and path == ("metrics", "address"):
        return f"invalid address {given!r}: use host:port, e.g. 127.0.0.1:9464"
    message = _lower_first(err["msg"])
    return f"{message}, got {shown!r}" if shown is not None else message


def pydantic_issues(exc: ValidationError, data: Any) -> list[tuple[KeyPath, str]]:
    """Every error in ``exc`` as (document key path, message)."""
    issues: list[tuple[KeyPath, str]] = []
    known = ", ".join(known_target_types())
    for err in exc.errors(include_url=False):
        kind = err["type"]
        path = _document_path(err["loc"], data, keep_last=kind == "missing")
        if kind == "union_tag_invalid":
            tag = (err.get("ctx") or {}).get("tag")
            issues.append(((*path, "type"), f"unknown target type '{tag}'; known types: {known}"))
        elif kind == "union_tag_not_found":
            issues.append(((*path, "type"), f"required key is missing; known types: {known}"))
        else:
            issues.append((path, _message(err, path, data)))
    return issues
