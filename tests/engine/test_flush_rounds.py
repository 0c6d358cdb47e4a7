"""The engine orders a customer's actions within a flush (issue 15: the engine, not the target,
orders them): :func:`syncer.engine.worker.flush_rounds`."""

from __future__ import annotations

from syncer.engine.planner import Planned
from syncer.engine.worker import flush_rounds
from syncer.state.delivery_ops import ClaimedRow
from syncer.targets.base import Change, Known


def planned(did: int, subject: str, action: str) -> Planned:
    row = ClaimedRow(did, "p", "t", "customer", subject, action, 0, False, None, "tok", subject)
    change = Change(did, "p", subject, action, "delete", None, Known())  # type: ignore[arg-type]
    return Planned(row, "delete" if action == "delete" else "update", subject, change)


def test_one_call_while_no_customer_switches_between_writes_and_removals() -> None:
    rows = [planned(1, "a", "upsert"), planned(2, "b", "delete"), planned(3, "a", "upsert")]
    assert [[p.row.id for p in r] for r in flush_rounds(rows)] == [[1, 2, 3]]


def test_each_switch_of_a_customer_goes_one_call_further() -> None:
    rows = [
        planned(1, "a", "upsert"),
        planned(2, "b", "upsert"),
        planned(3, "a", "upsert"),
        planned(4, "a", "delete"),
        planned(5, "b", "leave"),
        planned(6, "a", "upsert"),
        planned(7, "c", "delete"),
    ]
    assert [[p.row.id for p in r] for r in flush_rounds(rows)] == [[1, 2, 3, 7], [4, 5], [6]]
