"""Rules that span sections, run after the models validate (on whatever parts did).

Pipelines are checked against their target's type (rules in :mod:`.target_rules`), their
templates are compiled, and secrets are checked to come from the environment.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from syncer.config.contacthub import KNOWN_CONSENTS, PATH_RE
from syncer.config.envexpand import Expansion, expand
from syncer.config.issues import KeyPath
from syncer.config.models import PipelineConfig, field_source
from syncer.config.secrets import iter_secrets
from syncer.config.target_rules import RULES, TargetRules
from syncer.mapping.templates import is_template, template_problems

__all__ = [
    "check_pipelines",
    "check_secrets",
    "check_source_references",
    "check_state_url",
    "check_target_references",
]

Issues = list[tuple[KeyPath, str]]


def _supporting(feature: str) -> str:
    return ", ".join(sorted(t for t, r in RULES.items() if getattr(r, feature)))


def _check_template(source: str, path: KeyPath, issues: Issues) -> None:
    if is_template(source):
        issues.extend((path, problem) for problem in template_problems(source))


def _check_when(p: PipelineConfig, base: KeyPath, issues: Issues) -> None:
    if p.when is None:
        return
    if p.when.consent is not None and p.when.consent not in KNOWN_CONSENTS:
        issues.append(
            (
                (*base, "when", "consent"),
                f"unknown consent '{p.when.consent}'; known consents: {', '.join(KNOWN_CONSENTS)}",
            )
        )
    paths = [((*base, "when", "present", i), path) for i, path in enumerate(p.when.present)]
    paths += [((*base, "when", "match", path), path) for path in p.when.match]
    for where, path in paths:
        if not PATH_RE.fullmatch(path):
            issues.append((where, f"invalid path '{path}': use a dotted path like base.firstName"))


def _check_fields(
    p: PipelineConfig, base: KeyPath, rules: TargetRules | None, issues: Issues
) -> None:
    for name, given in p.fields.items():
        spec = field_source(given)
        where = (*base, "fields", name)
        if is_template(spec):
            _check_template(spec, where, issues)
        elif not PATH_RE.fullmatch(spec):
            issues.append(
                (
                    where,
                    f"'{spec}' is neither a dotted path nor a template; "
                    f"write a constant as {{{{ '{spec}' }}}}",
                )
            )
        if rules is not None and not rules.accepts_field(name):
            issues.append(
                (
                    where,
                    f"field '{name}' is not accepted by {rules.type} targets; "
                    f"accepted: {rules.describe_fields()}",
                )
            )
    if rules is None:
        return
    if rules.key_fields and not any(key in p.fields for key in rules.key_fields):
        keys = " or ".join(rules.key_fields)
        issues.append(((*base, "fields"), f"{rules.type} pipelines must map {keys}"))
    if not rules.key_fields and not p.fields:
        issues.append(((*base, "fields"), f"{rules.type} pipelines must map at least one field"))
    for name, needed in rules.field_requires.items():
        if name in p.fields and needed not in p.fields:
            issues.append(
                (
                    (*base, "fields", name),
                    f"{rules.type} needs '{needed}' mapped too when '{name}' is mapped",
                )
            )


def _check_target_features(
    p: PipelineConfig, base: KeyPath, target: str, rules: TargetRules, issues: Issues
) -> None:
    shown = f"target '{target}' is {rules.type}"
    if p.groups and not rules.groups:
        issues.append(
            ((*base, "groups"), f"groups are only for {_supporting('groups')} targets; {shown}")
        )
    if p.list_ is not None and not rules.list_required:
        supported = _supporting("list_required")
        issues.append(((*base, "list"), f"list is only for {supported} targets; {shown}"))
    if p.list_ is None and rules.list_required:
        issues.append(((*base, "list"), f"required for {rules.type} targets: the list name"))
    if p.tag is not None and not rules.tag:
        issues.append(((*base, "tag"), f"tag is only for {_supporting('tag')} targets; {shown}"))
    if p.on_delete not in rules.on_delete:
        issues.append(
            (
                (*base, "on_delete"),
                f"on_delete '{p.on_delete}' is not supported by {rules.type} targets; "
                f"use one of: {', '.join(sorted(rules.on_delete))}",
            )
        )


def check_pipelines(
    pipelines: Iterable[tuple[int, PipelineConfig]],
    target_types: Mapping[str, str | None] | None,
) -> Issues:
    """Cross checks of (index, pipeline) pairs against targets (name to type, None = unknown).

    ``target_types`` is None when the targets section is unusable: target checks are skipped.
    """
    issues: Issues = []
    seen: dict[str, int] = {}
    for index, p in pipelines:
        base: KeyPath = ("pipelines", index)
        if p.name in seen:
            issues.append(
                (
                    (*base, "name"),
                    f"duplicate pipeline name '{p.name}' (also pipelines[{seen[p.name]}])",
                )
            )
        seen.setdefault(p.name, index)
        if p.event_types is not None and p.entity != "event":
            issues.append(((*base, "event_types"), "only for event pipelines (entity: event)"))
        rules = None
        if target_types is not None:
            if p.target not in target_types:
                known = ", ".join(sorted(target_types)) or "(none)"
                issues.append(
                    ((*base, "target"), f"unknown target '{p.target}'; known targets: {known}")
                )
            kind = target_types.get(p.target)
            rules = RULES.get(kind) if kind else None
        _check_when(p, base, issues)
        _check_fields(p, base, rules, issues)
        for i, group in enumerate(p.groups):
            _check_template(group, (*base, "groups", i), issues)
        if p.list_ is not None:
            _check_template(p.list_, (*base, "list"), issues)
        if rules is not None:
            _check_target_features(p, base, p.target, rules, issues)
    return issues


def check_source_references(
    pipelines: Iterable[tuple[int, PipelineConfig]], names: list[str] | None
) -> Issues:
    """Every ``pipelines[i].source`` names a configured source (``names`` None: unknown)."""
    if names is None:
        return []
    issues: Issues = []
    for index, p in pipelines:
        if p.source is None or p.source in names:
            continue
        close = difflib.get_close_matches(p.source, names, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        issues.append(
            (
                ("pipelines", index, "source"),
                f"unknown source '{p.source}'{hint}; known sources: {', '.join(names)}",
            )
        )
    return issues


def check_target_references(
    references: Iterable[tuple[int, str]], target_types: Mapping[str, str | None]
) -> Issues:
    """``(pipeline index, target name)`` pairs naming no target: for pipelines too broken to
    be checked whole, so an unknown target is still reported with their other problems."""
    known = ", ".join(sorted(target_types)) or "(none)"
    return [
        (("pipelines", index, "target"), f"unknown target '{target}'; known targets: {known}")
        for index, target in references
        if target not in target_types
    ]


def check_secrets(sections: Iterable[tuple[KeyPath, BaseModel]], expansion: Expansion) -> Issues:
    """Secrets must come from a set environment variable, not the file or a default."""
    issues: Issues = []
    for base, model in sections:
        for path, secret in iter_secrets(model, base):
            refs = expansion.references.get(path)
            if not refs:
                issues.append(
                    (path, "secrets must come from an environment reference like ${NAME}")
                )
            elif any(r.resolved == "unset" for r in refs):
                continue  # already reported as an unset variable
            elif defaulted := [r.name for r in refs if r.resolved == "default"]:
                issues.append(
                    (
                        path,
                        f"environment variable {defaulted[0]} is not set, and secrets must "
                        "not fall back to a default written in the file",
                    )
                )
            elif not secret.get_secret_value():
                names = ", ".join(r.name for r in refs)
                issues.append((path, f"secret is empty (environment variable {names} is empty)"))
    return issues


# the user-info password of a state.url as written in the file, ${...} references included
_TEMPLATE_PASSWORD = re.compile(r"^[\w+]+://[^:/@]*:(?P<password>(?:\$\{[^}]*\}|[^@])*)@")


def check_state_url(data: Any, expanded: Any, env: Mapping[str, str]) -> Issues:
    """A password put in ``state.url`` through ``${VAR}`` must stay the URL's password once
    expanded: a value holding ``@``, ``/``, ``:``, ``?`` or ``#`` would end it early, and the
    rest of the password would be read as host, port or database (and shown in connection
    errors). Such a value must be percent-encoded. The value is never repeated."""
    template = _get(data, "state", "url")
    url = _get(expanded, "state", "url")
    if not isinstance(template, str) or not isinstance(url, str):
        return []
    written = _TEMPLATE_PASSWORD.match(template)
    if written is None or "${" not in written.group("password"):
        return []
    intended = expand(written.group("password"), env).data
    try:
        actual = make_url(url).password
    except (ArgumentError, ValueError):
        actual = None  # reported by the model's own check
    if isinstance(intended, str) and actual is not None and actual == unquote(intended):
        return []
    names = ", ".join(sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", template))))
    return [
        (
            ("state", "url"),
            f"the password given through ${{{names}}} does not stay the URL's password once "
            "expanded: percent-encode the characters @ / : ? # % in it (e.g. @ as %40)",
        )
    ]


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
