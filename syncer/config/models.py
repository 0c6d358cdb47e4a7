"""The typed config model: one YAML file declares source, targets and pipelines.

Every model forbids unknown keys and documents every field, so the exported JSON Schema
(``syncer config schema``) gives editors completion and inline help. Values here are already
parsed: durations are seconds and rates are events per second (see :mod:`.types`).
Rules that involve several sections (a pipeline's target exists, fields the target accepts,
templates compile, secrets come from the environment) live in :mod:`.checks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from syncer.config.base import TargetBase
from syncer.config.secrets import url_passwords
from syncer.config.types import Duration

__all__ = [
    "TARGET_MODELS",
    "ConsoleConfig",
    "ContacthubSourceConfig",
    "EngineConfig",
    "FieldSpec",
    "MetricsConfig",
    "Np6ImportConfig",
    "Np6TargetConfig",
    "Nrs360TargetConfig",
    "OctopushTargetConfig",
    "PipelineConfig",
    "Scalar",
    "StateConfig",
    "SyncerConfig",
    "TargetConfig",
    "WhenConfig",
]

Scalar = str | int | float | bool | None


def hide_url_passwords(url: str) -> str:
    """``url`` with every password it carries (user info, ``?password=``) as ``***``."""
    for secret in sorted(url_passwords(url), key=len, reverse=True):
        url = url.replace(secret, "***")
    return url


from syncer.config.base import Model as _Model  # noqa: E402  (re-exported to config models)


class StateConfig(_Model):
    """Where syncer keeps offsets, the inbox, deliveries and id maps."""

    url: str = Field(
        default="sqlite:///./syncer.db",
        min_length=1,
        description="SQLAlchemy URL of the state store: sqlite:///path or postgresql+psycopg://…",
    )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """``repr()`` shows the URL with its password hidden (like a ``SecretStr``)."""
        for name, value in super().__repr_args__():
            yield name, (hide_url_passwords(value) if name == "url" else value)

    @field_serializer("url", when_used="json")
    def _url_without_password(self, value: str) -> str:
        """JSON dumps of a config never hold the password (a Python dump keeps it)."""
        return hide_url_passwords(value)

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        """Only what syncer can open: a SQLite file or PostgreSQL through psycopg. The URL is
        never repeated in a message: it may carry a password."""
        use = "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DATABASE"
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            raise ValueError(f"invalid database URL: {use}") from None
        backend, driver = url.get_backend_name(), url.get_driver_name()
        if backend == "sqlite":
            if url.database in (None, "", ":memory:") or "mode=memory" in value:
                raise ValueError(
                    "a SQLite state database needs a file path, e.g. sqlite:///./syncer.db "
                    "(in memory, the state would be lost at exit)"
                )
        elif backend == "postgresql":
            if "+" in url.drivername and driver != "psycopg":
                raise ValueError(
                    f"unsupported PostgreSQL driver {driver!r}: use postgresql+psycopg://"
                    "USER@HOST/DATABASE"
                )
        else:
            raise ValueError(f"unsupported database {backend!r}: {use}")
        return value


class ContacthubSourceConfig(_Model):
    """The Contacthub workspace and node whose update stream is read."""

    type: Literal["contacthub"] = Field(description="Source kind; only 'contacthub' exists.")
    base_url: str = Field(
        min_length=1, description="Contacthub API root, e.g. https://api.contactlab.it/hub/v1."
    )
    workspace_id: str = Field(min_length=1, description="Contacthub workspace id.")
    node_id: str = Field(min_length=1, description="Contacthub entry node id.")
    token: SecretStr = Field(description="Bearer token; must be an env reference like ${NAME}.")
    page_size: int = Field(
        default=500, ge=1, le=4000, description="Update stream page size (1..4000)."
    )
    poll_interval: Duration = Field(
        default=30.0, description="Pause between stream polls once caught up, e.g. 30s."
    )
    timeout: Duration = Field(default=30.0, description="HTTP timeout per request, e.g. 30s.")


from syncer.targets.registry import target_specs  # noqa: E402  (needs _Model above)

#: every registered target type's config model (built-in and from installed packages: the
#: ``syncer.targets`` entry points), discriminated by ``type``
if TYPE_CHECKING:
    TargetConfig = TargetBase
else:
    TargetConfig = Annotated[
        Union[tuple(spec.config_model for spec in target_specs().values())],  # noqa: UP007
        Field(discriminator="type"),
    ]


class WhenConfig(_Model):
    """Which documents a pipeline takes; every condition given must hold."""

    consent: str | None = Field(
        default=None,
        description="Consent path under consents, e.g. marketing.automatic.email: its status "
        "must be true and objection not true.",
    )
    present: list[str] = Field(
        default_factory=list, description="Dotted paths that must all be non-empty."
    )
    tags_any: list[str] = Field(
        default_factory=list, description="At least one of these tags (auto or manual)."
    )
    tags_all: list[str] = Field(
        default_factory=list, description="All of these tags (auto or manual)."
    )
    match: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict,
        description="Path to required value, or to a list of accepted values.",
    )


class FieldSpec(_Model):
    """A field with options: ``phone: {value: "{{ ... }}", optional: true}``."""

    value: str = Field(min_length=1, description="Dotted source path or Jinja template.")
    optional: bool = Field(
        default=False,
        description="An invalid value (a bad phone, a bad date) is left out and counted, and the "
        "record is sent without it, instead of the whole record being rejected.",
    )


def field_source(spec: str | FieldSpec) -> str:
    """The path or template of a field, given plainly or as ``{value: ...}``."""
    return spec if isinstance(spec, str) else spec.value


class PipelineConfig(_Model):
    """One flow: which entities go to which target, and how they map."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        max_length=64,
        description="Unique slug (lower case, digits, '-' and '_'), used in state and logs.",
    )
    target: str = Field(description="Name of a key under 'targets'.")
    entity: Literal["customer", "event"] = Field(description="Which entity kind it takes.")
    event_types: list[str] | None = Field(
        default=None, min_length=1, description="Event types taken (event pipelines; none = all)."
    )
    when: WhenConfig | None = Field(default=None, description="Conditions a document must meet.")
    fields: dict[str, str | FieldSpec] = Field(
        default_factory=dict,
        description="Target field to a dotted source path (raw value) or a Jinja template "
        "(rendered string), or to {value: ..., optional: true}. Empty values are left out.",
    )
    groups: list[str] = Field(
        default_factory=list, description="360NRS group names; may be templates."
    )
    list_: str | None = Field(
        default=None,
        alias="list",
        description="Octopush list name (required there); may be a template.",
    )
    tag: str | None = Field(default=None, max_length=20, description="Octopush tag (<=20 chars).")
    on_delete: Literal["delete", "remove_from_list", "unsubscribe", "ignore"] = Field(
        default="ignore", description="What a deleted/forgotten customer does in the target."
    )


