"""``syncer plan``: the target's own validation of each upsert, so the plan shows the rows a
run would find invalid at the target, not only those the mapping rejects.

The checks are the targets' own code, called without sending anything:
360NRS's contact body and group rule (``Nrs360Target._upsert``), Octopush's change plan
(``octopush.plan._plan_upsert``), NP6's unicity field and import binding
(``np6.target._row_problem`` / ``np6.removals.upsert``). NP6 names its unicity field (and its
import format's fields) only in its API: ``plan`` reads them with ``GET /fields`` and
``GET /importFormats/{id}`` (read-only); when NP6 does not answer, its rows are reported as
not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..config import SyncerConfig
from ..engine.planner import Planned
from ..targets.base import Change

__all__ = ["target_problems"]

Check = Callable[[Change], str | None]


def _nrs360(_: SyncerConfig, __: str) -> Check:
    from ..targets.nrs360.payload import contact_body
    from ..targets.phones import InvalidPhone

    def check(change: Change) -> str | None:
        record = change.record
        if record is None:
            return "nothing to send: the record could not be mapped"
        try:
            contact_body(record, [])
        except InvalidPhone as exc:
            return str(exc)
        if not (set(record.groups) | change.known.other_pipelines_names(change.pipeline)):
            return "a 360NRS contact needs at least one group; the pipeline maps none"
        return None

    return check


def _octopush(_: SyncerConfig, __: str) -> Check:
    from ..targets.octopush.plan import _plan_upsert

    def check(change: Change) -> str | None:
        final = _plan_upsert(change).final
        return final.error if final is not None and final.status == "invalid" else None

    return check


def _np6(cfg: SyncerConfig, name: str) -> Check:
    from ..targets.np6.target import Np6Target, _row_problem
    from ..targets.registry import build_client

    tcfg = cfg.targets[name]
    http = build_client(tcfg)
    try:
        target = Np6Target.from_config(name, tcfg, http)  # type: ignore[arg-type]
        uid = target.unicity_field()
        binding = target.binding() if target.mode == "import" else None
    finally:
        http.close()

    def check(change: Change) -> str | None:
        if binding is not None:
            return _row_problem(change, uid, binding)
        record = change.record
        if record is None:
            return "no mapped record to upsert"
        if record.fields.get(uid) in (None, ""):
            return f"no value for the NP6 unicity field {uid}"
        return None

    return check


CHECKS: dict[str, Callable[[SyncerConfig, str], Check]] = {
    "360nrs": _nrs360,
    "octopush": _octopush,
    "np6": _np6,
}


def target_problems(
    cfg: SyncerConfig, planned: Iterable[Planned]
) -> tuple[dict[int, str], dict[str, str]]:
    """``(delivery id -> the target's reason to refuse it, target -> why it was not checked)``
    for every planned create or update."""
    problems: dict[int, str] = {}
    unchecked: dict[str, str] = {}
    checks: dict[str, Check | None] = {}
    for p in planned:
        if p.kind not in ("create", "update") or p.change is None:
            continue
        target = p.row.target
        if target not in checks:
            tcfg = cfg.targets.get(target)
            factory = CHECKS.get(tcfg.type) if tcfg is not None else None
            try:
                checks[target] = factory(cfg, target) if factory else None
            except Exception as exc:  # the target's schema is unreachable: say so, go on
                checks[target] = None
                unchecked[target] = " ".join(str(exc).split()) or type(exc).__name__
        check = checks[target]
        if check is None:
            continue
        problem = check(p.change)
        if problem:
            problems[p.row.id] = problem
    return problems, unchecked
