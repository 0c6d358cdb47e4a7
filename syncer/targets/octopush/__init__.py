"""Octopush target: contacts upserted into named lists, removed in bulk (DIGEST section 3).

:mod:`.spec` declares the type; :class:`OctopushTarget` implements
:class:`syncer.targets.base.Target`; :class:`OctopushClient` is the API client it uses.
Names are imported on first use: the registry loads the spec while the config models are
built.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["OctopushApiError", "OctopushClient", "OctopushTarget", "build", "normalise_phone"]

_WHERE = {
    "OctopushApiError": ".client",
    "OctopushClient": ".client",
    "OctopushTarget": ".target",
    "normalise_phone": ".plan",
    "build": ".spec",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
