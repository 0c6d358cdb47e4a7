"""Octopush target: contacts upserted into named lists, removed in bulk (DIGEST section 3).

:class:`OctopushTarget` implements :class:`syncer.targets.base.Target`; the registry builds it
with :func:`build`. :class:`OctopushClient` is the API client it uses.
"""

from __future__ import annotations

from typing import Any

import httpx

from .client import OctopushApiError, OctopushClient
from .plan import normalise_phone
from .target import OctopushTarget

__all__ = ["OctopushApiError", "OctopushClient", "OctopushTarget", "build", "normalise_phone"]


def build(name: str, cfg: Any, client: httpx.Client) -> OctopushTarget:
    """Registry factory: target ``name`` from its ``OctopushTargetConfig`` and HTTP client."""
    return OctopushTarget.from_config(name, cfg, client)
