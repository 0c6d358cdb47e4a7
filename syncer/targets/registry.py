"""The registry of target types, built from the ``syncer.targets`` entry points.

Each entry point names a :class:`~syncer.targets.spec.TargetSpec` (``type = "module:SPEC"``);
syncer's own three are declared in its ``pyproject.toml`` like any other package's, so a
separate distribution adds a target by declaring one more entry point, without editing
syncer (``docs/adding-a-target.md``). The registry is read once per process, when the config
models are built (the ``targets:`` union, ``validate``, ``syncer config schema`` and the
pipeline rules all come from it).

The engine builds one ``httpx.Client`` per target here, over the transport it hands in (the
rate-limited one), so targets never pace or retry on their own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ValidationError

from ..errors import StopError
from .spec import TargetSpec

if TYPE_CHECKING:
    from ..state.store import Store
    from .base import Target

GROUP = "syncer.targets"

#: used only when syncer's own entry points are not installed (a source tree on sys.path)
BUILT_IN: dict[str, str] = {
    "360nrs": "syncer.targets.nrs360.spec:SPEC",
    "octopush": "syncer.targets.octopush.spec:SPEC",
    "np6": "syncer.targets.np6.spec:SPEC",
}


class UnknownTargetType(StopError):
    """A config names a target type syncer does not know (or has not got yet)."""


class BadTargetPlugin(StopError):
    """An installed ``syncer.targets`` entry point does not give a usable spec."""


def _load(name: str, value: str, loaded: Any) -> TargetSpec:
    if not isinstance(loaded, TargetSpec):
        raise BadTargetPlugin(
            f"entry point {name} = {value!r} in group {GROUP!r} is not a TargetSpec"
        )
    if loaded.type != name:
        raise BadTargetPlugin(
            f"entry point {name!r} in group {GROUP!r} gives the spec of type {loaded.type!r}"
        )
    return loaded


@cache
def target_specs() -> dict[str, TargetSpec]:
    """Every registered target type's spec, by type name (read once per process)."""
    specs: dict[str, TargetSpec] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in specs:
            continue  # the same distribution seen twice on sys.path: the first one wins
        specs[ep.name] = _load(ep.name, ep.value, ep.load())
    for name, value in BUILT_IN.items():
        if name not in specs:
            module, _, attr = value.partition(":")
            specs[name] = _load(name, value, getattr(importlib.import_module(module), attr))
    return dict(sorted(specs.items()))


def known_types() -> list[str]:
    return sorted(target_specs())


def spec_for(type_name: str) -> TargetSpec:
    """The spec of ``type_name``; :class:`UnknownTargetType` lists the known ones."""
    spec = target_specs().get(type_name)
    if spec is None:
        raise UnknownTargetType(
            f"unknown target type {type_name!r}; known types: {', '.join(known_types())}"
        )
    return spec


def build_client(cfg: Any, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """One keep-alive client for one target (``cfg``: any target config model)."""
    timeout = float(cfg.timeout)
    return httpx.Client(
        base_url=str(getattr(cfg, "base_url", "") or "").rstrip("/"),
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers={"Accept": "application/json"},
    )


#: ``target_kv`` key of a reading ``syncer probe --apply`` recorded: ``behaviour.<switch>``
BEHAVIOUR_KEY = "behaviour."


def with_probed_behaviour(cfg: Any, stored: Callable[[str], str | None]) -> Any:
    """``cfg`` with each ``behaviour:`` switch the config leaves unset taken from ``stored``
    (the reading ``syncer probe --apply`` recorded for that switch, or None): the config
    wins, then the probe, then the target's default. A stored reading the model no longer
    accepts (an older syncer's) is ignored."""
    behaviour = getattr(cfg, "behaviour", None)
    if not isinstance(behaviour, BaseModel):
        return cfg
    model = type(behaviour)
    readings = behaviour.model_dump(exclude_none=True)
    for switch in model.model_fields:
        if switch in readings:
            continue
        value = stored(BEHAVIOUR_KEY + switch)
        if value is None:
            continue
        try:
            model.model_validate({switch: value})
        except ValidationError:
            continue
        readings[switch] = value
    return cfg.model_copy(update={"behaviour": model.model_validate(readings)})


def build_target(
    name: str,
    cfg: Any,
    transport: httpx.BaseTransport | None = None,
    store: Store | None = None,
) -> Target:
    """Build target ``name`` from its config model, with its own client over ``transport``;
    with ``store``, the behaviour readings ``syncer probe --apply`` recorded fill the switches
    the config leaves unset (:func:`with_probed_behaviour`)."""
    spec = spec_for(cfg.type)
    if store is not None:
        cfg = with_probed_behaviour(cfg, lambda key: store.kv_get(name, key))
    client = build_client(cfg, transport)
    try:
        target: Target = spec.build(name, cfg, client)
    except Exception:
        client.close()
        raise
    return target
