"""The Octopush target type: config, rules, capabilities, factory (entry point ``octopush``)."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from ...config.base import Model as _Model
from ...config.base import TargetBase as _TargetBase
from ..spec import Capabilities, TargetRules, TargetSpec


class OctopushBehaviourConfig(_Model):
    """What this Octopush account does where the docs are silent (``docs/sandbox.md``,
    "Behaviour switches"); unset: the reading ``syncer probe --apply`` recorded. syncer
    handles every reading of these the same way, so they are informational."""

    invalid_number: Literal["refuse_call", "skip_item"] | None = Field(
        default=None,
        description="contact/create naming an invalid number: 'refuse_call' (400, nothing "
        "applied) or 'skip_item' (that item 'skipped').",
    )
    missing_list: Literal["error", "create"] | None = Field(
        default=None,
        description="contact/create into a list that does not exist: 'error' or 'create' it.",
    )
    existing_list: Literal["error", "ok"] | None = Field(
        default=None,
        description="contact-list/create of a name that exists: 'error' (409) or 'ok'.",
    )


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
    behaviour: OctopushBehaviourConfig = Field(
        default_factory=OctopushBehaviourConfig,
        description="Readings of the behaviours the Octopush docs leave open "
        "(`syncer probe` prints them).",
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
