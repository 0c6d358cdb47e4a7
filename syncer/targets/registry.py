"""The explicit registry of target types: type name (``type:`` in the config) -> factory.

A factory is ``build(name, cfg, client) -> Target``; it lives in the target's own package
(``syncer/targets/<pkg>/__init__.py``) and is imported only when a config uses that type.
The engine builds one ``httpx.Client`` per target here, over the transport it hands in (the
rate-limited one), so targets never pace or retry on their own. Adding a target = one folder
plus one line below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import httpx

from ..errors import StopError
from .base import Target

Factory = Callable[[str, Any, httpx.Client], Target]

#: type name -> "module:function" of its factory
FACTORIES: dict[str, str] = {
    "360nrs": "syncer.targets.nrs360:build",
    "octopush": "syncer.targets.octopush:build",
    "np6": "syncer.targets.np6:build",
}


class UnknownTargetType(StopError):
    """A config names a target type syncer does not know (or has not got yet)."""


def known_types() -> list[str]:
    return sorted(FACTORIES)


def factory_for(type_name: str) -> Factory:
    """The factory of ``type_name``; :class:`UnknownTargetType` lists the known ones."""
    spec = FACTORIES.get(type_name)
    if spec is None:
        raise UnknownTargetType(
            f"unknown target type {type_name!r}; known types: {', '.join(known_types())}"
        )
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise UnknownTargetType(
                f"target type {type_name!r} is not available in this build of syncer"
            ) from None
        raise
    factory: Factory = getattr(module, attr)
    return factory


def build_client(cfg: Any, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """One keep-alive client for one target (``cfg``: any target config model)."""
    timeout = float(getattr(cfg, "timeout", 30.0))
    return httpx.Client(
        base_url=str(cfg.base_url).rstrip("/"),
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers={"Accept": "application/json"},
    )


def build_target(name: str, cfg: Any, transport: httpx.BaseTransport | None = None) -> Target:
    """Build target ``name`` from its config model, with its own client over ``transport``."""
    factory = factory_for(cfg.type)
    client = build_client(cfg, transport)
    try:
        return factory(name, cfg, client)
    except Exception:
        client.close()
        raise
