"""What a target type declares to syncer: one :class:`TargetSpec` per type.

A target package (``syncer/targets/<name>/``, or any installed package) exposes a ``SPEC``
and names it in the ``syncer.targets`` entry point group; :mod:`syncer.targets.registry`
collects them. Everything syncer knows about a type comes from its spec: the config model
(the ``targets:`` section, ``validate``, ``syncer config schema``), the rules a pipeline must
follow (fields, key fields, ``on_delete``, lists or groups), the capabilities the engine uses
(kind, call size, identity, per-list batching) and the factory that builds the client.

This module is imported while the config models are being built: it imports nothing of
syncer but the config's base types.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Capabilities", "TargetKind", "TargetRules", "TargetSpec"]

#: ``record``: one call per record (``apply`` gets one customer's change at a time);
#: ``batch``: one call carries up to ``batch_size`` records of one list; ``import``: rows are
#: held and flushed as a file, then a job (the engine resumes it until it finishes)
TargetKind = Literal["record", "batch", "import"]


@dataclass(frozen=True)
class TargetRules:
    """The pipeline features one target type supports.

    ``fields`` are exact field names; ``field_patterns`` are extra accepted names given as
    ``(regex, how to show it to a user)``. ``key_fields`` lists the fields of which at least
    one must be mapped for the target to identify a record (empty: any field will do).
    ``field_requires`` says that mapping a field needs another field mapped too.
    """

    type: str
    label: str
    fields: frozenset[str]
    field_patterns: tuple[tuple[re.Pattern[str], str], ...] = ()
    key_fields: tuple[str, ...] = ()
    field_requires: dict[str, str] = field(default_factory=dict)
    # fields that must hold a mobile number (checked at map time, before any call)
    mobile_fields: tuple[str, ...] = ()
    on_delete: frozenset[str] = frozenset({"ignore"})
    groups: bool = False
    list_required: bool = False
    tag: bool = False

    def accepts_field(self, name: str) -> bool:
        """Whether a pipeline may map a field called ``name`` for this target type."""
        return name in self.fields or any(p.fullmatch(name) for p, _ in self.field_patterns)

    def describe_fields(self) -> str:
        """The accepted field names, for error messages."""
        names = sorted(self.fields) + [shown for _, shown in self.field_patterns]
        return ", ".join(names)


@dataclass(frozen=True)
class Capabilities:
    """What the engine may ask of a target type, declared instead of probed.

    ``identity``: the target has ``identity(change) -> str | None`` (the key a create uses,
    kept before the call). ``batch_key``: it has ``batch_key(change) -> str | None`` (the call
    a change goes into; the engine fills each key's calls). ``batch_size(cfg)``: records per
    call, for batch targets. ``keeps_order_within_call``: the API applies one call's records
    in the order sent (the engine still never mixes a customer's write with a later removal
    in one call).
    """

    kind: TargetKind
    identity: bool = False
    batch_key: bool = False
    batch_size: Callable[[Any], int] | None = None
    keeps_order_within_call: bool = False


@dataclass(frozen=True)
class TargetSpec:
    """One target type: ``build(name, cfg, client)`` gets the validated ``config_model`` and
    an ``httpx.Client`` already rate limited by the engine, and returns the
    :class:`~syncer.targets.base.Target`."""

    type: str
    config_model: builtins.type[Any]
    rules: TargetRules
    capabilities: Capabilities
    build: Callable[[str, Any, Any], Any]

    def __post_init__(self) -> None:
        if self.rules.type != self.type:
            raise ValueError(f"target spec {self.type!r}: its rules are for {self.rules.type!r}")
