"""``syncer demo``: the sandbox, a config written for it, a backfill, churn and two syncs,
summarised from the state database and the simulators' own state.

Nothing here computes a result of its own: every number printed comes from the state database
(``runs``, ``delivery_log``), from the exit codes of the ``syncer`` commands it runs, or from
the simulators' ``/_sandbox/state``. The steps run the real CLI (``syncer backfill``,
``syncer sync --once``) as subprocesses against an in-process :class:`SandboxCluster`, so the
demo shows exactly what a user would type.
"""

from __future__ import annotations

from .orchestrate import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
