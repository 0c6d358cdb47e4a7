"""Load a config file: YAML, ``${VAR}`` expansion, model validation, cross checks.

Every problem found is collected and raised together as one :class:`ConfigError`, each
with the key path it concerns, so one ``syncer validate`` run shows all of them.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError
from sqlalchemy.engine import make_url

from syncer.config.checks import (
    check_pipelines,
    check_secrets,
    check_source_references,
    check_state_url,
    check_target_references,
)
from syncer.config.envexpand import expand
from syncer.config.issues import ConfigError, ConfigIssue, KeyPath, format_path
from syncer.config.models import (
    BOTH_SOURCE_FORMS,
    DEFAULT_SOURCE,
    NO_SOURCE,
    TARGET_MODELS,
    ContacthubSourceConfig,
    PipelineConfig,
    StateConfig,
    SyncerConfig,
    TargetConfig,
)
from syncer.config.target_rules import RULES
from syncer.config.validation import pydantic_issues
from syncer.config.yamlread import YamlProblem, read_yaml

__all__ = ["CONFIG_ENV_VAR", "ConfigError", "ConfigIssue", "load_config", "resolve_config_path"]

CONFIG_ENV_VAR = "SYNCER_CONFIG"
_TARGET_ADAPTER: TypeAdapter[Any] = TypeAdapter(TargetConfig)


def resolve_config_path(cli_value: str | None, env: Mapping[str, str] | None = None) -> Path:
    """The config path from ``--config``, else from ``$SYNCER_CONFIG``; ConfigError if neither."""
    value = cli_value or (os.environ if env is None else env).get(CONFIG_ENV_VAR)
    if not value:
        issue = ConfigIssue("", f"no config file given: pass --config PATH or set {CONFIG_ENV_VAR}")
        raise ConfigError("", [issue])
    return Path(value)


def _read_text(path: Path, file: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = "file not found"
    except IsADirectoryError:
        message = "is a directory, not a config file"
    except UnicodeDecodeError:
        message = "file is not UTF-8 text"
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
    raise ConfigError(file, [ConfigIssue("", message)])


def _try(model: type[BaseModel], value: Any) -> BaseModel | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _sections(
    cfg: SyncerConfig | None, data: dict[str, Any]
) -> tuple[
    list[tuple[KeyPath, BaseModel]],
    list[tuple[int, PipelineConfig]],
    dict[str, str | None] | None,
]:
    """Secret-bearing sections, pipelines and target types: from ``cfg``, or part by part."""
    if cfg is not None:
        sections: list[tuple[KeyPath, BaseModel]] = [
            (_source_path(data, name), src) for name, src in cfg.sources.items()
        ]
        sections += [(("targets", name), t) for name, t in cfg.targets.items()]
        types: dict[str, str | None] | None = {n: t.type for n, t in cfg.targets.items()}
        return sections, list(enumerate(cfg.pipelines)), types
    sections = []
    if (source := _try(ContacthubSourceConfig, data.get("source"))) is not None:
        sections.append((("source",), source))
    raw_sources = data.get("sources")
    if isinstance(raw_sources, dict):
        for name, raw in raw_sources.items():
            if (source := _try(ContacthubSourceConfig, raw)) is not None:
                sections.append((("sources", name), source))
    raw_targets = data.get("targets")
    types = None
    if isinstance(raw_targets, dict):
        types = {}
        for name, raw in raw_targets.items():
            kind = raw.get("type") if isinstance(raw, dict) else None
            types[name] = kind if isinstance(kind, str) and kind in RULES else None
            with contextlib.suppress(ValidationError):
                sections.append((("targets", name), _TARGET_ADAPTER.validate_python(raw)))
    pipelines: list[tuple[int, PipelineConfig]] = []
    raw_pipelines = data.get("pipelines")
    if isinstance(raw_pipelines, list):
        for index, raw in enumerate(raw_pipelines):
            if isinstance(pipeline := _without_unknown_keys(PipelineConfig, raw), PipelineConfig):
                pipelines.append((index, pipeline))
    return sections, pipelines, types


def _source_path(data: dict[str, Any], name: str) -> KeyPath:
    """Where source ``name`` is written: ``source`` (the single form) or ``sources.<name>``."""
    return ("source",) if "source" in data and name == DEFAULT_SOURCE else ("sources", name)


def _source_names(cfg: SyncerConfig | None, data: dict[str, Any]) -> list[str] | None:
    """The configured source names, or None when the document does not say them."""
    if cfg is not None:
        return list(cfg.sources)
    if "source" in data and "sources" not in data:
        return [DEFAULT_SOURCE]
    raw = data.get("sources")
    return [str(n) for n in raw] if isinstance(raw, dict) and "source" not in data else None


def _source_form_issues(data: dict[str, Any]) -> list[tuple[KeyPath, str]]:
    """Both forms, or neither, at the key path the user looks at."""
    if "source" in data and "sources" in data:
        return [(("sources",), BOTH_SOURCE_FORMS)]
    if "source" not in data and not data.get("sources"):
        return [(("sources",), NO_SOURCE)]
    return []


def _same_streams(data: dict[str, Any]) -> list[tuple[KeyPath, str]]:
    """Two sources reading one workspace node would hold each customer twice."""
    raw = data.get("sources")
    if not isinstance(raw, dict):
        return []
    seen: dict[tuple[str, str], str] = {}
    issues: list[tuple[KeyPath, str]] = []
    for name, src in raw.items():
        if not isinstance(src, dict):
            continue
        nodes = src.get("node_ids") if src.get("node_ids") is not None else [src.get("node_id")]
        for node in nodes if isinstance(nodes, list) else []:
            key = (str(src.get("workspace_id")), str(node))
            if key in seen:
                issues.append(
                    (
                        ("sources", name),
                        f"reads workspace {key[0]} node {key[1]} like source '{seen[key]}': "
                        "each node belongs to one source",
                    )
                )
            else:
                seen[key] = str(name)
    return issues


def _without_unknown_keys(model: type[BaseModel], value: Any) -> BaseModel | None:
    """``value`` validated, else validated once more without its unknown keys (already
    reported): a misspelt key must not hide the pipeline's other problems (an unknown
    target, a bad template), which are only found on a validated pipeline."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        unknown = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
    if not unknown:
        return None
    pruned = copy.deepcopy(value)
    for loc in unknown:
        node = pruned
        for part in loc[:-1]:
            node = node[part]
        node.pop(loc[-1], None)
    return _try(model, pruned)


