"""NP6 target: CSV imports (default) or per-target upserts, bulk deletes, redlists (DIGEST 4).

:mod:`.spec` declares the type; :class:`Np6Target` implements
:class:`syncer.targets.base.Target`. Parts: :mod:`.client` (API), :mod:`.csvfile` (binding +
CSV), :mod:`.importjob` (the resumable import state machine), :mod:`.removals` (deletes,
unsubscribes, upserts). Names are imported on first use: the registry loads the spec while
the config models are built.
"""

from __future__ import annotations

import importlib
from typing import Any

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

_WHERE = {
    "JOB_KIND": ".importjob",
    "ImportRun": ".importjob",
    "ImportRunner": ".importjob",
    "Binding": ".csvfile",
    "render_csv": ".csvfile",
    "Np6ApiError": ".client",
    "Np6Client": ".client",
    "Np6NotFound": ".client",
    "Np6Target": ".target",
    "build": ".spec",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
