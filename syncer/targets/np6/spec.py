"""The NP6 target type: config, rules, capabilities, factory (entry point ``np6``)."""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr, model_validator

from ...config.base import Model as _Model
from ...config.base import TargetBase as _TargetBase
from ...config.types import Duration
from ..spec import Capabilities, TargetRules, TargetSpec


class Np6ImportConfig(_Model):
    """How NP6 CSV imports are built and flushed."""

    binding: int = Field(ge=1, description="NP6 import definition (column to field) id.")
    flush_every: Duration = Field(
        default=60.0, description="Send a pending import file at least this often, e.g. 60s."
    )
    max_rows: int = Field(
        default=50000, ge=1, le=1_000_000, description="Rows per import file before a flush."
    )
    separator: str = Field(
        default=";", min_length=1, max_length=1, description="CSV column separator."
    )


class Np6BehaviourConfig(_Model):
    """What this NP6 account does where the references disagree or are silent
    (``docs/sandbox.md``, "Behaviour switches"); unset: the reading ``syncer probe --apply``
    recorded. syncer handles every reading of these the same way, so they are
    informational."""

    unknown_delete: Literal["empty_200", "not_found_404"] | None = Field(
        default=None,
        description="Bulk DELETE /targets naming unknown targets: 'empty_200' or 'not_found_404'.",
    )
    bulk_delete_response: Literal["list", "empty"] | None = Field(
        default=None,
        description="Bulk DELETE /targets answers the deleted targets ('list') or 204 ('empty').",
    )
    execution_body: Literal["full", "state"] | None = Field(
        default=None,
        description="GET /imports/{id}/executions answers the 'full' execution or its "
        "'state' only.",
    )
    no_execution: Literal["not_found_404", "empty_200"] | None = Field(
        default=None,
        description="GET /imports/{id}/executions before any start: 'not_found_404' or "
        "'empty_200' ({}).",
    )


class Np6TargetConfig(_TargetBase):
    """An NP6 (mperf) account: targets written by CSV import or by upsert."""

    type: Literal["np6"] = Field(description="Target kind.")
    base_url: str = Field(min_length=1, description="NP6 API root, e.g. https://api-cm.np6.com.")
    api_key: SecretStr = Field(description="NP6 API key; must be an env reference like ${NAME}.")
    mode: Literal["import", "upsert"] = Field(
        default="import",
        description="'import': batched CSV imports (needs 'import'); 'upsert': PUT per target.",
    )
    import_: Np6ImportConfig | None = Field(
        default=None, alias="import", description="CSV import settings; required in import mode."
    )
    behaviour: Np6BehaviourConfig = Field(
        default_factory=Np6BehaviourConfig,
        description="Readings of the behaviours the NP6 references leave open "
        "(`syncer probe` prints them).",
    )

    @model_validator(mode="after")
    def _import_needed(self) -> Np6TargetConfig:
        if self.mode == "import" and self.import_ is None:
            raise ValueError("'import' settings (at least 'binding') are required in import mode")
        return self


RULES = TargetRules(
    type="np6",
    label="NP6",
    fields=frozenset(),
    # NP6 write bodies are keyed by the tenant's numeric field ids.
    field_patterns=((re.compile(r"[0-9]+"), "<numeric field id, e.g. 1001>"),),
    on_delete=frozenset({"delete", "unsubscribe", "ignore"}),
)


def build(name: str, cfg: Np6TargetConfig, client: httpx.Client) -> Any:
    """Registry factory: target ``name`` from its config section and HTTP client."""
    from .target import Np6Target

    return Np6Target.from_config(name, cfg, client)


SPEC = TargetSpec(
    type="np6",
    config_model=Np6TargetConfig,
    rules=RULES,
    # import mode: one file per flush (rows in order: duplicate "last"), then a job
    capabilities=Capabilities(kind="import", keeps_order_within_call=True),
    build=build,
)