def _target_references(data: dict[str, Any], checked: set[int]) -> list[tuple[int, str]]:
    """``(index, target)`` of the pipelines that did not validate even without their unknown
    keys: their target reference is still checked."""
    raw_pipelines = data.get("pipelines")
    if not isinstance(raw_pipelines, list):
        return []
    return [
        (index, raw["target"])
        for index, raw in enumerate(raw_pipelines)
        if index not in checked and isinstance(raw, dict) and isinstance(raw.get("target"), str)
    ]


# Placeholders for unset credentials in offline mode; state.url gets a whole URL.
OFFLINE_PLACEHOLDER = "offline-placeholder"


def _credential_fields(model: type[BaseModel]) -> set[str]:
    """YAML keys of ``model`` holding account credentials: every ``SecretStr`` and the
    plain account names that go with one (360NRS ``username``, Octopush ``api_login``)."""
    names = {
        info.alias or name
        for name, info in model.model_fields.items()
        if info.annotation is SecretStr
    }
    return names | ({"username", "api_login"} & set(model.model_fields))


def _credential_values(data: dict[str, Any]) -> list[tuple[KeyPath, Any]]:
    found: list[tuple[KeyPath, Any]] = []
    raw_sources = data.get("sources")
    named = raw_sources.items() if isinstance(raw_sources, dict) else []
    for where, source in [(("source",), data.get("source"))] + [
        (("sources", n), s) for n, s in named
    ]:
        if isinstance(source, dict):
            for key in _credential_fields(ContacthubSourceConfig) & set(source):
                found.append(((*where, key), source[key]))
    targets = data.get("targets")
    if isinstance(targets, dict):
        for name, raw in targets.items():
            if not isinstance(raw, dict):
                continue
            kind = raw.get("type")
            models = [TARGET_MODELS[kind]] if kind in TARGET_MODELS else TARGET_MODELS.values()
            keys = set().union(*(_credential_fields(m) for m in models))
            found += [(("targets", name, key), raw[key]) for key in sorted(keys & set(raw))]
    state = data.get("state")
    if isinstance(state, dict) and "url" in state:
        found.append((("state", "url"), state["url"]))
    return found