class MetricsConfig(_Model):
    """The Prometheus metrics endpoint."""

    address: str = Field(
        default="127.0.0.1:9464",
        pattern=r"^[^\s:]*:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$",
        description="host:port to serve /metrics on.",
    )


class ConsoleConfig(_Model):
    """The web console (``syncer console``, and ``syncer run`` next to /metrics)."""

    token: SecretStr | None = Field(
        default=None,
        description="Read-only access token, e.g. ${SYNCER_CONSOLE_TOKEN}. Without any token "
        "the console answers loopback clients only; with one, every request needs a token.",
    )
    operator_token: SecretStr | None = Field(
        default=None,
        description="Operator token (reads and actions: retry, discard, pause), e.g. "
        "${SYNCER_CONSOLE_OPERATOR_TOKEN}. Without it the console is read-only.",
    )


class EngineConfig(_Model):
    """Engine-wide tuning."""

    batch_size: int = Field(
        default=200, ge=1, le=4000, description="Deliveries claimed per worker round."
    )
    backoff_base: Duration = Field(default=1.0, description="First retry delay, e.g. 1s.")
    backoff_max: Duration = Field(default=600.0, description="Longest retry delay, e.g. 10m.")

    @model_validator(mode="after")
    def _backoff_order(self) -> EngineConfig:
        if self.backoff_max < self.backoff_base:
            raise ValueError("backoff_max must not be shorter than backoff_base")
        return self


class SyncerConfig(_Model):
    """The root of a syncer config file."""

    version: Literal[1] = Field(description="Config language version; must be 1.")
    state: StateConfig = Field(default_factory=StateConfig, description="State store.")
    source: ContacthubSourceConfig = Field(description="Where changes are read from.")
    targets: dict[str, TargetConfig] = Field(
        min_length=1, description="Named target accounts, referenced by pipelines."
    )
    pipelines: list[PipelineConfig] = Field(
        min_length=1, description="The flows from source to targets."
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig,
        description="Where `syncer run` serves /metrics, /healthz and /readyz "
        "(default 127.0.0.1:9464; port 0 picks a free port).",
    )
    engine: EngineConfig = Field(default_factory=EngineConfig, description="Engine tuning.")
    console: ConsoleConfig = Field(
        default_factory=ConsoleConfig, description="Web console access tokens."
    )


TARGET_MODELS: dict[str, type[TargetBase]] = {
    name: spec.config_model for name, spec in target_specs().items()
}
"""Target config model by ``type``, from the registry (:mod:`syncer.targets.registry`)."""

# the built-in types' models, under their old names (each lives in its target's spec module)
from syncer.targets.np6.spec import Np6ImportConfig, Np6TargetConfig  # noqa: E402
from syncer.targets.nrs360.spec import Nrs360TargetConfig  # noqa: E402
from syncer.targets.octopush.spec import OctopushTargetConfig  # noqa: E402
