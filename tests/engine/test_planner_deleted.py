"""Once a customer's delete is known, nothing but the delete is sent (issue 14, defects 2, 4).

A failed upsert (or an event of the customer) still open when the delete arrives used to go
out first: for NP6, whose flush ran deletes before imports, the older upsert then re-created
the deleted customer. The planner now supersedes every non-delete row of a deleted customer.
"""

from __future__ import annotations

from deliver_helpers import config, nrs_target, pipeline

from syncer.engine.planner import Planner
from syncer.mapping import compile_pipelines
from syncer.state.delivery_ops import ClaimedRow, Entity
from syncer.targets.base import Known


def _row(row_id: int, entity_type: str, entity_id: str, action: str) -> ClaimedRow:
    return ClaimedRow(row_id, "p", "t", entity_type, entity_id, action, 1, False, None)


def test_rows_of_a_deleted_customer_are_superseded_but_its_delete_goes_out() -> None:
    cfg = config({"t": nrs_target("http://nrs.invalid")}, [pipeline("p", "t")])
    planner = Planner(compile_pipelines(cfg), {"p": "delete"})
    doc = {"id": "c1", "base": {"contacts": {"email": "a@example.com"}}}
    entities = {
        ("customer", "c1"): Entity("customer", "c1", None, doc, deleted=True),
        ("event", "e1"): Entity("event", "e1", "c1", {"id": "e1"}, deleted=False),
    }
    known = {"c1": Known(target_id="42")}
    rows = [
        _row(1, "customer", "c1", "upsert"),
        _row(2, "customer", "c1", "leave"),
        _row(3, "event", "e1", "upsert"),
        _row(4, "customer", "c1", "delete"),
    ]
    planned = planner.plan(rows, entities, known, {})
    assert [(p.kind, p.change is None) for p in planned] == [
        ("superseded", True),
        ("superseded", True),
        ("superseded", True),
        ("delete", False),
    ]


def test_a_live_customer_is_planned_as_before() -> None:
    cfg = config({"t": nrs_target("http://nrs.invalid")}, [pipeline("p", "t")])
    planner = Planner(compile_pipelines(cfg), {"p": "delete"})
    # tagged "p": the pipeline selects it (one it no longer selects is superseded)
    doc = {"id": "c1", "email": "a@example.com", "tags": {"auto": [], "manual": ["p"]}}
    entities = {("customer", "c1"): Entity("customer", "c1", None, doc, deleted=False)}
    [planned] = planner.plan([_row(1, "customer", "c1", "upsert")], entities, {}, {})
    assert planned.kind == "create", planned
