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
    "DEFAULT_SOURCE",
    "TARGET_MODELS",
    "ConsoleConfig",
    "ContacthubSourceConfig",
    "DeliveryConfig",
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
    node_id: str | None = Field(
        default=None, min_length=1, description="Contacthub entry node id (or use node_ids)."
    )
    node_ids: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        min_length=1,
        description="Several entry nodes of the workspace, each read as its own stream "
        "(instead of node_id).",
    )
    token: SecretStr = Field(description="Bearer token; must be an env reference like ${NAME}.")
    page_size: int = Field(
        default=500, ge=1, le=4000, description="Update stream page size (1..4000)."
    )
    poll_interval: Duration = Field(
        default=30.0, description="Pause between stream polls once caught up, e.g. 30s."
    )
    timeout: Duration = Field(default=30.0, description="HTTP timeout per request, e.g. 30s.")

    @model_validator(mode="after")
    def _one_node_form(self) -> ContacthubSourceConfig:
        if (self.node_id is None) == (self.node_ids is None):
            raise ValueError("give either 'node_id' (one entry node) or 'node_ids' (several)")
        if self.node_ids is not None and len(set(self.node_ids)) != len(self.node_ids):
            raise ValueError("'node_ids' lists a node more than once")
        return self

    @property
    def nodes(self) -> list[str]:
        """The entry nodes read, in config order."""
        return list(self.node_ids) if self.node_ids is not None else [str(self.node_id)]


DEFAULT_SOURCE = "default"
"""The name the single ``source:`` form gets; its customers keep un-prefixed ids in the state."""

SOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"  # no ':', the namespace separator in the state
SourceName = Annotated[str, Field(pattern=SOURCE_NAME_PATTERN, max_length=40)]
BOTH_SOURCE_FORMS = (
    "'source' and 'sources' are both given: use 'sources' alone (name the former "
    f"'source' '{DEFAULT_SOURCE}' there to keep its state)"
)
NO_SOURCE = "required key is missing: give 'source' (one source) or 'sources' (named sources)"


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
    source: str | None = Field(
        default=None,
        description="Name of a key under 'sources' this pipeline takes; none = every source.",
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


class RetentionConfig(_Model):
    """How long the state database keeps finished work (``syncer run`` prunes every
    ``interval``; ``syncer db prune`` at once). Open rows and what they need are never pruned;
    0 keeps that kind of row forever."""

    done_deliveries_days: float = Field(
        default=30, ge=0, description="Days a done delivery row is kept after it was done."
    )
    inbox_days: float = Field(
        default=30, ge=0, description="Days an update received from the stream stays in the inbox."
    )
    delivery_log_days: float = Field(
        default=30, ge=0, description="Days a delivery_log line (the delivery history) is kept."
    )
    interval: Duration = Field(
        default=3600.0,
        description="How often `syncer run` prunes, e.g. 1h; on SQLite it also rewrites the "
        "file then (VACUUM, holding the write lock while it runs) if erasures were scrubbed "
        "since, so their bytes leave the disk.",
    )


class DeliveryConfig(_Model):
    """How long a worker may hold a customer, and how long a target may make it wait."""

    claim_lease_seconds: Duration = Field(
        default=300.0,
        ge=10.0,
        le=86400.0,
        description="How long a claim on a customer lives without renewal, e.g. 5m. A worker "
        "renews its claims every third of it while calls run; a replica that dies loses its "
        "customers to the others after at most this long (at once on the same host). Keep it "
        "well above every target's timeout.",
    )
    max_retry_after_seconds: Duration = Field(
        default=900.0,
        ge=1.0,
        le=900.0,
        description="The longest Retry-After a target is obeyed for, at most (and by default) "
        "15m: a target asking for longer is retried after this long. Rows wait in the "
        "database with their due time, never in a sleeping thread, so a stop is never held up.",
    )


class SyncerConfig(_Model):
    """The root of a syncer config file."""

    version: Literal[1] = Field(description="Config language version; must be 1.")
    state: StateConfig = Field(default_factory=StateConfig, description="State store.")
    source: ContacthubSourceConfig | None = Field(
        default=None,
        description=f"One Contacthub source (named '{DEFAULT_SOURCE}'); or use 'sources'.",
    )
    sources: dict[SourceName, ContacthubSourceConfig] = Field(
        default_factory=dict,
        description="Named Contacthub sources (workspace and nodes each), each with its own "
        "offsets, polling lease, backfill and lag. Customers of a source other than "
        f"'{DEFAULT_SOURCE}' are kept as '<source>:<id>' in the state.",
    )
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
    delivery: DeliveryConfig = Field(
        default_factory=DeliveryConfig, description="Claim lease and Retry-After cap."
    )
    console: ConsoleConfig = Field(
        default_factory=ConsoleConfig, description="Web console access tokens."
    )
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig,
        description="How long done deliveries, inbox rows and the delivery log are kept.",
    )

    @model_validator(mode="after")
    def _one_source_form(self) -> SyncerConfig:
        """``source:`` becomes ``sources: {default: ...}`` (``source`` stays, for readers of
        the single form; a dump of the result validates again). Engine code reads ``sources``."""
        if self.source is not None:
            if self.sources and self.sources != {DEFAULT_SOURCE: self.source}:
                raise ValueError(BOTH_SOURCE_FORMS)
            self.sources = {DEFAULT_SOURCE: self.source}
        if not self.sources:
            raise ValueError(NO_SOURCE)
        return self

    def pipelines_of(self, source: str) -> list[PipelineConfig]:
        """The pipelines that take the documents of ``source``."""
        return [p for p in self.pipelines if p.source in (None, source)]


TARGET_MODELS: dict[str, type[TargetBase]] = {
    name: spec.config_model for name, spec in target_specs().items()
}
"""Target config model by ``type``, from the registry (:mod:`syncer.targets.registry`)."""

# the built-in types' models, under their old names (each lives in its target's spec module)
from syncer.targets.np6.spec import Np6ImportConfig, Np6TargetConfig  # noqa: E402
from syncer.targets.nrs360.spec import Nrs360TargetConfig  # noqa: E402
from syncer.targets.octopush.spec import OctopushTargetConfig  # noqa: E402
