"""The 360NRS target type: config, rules, capabilities, factory (entry point ``360nrs``)."""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from ...config.base import Model as _Model
from ...config.base import TargetBase as _TargetBase
from ..spec import Capabilities, TargetRules, TargetSpec


class Nrs360BehaviourConfig(_Model):
    """What this 360NRS account does where the reference is silent (``docs/sandbox.md``,
    "Behaviour switches"); unset: the reading ``syncer probe --apply`` recorded, else syncer
    finds out as it goes."""

    duplicate_email: Literal["refuse", "accept"] | None = Field(
        default=None,
        description="A second contact with an e-mail already taken: 'refuse' (422) or "
        "'accept'. Informational: syncer never creates a contact twice either way.",
    )
    put_groups: Literal["replace", "add"] | None = Field(
        default=None,
        description="PUT /contacts/{id} with groups 'replace's the contact's groups or 'add's "
        "to them. Set: syncer skips the read-back that finds out on the first leave.",
    )


class Nrs360TargetConfig(_TargetBase):
    """A 360NRS account: contacts and groups."""

    type: Literal["360nrs"] = Field(description="Target kind.")
    base_url: str = Field(
        min_length=1, description="360NRS REST root, e.g. https://dashboard.360nrs.com/api/rest."
    )
    username: str = Field(min_length=1, description="360NRS user name (usually ${NRS_USERNAME}).")
    api_password: SecretStr = Field(
        description="360NRS API password; must be an env reference like ${NAME}."
    )
    lookup_before_create: bool = Field(
        default=True,
        description="Look a contact up by email, then phone, before creating it, so contacts "
        "that exist in 360NRS before syncer ever ran are updated, never duplicated. false "
        "saves one call per new contact (re-sends after a crash always look up).",
    )
    behaviour: Nrs360BehaviourConfig = Field(
        default_factory=Nrs360BehaviourConfig,
        description="Readings of the behaviours the 360NRS reference leaves open "
        "(`syncer probe` prints them).",
    )


RULES = TargetRules(
    type="360nrs",
    label="360NRS",
    # externalId is a read filter only: the create/update calls do not take it.
    fields=frozenset({"email", "phone", "landline", "countryIso", "name", "surname"}),
    field_patterns=((re.compile(r"customFields\.[A-Za-z0-9_-]+"), "customFields.<key>"),),
    key_fields=("email", "phone"),
    # "countryIso: required with phone/landline" (360NRS create/update parameters).
    field_requires={"phone": "countryIso", "landline": "countryIso"},
    # "phone: mobile with prefix"; landlines go in `landline` (360NRS parameters table).
    mobile_fields=("phone",),
    on_delete=frozenset({"delete", "unsubscribe", "remove_from_list", "ignore"}),
    groups=True,
)


def build(name: str, cfg: Nrs360TargetConfig, client: httpx.Client) -> Any:
    """A 360NRS target over ``client`` (Basic auth with the API password)."""
    from . import build as build_nrs360  # the package factory (auth, client)

    return build_nrs360(name, cfg, client)


SPEC = TargetSpec(
    type="360nrs",
    config_model=Nrs360TargetConfig,
    rules=RULES,
    capabilities=Capabilities(kind="record", identity=True),
    build=build,
)
