"""A target type from outside syncer (tests/targets/test_plugin_target.py): "echo" writes each
customer as one JSON file under ``directory`` (no HTTP: the point is the contract). It is
found only through its ``syncer.targets`` entry point (``echo_target-0.1.dist-info``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from syncer.config.base import TargetBase
from syncer.targets.spec import Capabilities, TargetRules, TargetSpec


class EchoTargetConfig(TargetBase):
    """An echo target: customers as JSON files."""

    type: Literal["echo"] = Field(description="Target kind.")
    directory: str = Field(min_length=1, description="Where the customers' files go.")


def build(name: str, cfg: EchoTargetConfig, client: Any) -> Any:
    from .target import EchoTarget

    client.close()  # no HTTP here
    return EchoTarget(name, Path(cfg.directory))


SPEC = TargetSpec(
    type="echo",
    config_model=EchoTargetConfig,
    rules=TargetRules(
        type="echo",
        label="Echo",
        fields=frozenset({"email", "name"}),
        key_fields=("email",),
        on_delete=frozenset({"delete", "ignore"}),
    ),
    capabilities=Capabilities(kind="record"),
    build=build,
)
