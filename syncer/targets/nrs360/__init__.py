"""The 360NRS target (``type: 360nrs``): see :mod:`.target` for what it does with each change.

:mod:`.spec` declares the type (config, rules, capabilities); the registry calls its factory,
which calls :func:`build` with the target's config and a client already rate limited. Names
are imported on first use: the registry loads the spec while the config models are built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from .client import Nrs360Client
    from .spec import Nrs360TargetConfig
    from .target import Nrs360Target

__all__ = ["Nrs360Client", "Nrs360Target", "build"]


def build(name: str, cfg: Nrs360TargetConfig, client: httpx.Client) -> Nrs360Target:
    """A 360NRS target over ``client`` (Basic auth with the API password)."""
    from ...logs import add_basic_auth_secret
    from .client import Nrs360Client
    from .target import Nrs360Target

    password = cfg.api_password.get_secret_value()
    client.auth = httpx.BasicAuth(cfg.username, password)
    client.headers["Content-Type"] = "application/json"
    add_basic_auth_secret(cfg.username, password)
    target = Nrs360Target(name, Nrs360Client(client), lookup_first=cfg.lookup_before_create)
    # a known reading (config, else `syncer probe --apply`) spares the read-back that finds out
    target.put_adds_groups = {"add": True, "replace": False}.get(cfg.behaviour.put_groups or "")
    return target


def __getattr__(name: str) -> Any:
    if name == "Nrs360Client":
        from .client import Nrs360Client

        return Nrs360Client
    if name == "Nrs360Target":
        from .target import Nrs360Target

        return Nrs360Target
    raise AttributeError(name)
