"""Load a config file: YAML, ``${VAR}`` expansion, model validation, cross checks.

Every problem found is collected and raised together as one :class:`ConfigError`, each
with the key path it concerns, so one ``syncer validate`` run shows all of them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.engine import make_url

from syncer.config.checks import check_pipelines, check_secrets, check_state_url
from syncer.config.envexpand import expand
from syncer.config.issues import ConfigError, ConfigIssue, KeyPath, format_path
from syncer.config.models import (
    ContacthubSourceConfig,
    PipelineConfig,
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
        sections: list[tuple[KeyPath, BaseModel]] = [(("source",), cfg.source)]
        sections += [(("targets", name), t) for name, t in cfg.targets.items()]
        types: dict[str, str | None] | None = {n: t.type for n, t in cfg.targets.items()}
        return sections, list(enumerate(cfg.pipelines)), types
    sections = []
    if (source := _try(ContacthubSourceConfig, data.get("source"))) is not None:
        sections.append((("source",), source))
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
            if isinstance(pipeline := _try(PipelineConfig, raw), PipelineConfig):
                pipelines.append((index, pipeline))
    return sections, pipelines, types


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> SyncerConfig:
    """Load and fully check the config at ``path``; ``env`` defaults to ``os.environ``.

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
    environ = os.environ if env is None else env
    expansion = expand(data, environ)
    issues += expansion.issues
    issues += check_state_url(data, expansion.data, environ)
    cfg: SyncerConfig | None = None
    try:
        cfg = SyncerConfig.model_validate(expansion.data)
    except ValidationError as exc:
        unset = expansion.unset_paths
        issues += [i for i in pydantic_issues(exc, expansion.data) if i[0] not in unset]
    sections, pipelines, target_types = _sections(cfg, expansion.data)
    issues += check_secrets(sections, expansion)
    issues += check_pipelines(pipelines, target_types)
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
