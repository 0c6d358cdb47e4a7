"""NP6 target: CSV imports (default) or per-target upserts, bulk deletes, redlists (DIGEST 4).

:class:`Np6Target` implements :class:`syncer.targets.base.Target`; the registry builds it with
:func:`build`. Parts: :mod:`.client` (API), :mod:`.csvfile` (binding + CSV),
:mod:`.importjob` (the resumable import state machine), :mod:`.removals` (deletes,
unsubscribes, upserts).
"""

from __future__ import annotations

from typing import Any

import httpx

from .client import Np6ApiError, Np6Client, Np6NotFound
from .csvfile import Binding, render_csv
from .importjob import JOB_KIND, ImportRun, ImportRunner
from .target import Np6Target

__all__ = [
    "JOB_KIND",
    "Binding",
    "ImportRun",
    "ImportRunner",
    "Np6ApiError",
    "Np6Client",
    "Np6NotFound",
    "Np6Target",
    "build",
    "render_csv",
]


def build(name: str, cfg: Any, client: httpx.Client) -> Np6Target:
    """Registry factory: target ``name`` from its ``Np6TargetConfig`` and HTTP client."""
    return Np6Target.from_config(name, cfg, client)
