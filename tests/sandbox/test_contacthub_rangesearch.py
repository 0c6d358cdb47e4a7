"""Date-range searches answered by bisection give exactly what testing every customer gives."""

from __future__ import annotations

import json
from typing import Any

import pytest

from syncer.sandbox.contacthub import DEFAULT_NODE_ID as NODE
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.contacthub.query import compile_query, sort_ids
from syncer.sandbox.contacthub.rangesearch import query_range
from syncer.sandbox.contacthub.store import WorkspaceStore
from syncer.sandbox.datagen import generate_customers

N = 3_000


def atom(attr: str, op: str, value: Any = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": "atomic", "attribute": attr, "operator": op}
    if value is not None:
        cond["value"] = value
    return cond


def simple(*conds: dict[str, Any], conj: str = "and") -> dict[str, Any]:
    cond = (
        conds[0]
        if len(conds) == 1
        else {"type": "composite", "conjunction": conj, "conditions": list(conds)}
    )
    return {"type": "simple", "name": "q", "are": {"condition": cond}}


def text(query: dict[str, Any]) -> str:
    return json.dumps({"name": "q", "query": query})


def linear(store: WorkspaceStore, prop: str, desc: bool, query: str) -> list[str]:
    pred = compile_query(query)
    docs = {cid: c for cid, c in store.customers.items() if pred(c)}
    return sort_ids(docs, prop, desc)


def fast(store: WorkspaceStore, prop: str, desc: bool, query: str) -> list[str]:
    return store.matching_ids(NODE, prop, desc, query, compile_query(query))


@pytest.fixture(scope="module")
def store() -> WorkspaceStore:
    sim = ContacthubSimulator()
    customers = list(generate_customers(N, seed=3, node_id=NODE))
    for i, doc in enumerate(customers[:400]):  # crowds: 80 customers per instant
        doc["registeredAt"] = customers[400 + i % 5]["registeredAt"]
    for doc in customers[500:520]:
        doc["registeredAt"] = None
    sim.load({"customers": customers})
    return sim.workspaces[sim.workspace_id]


def cases(store: WorkspaceStore) -> list[str]:
    ordered = store.sorted_customer_ids(NODE, "registeredAt", False)
    at = [store.customers[ordered[i]]["registeredAt"] for i in (0, 700, 1500, 2900)]
    crowd = store.customers[ordered[1000]]["registeredAt"]
    ra = "registeredAt"
    return [
        text(simple(atom(ra, "GTE", at[1]), atom(ra, "LT", at[2]))),
        text(simple(atom(ra, "GT", at[1]), atom(ra, "LTE", at[2]))),
        text(simple(atom(ra, "GTE", crowd), atom(ra, "LT", crowd))),  # empty
        text(simple(atom(ra, "EQUALS", crowd))),
        text(simple(atom(ra, "BETWEEN", [at[0], at[1]]))),
        text(simple(atom(ra, "GTE", at[3]))),
        text(simple(atom(ra, "LT", at[1]), atom(ra, "LT", at[2]), atom(ra, "GTE", at[0]))),
        text(simple(atom(ra, "GTE", "2021-03-01"), atom(ra, "LT", "2023-01-01T02:00:00+02:00"))),
        text(simple(atom(ra, "GT", "2020-05-05T10:00:00.1234Z"))),  # finer than a millisecond
        text(simple(atom(ra, "GTE", at[1]), atom("updatedAt", "GTE", "2024-01-01T00:00:00Z"))),
        text(simple(atom(ra, "GTE", at[1]), atom("base.gender", "EQUALS", "female"))),
        text(simple(atom(ra, "LT", at[1]), atom(ra, "GTE", at[2]), conj="or")),
        text(simple(atom(ra, "IS_NULL"))),
        text(simple(atom(ra, "GTE", "not a date"))),
        text(
            {
                "type": "combined",
                "name": "q",
                "conjunction": "INTERSECT",
                "queries": [simple(atom(ra, "GTE", at[0])), simple(atom(ra, "LT", at[2]))],
            }
        ),
    ]


@pytest.mark.parametrize("desc", [False, True])
def test_range_searches_match_the_linear_evaluator(store: WorkspaceStore, desc: bool) -> None:
    found = 0
    for query in cases(store):
        expected = linear(store, "registeredAt", desc, query)
        assert fast(store, "registeredAt", desc, query) == expected, query
        found += bool(expected)
    assert found >= 10  # the cases are not all empty


def test_the_range_is_taken_from_the_and_path_only(store: WorkspaceStore) -> None:
    ra = "registeredAt"
    both = simple(atom(ra, "GTE", "2020-01-01"), atom(ra, "LT", "2021-01-01T01:00:00+01:00"))
    bounded = query_range(text(both), ra)
    assert bounded is not None and bounded.exact
    assert bounded.low == ("2020-01-01T00:00:00.000+0000", True)
    assert bounded.high == ("2021-01-01T00:00:00.000+0000", False)
    mixed = query_range(text(simple(atom(ra, "GTE", "2020-01-01"), atom("x", "IS_NULL"))), ra)
    assert mixed is not None and not mixed.exact
    either = simple(atom(ra, "LT", "2020-01-01"), atom(ra, "GTE", "2021-01-01"), conj="or")
    assert query_range(text(either), ra) is None


def test_only_the_run_is_tested(store: WorkspaceStore) -> None:
    ordered = store.sorted_customer_ids(NODE, "registeredAt", False)
    lo, hi = (store.customers[ordered[i]]["registeredAt"] for i in (1000, 1100))
    tested: list[str] = []

    def pred(doc: dict[str, Any]) -> bool:
        tested.append(doc["id"])
        return True

    ra = "registeredAt"
    exact = text(simple(atom(ra, "GTE", lo), atom(ra, "LT", hi)))
    assert len(store.matching_ids(NODE, ra, False, exact, pred)) >= 90
    assert tested == []  # the bounds were the whole query
    extra = text(simple(atom(ra, "GTE", lo), atom(ra, "LT", hi), atom("enabled", "EQUALS", True)))
    store.matching_ids(NODE, ra, False, extra, pred)
    assert 90 <= len(tested) <= 110


def test_a_sort_property_that_is_not_a_canonical_timestamp_falls_back(
    store: WorkspaceStore,
) -> None:
    # updatedAt sorted by updatedAt: bisection too; then one odd value disables it.
    query = text(simple(atom("updatedAt", "GTE", "2022-01-01T00:00:00.000Z")))
    assert fast(store, "updatedAt", False, query) == linear(store, "updatedAt", False, query)
    sim = ContacthubSimulator()
    customers = list(generate_customers(300, seed=4, node_id=NODE))
    customers[7]["registeredAt"] = "2022-06-01T12:00:00+02:00"  # same instant, not canonical
    customers[8]["registeredAt"] = "2022-06-01T10:00:00.000+0000"
    sim.load({"customers": customers})
    odd = sim.workspaces[sim.workspace_id]
    query = text(simple(atom("registeredAt", "GTE", "2022-06-01T10:00:00Z")))
    tested: list[str] = []
    pred = compile_query(query)

    def counting(doc: dict[str, Any]) -> bool:
        tested.append(doc["id"])
        return pred(doc)

    got = odd.matching_ids(NODE, "registeredAt", False, query, counting)
    assert got == linear(odd, "registeredAt", False, query)
    assert len(tested) == 300  # tested one by one
    assert {customers[7]["id"], customers[8]["id"]} <= set(got)


def test_a_write_refreshes_the_index(store: WorkspaceStore) -> None:
    sim = ContacthubSimulator()
    sim.load({"customers": list(generate_customers(200, seed=5, node_id=NODE))})
    small = sim.workspaces[sim.workspace_id]
    query = text(simple(atom("registeredAt", "GTE", "2030-01-01T00:00:00.000Z")))
    assert fast(small, "registeredAt", False, query) == []
    doc = dict(next(iter(small.customers.values())), registeredAt="2030-02-02T00:00:00.000+0000")
    small.put_customer(doc)
    assert fast(small, "registeredAt", False, query) == [doc["id"]]
