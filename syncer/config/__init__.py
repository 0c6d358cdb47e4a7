"""The config language: typed models, loading with every error reported, per-target rules.

Public API: :func:`load_config`, :func:`resolve_config_path`, :func:`secret_values`,
:class:`ConfigError`, :class:`ConfigIssue` and the models in :mod:`syncer.config.models`.
"""

from __future__ import annotations

from syncer.config.issues import ConfigError, ConfigIssue, format_path
from syncer.config.loader import CONFIG_ENV_VAR, load_config, resolve_config_path
from syncer.config.models import (
    ContacthubSourceConfig,
    EngineConfig,
    MetricsConfig,
    Np6ImportConfig,
    Np6TargetConfig,
    Nrs360TargetConfig,
    OctopushTargetConfig,
    PipelineConfig,
    StateConfig,
    SyncerConfig,
    TargetConfig,
    WhenConfig,
)
from syncer.config.secrets import secret_values

__all__ = [
    "CONFIG_ENV_VAR",
    "ConfigError",
    "ConfigIssue",
    "ContacthubSourceConfig",
    "EngineConfig",
    "MetricsConfig",
    "Np6ImportConfig",
    "Np6TargetConfig",
    "Nrs360TargetConfig",
    "OctopushTargetConfig",
    "PipelineConfig",
    "StateConfig",
    "SyncerConfig",
    "TargetConfig",
    "WhenConfig",
    "format_path",
    "load_config",
    "resolve_config_path",
    "secret_values",
]
