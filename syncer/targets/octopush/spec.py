"""The Octopush target type: config, rules, capabilities, factory (entry point ``octopush``)."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from ...config.base import TargetBase as _TargetBase
from ..spec import Capabilities, TargetRules, TargetSpec


class OctopushTargetConfig(_TargetBase):
    """An Octopush account: contacts in named lists."""

    type: Literal["octopush"] = Field(description="Target kind.")
    base_url: str = Field(
        min_length=1, description="Octopush API root, e.g. https://api.octopush.com/v1/public."
    )
    api_login: str = Field(min_length=1, description="Octopush api-login (account e-mail).")
    api_key: SecretStr = Field(
        description="Octopush api-key; must be an env reference like ${NAME}."
    )
    batch_size: int = Field(
        default=500, ge=1, le=500, description="Contacts per contact/create call (1..500)."
    )


RULES = TargetRules(
    type="octopush",
    label="Octopush",
    fields=frozenset(
        {"phone_number", "first_name", "last_name"} | {f"param{i}" for i in range(1, 6)}
    ),
    key_fields=("phone_number",),
    on_delete=frozenset({"remove_from_list", "delete", "ignore"}),
    list_required=True,
    tag=True,
)


def build(name: str, cfg: OctopushTargetConfig, client: httpx.Client) -> Any:
    """Registry factory: target ``name`` from its config section and HTTP client."""
    from .target import OctopushTarget

    return OctopushTarget.from_config(name, cfg, client)


SPEC = TargetSpec(
    type="octopush",
    config_model=OctopushTargetConfig,
    rules=RULES,
    capabilities=Capabilities(
        kind="batch", identity=True, batch_key=True, batch_size=lambda cfg: int(cfg.batch_size)
    ),
    build=build,
)
