"""The 360NRS target (``type: 360nrs``): see :mod:`.target` for what it does with each change.

The registry calls :func:`build` with the target's config and a client already rate limited.
"""

from __future__ import annotations

import httpx

from ...config.models import Nrs360TargetConfig
from ...logs import add_basic_auth_secret
from .client import Nrs360Client
from .target import Nrs360Target

__all__ = ["Nrs360Client", "Nrs360Target", "build"]


def build(name: str, cfg: Nrs360TargetConfig, client: httpx.Client) -> Nrs360Target:
    """A 360NRS target over ``client`` (Basic auth with the API password)."""
    password = cfg.api_password.get_secret_value()
    client.auth = httpx.BasicAuth(cfg.username, password)
    client.headers["Content-Type"] = "application/json"
    add_basic_auth_secret(cfg.username, password)
    return Nrs360Target(name, Nrs360Client(client), lookup_first=cfg.lookup_before_create)
