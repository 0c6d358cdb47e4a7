"""The typed config model: one YAML file declares source, targets and pipelines.

Every model forbids unknown keys and documents every field, so the exported JSON Schema
(``syncer config schema``) gives editors completion and inline help. Values here are already
parsed: durations are seconds and rates are events per second (see :mod:`.types`).
Rules that involve several sections (a pipeline's target exists, fields the target accepts,
templates compile, secrets come from the environment) live in :mod:`.checks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from syncer.config.secrets import url_passwords
from syncer.config.types import Duration, Rate

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class _TargetBase(_Model):
    """Delivery settings every target shares."""

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

    @model_validator(mode="after")
    def _import_needed(self) -> Np6TargetConfig:
        if self.mode == "import" and self.import_ is None:
            raise ValueError("'import' settings (at least 'binding') are required in import mode")
        return self


TargetConfig = Annotated[
    Nrs360TargetConfig | OctopushTargetConfig | Np6TargetConfig,
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

    enabled: bool = Field(
        default=True,
        description="Serve the console on `syncer run`'s metrics.address, next to /metrics "
        "(`syncer console` serves it whatever this says).",
    )
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


TARGET_MODELS: dict[str, type[Nrs360TargetConfig | OctopushTargetConfig | Np6TargetConfig]] = {
    "360nrs": Nrs360TargetConfig,
    "octopush": OctopushTargetConfig,
    "np6": Np6TargetConfig,
}
"""Target config model by ``type``; the keys match :data:`syncer.config.target_rules.RULES`."""
