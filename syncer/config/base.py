"""The base models every config section builds on, target packages' config models included
(they import this module, never :mod:`syncer.config.models`, which builds its target union
from them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from syncer.config.types import Duration, Rate

__all__ = ["Model", "TargetBase"]


class Model(BaseModel):
    """Forbids unknown keys (a typo is an error, not a silently ignored setting)."""

    model_config = ConfigDict(extra="forbid")


class TargetBase(Model):
    """Delivery settings every target shares; a target's config model subclasses it and adds
    ``type: Literal["<its type>"]`` plus its own settings."""

    type: str = Field(description="Target kind.")

    max_in_flight: int = Field(
        default=4, ge=1, le=64, description="Most requests in flight at once to this target."
    )
    rate_limit: Rate | None = Field(
        default=None, description="Request rate cap, e.g. 20/s or 600/m; none = unlimited."
    )
    timeout: Duration = Field(default=30.0, description="HTTP timeout per request, e.g. 30s.")
    max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts before a delivery is dead-lettered."
    )
    production: bool = Field(
        default=False,
        description="This is a live account customers depend on: `syncer probe` (which "
        "creates and removes scratch records) refuses it without --yes.",
    )