def offline_environment(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus a placeholder for every unset variable that only credentials (and
    ``state.url``) reference; a variable also used elsewhere stays unset, and reported."""
    credentials = _credential_values(data)
    everywhere = expand(data, {}).references
    where = {path for path, _ in credentials}
    elsewhere = {r.name for path, refs in everywhere.items() if path not in where for r in refs}
    out = dict(env)
    for path, value in credentials:
        for ref in everywhere.get(path, []):
            if ref.resolved != "unset" or ref.name in elsewhere or env.get(ref.name):
                continue
            whole_url = path == ("state", "url") and value == f"${{{ref.name}}}"
            out[ref.name] = StateConfig().url if whole_url else OFFLINE_PLACEHOLDER
    return out


def load_config(
    path: str | Path, env: Mapping[str, str] | None = None, *, offline: bool = False
) -> SyncerConfig:
    """Load and fully check the config at ``path``; ``env`` defaults to ``os.environ``.

    ``offline`` (``syncer validate --offline``, for CI): everything is checked but the
    credentials' values: a credential whose variable is unset gets a placeholder. That the
    credential is an environment reference is still checked. The result is for checking
    only, never for running.

    Raises :class:`ConfigError` listing every problem found.
    """
    file = str(path)
    text = _read_text(Path(path), file)
    try:
        data, duplicates = read_yaml(text)
    except YamlProblem as exc:
        raise ConfigError(file, [ConfigIssue("", str(exc))]) from None
    if data is None:
        raise ConfigError(file, [ConfigIssue("", "file is empty; expected 'version: 1' etc.")])
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(file, [ConfigIssue("", f"top level must be a mapping, not a {kind}")])

    issues: list[tuple[KeyPath, str]] = [((), message) for message in duplicates]
    environ: Mapping[str, str] = os.environ if env is None else env
    if offline:
        environ = offline_environment(data, environ)
    expansion = expand(data, environ)
    issues += expansion.issues
    issues += check_state_url(data, expansion.data, environ)
    cfg: SyncerConfig | None = None
    try:
        cfg = SyncerConfig.model_validate(expansion.data)
    except ValidationError as exc:
        unset = expansion.unset_paths
        whole = {BOTH_SOURCE_FORMS, NO_SOURCE}  # reported below, at their key path
        issues += [
            i
            for i in pydantic_issues(exc, expansion.data)
            if i[0] not in unset and not (i[0] == () and i[1] in whole)
        ]
    issues += _source_form_issues(expansion.data) + _same_streams(expansion.data)
    sections, pipelines, target_types = _sections(cfg, expansion.data)
    issues += check_secrets(sections, expansion)
    issues += check_pipelines(pipelines, target_types)
    issues += check_source_references(pipelines, _source_names(cfg, expansion.data))
    if cfg is None and target_types is not None:
        checked = {index for index, _ in pipelines}
        issues += check_target_references(_target_references(expansion.data, checked), target_types)
    if issues:
        unique = dict.fromkeys(ConfigIssue(format_path(p), m) for p, m in issues)
        raise ConfigError(file, list(unique))
    assert cfg is not None  # no issues means the model validated
    return _anchor_sqlite_path(cfg, Path(path))


def _anchor_sqlite_path(cfg: SyncerConfig, config_file: Path) -> SyncerConfig:
    """A relative SQLite path (``sqlite:///./syncer.db``) is relative to the config file's
    folder, not to the working directory: every command, wherever it is run from, opens the
    same database (from another folder it would silently start an empty one)."""
    url = make_url(cfg.state.url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database.startswith("file:"):
        return cfg
    where = Path(database).expanduser()
    if where.is_absolute():
        return cfg
    anchored = url.set(database=str((config_file.parent.absolute() / where).resolve()))
    state = cfg.state.model_copy(update={"url": anchored.render_as_string(hide_password=False)})
    return cfg.model_copy(update={"state": state})
