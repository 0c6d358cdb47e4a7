"""Contacthub customer search: paging, sort, fields, query operators, the 10,000 cap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.sandbox.contacthub import DEFAULT_NODE_ID as NODE
from syncer.sandbox.contacthub import DEFAULT_TOKEN as TOKEN
from syncer.sandbox.contacthub import DEFAULT_WORKSPACE_ID as WS
from syncer.sandbox.contacthub import ContacthubBehaviour, ContacthubSimulator
from syncer.sandbox.datagen import generate_customers
from syncer.sandbox.serve import ServedApp

N = 12_000


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ContacthubSimulator, ServedApp, list[dict[str, Any]]]]:
    sim = ContacthubSimulator()
    customers = list(generate_customers(N, seed=11, node_id=NODE))
    sim.load({"customers": customers})
    with ServedApp(sim.asgi()) as app:
        yield sim, app, customers


@pytest.fixture
def client(served: tuple[ContacthubSimulator, ServedApp, Any]) -> Iterator[httpx.Client]:
    served[0].behaviour = ContacthubBehaviour()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{served[1].url}/hub/v1/workspaces/{WS}"
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        yield c


@pytest.fixture
def customers(served: tuple[Any, Any, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return served[2]


def search(client: httpx.Client, **params: Any) -> httpx.Response:
    if isinstance(params.get("query"), dict):
        params["query"] = json.dumps(params["query"])
    return client.get("/customers", params={"nodeId": NODE, **params})


def simple(condition: dict[str, Any]) -> dict[str, Any]:
    return {"type": "simple", "name": "query", "are": {"condition": condition}}


def wrap(query: dict[str, Any]) -> dict[str, Any]:
    return {"name": "query", "query": query}


def atomic(attribute: str, operator: str, value: Any = None) -> dict[str, Any]:
    cond = {"type": "atomic", "attribute": attribute, "operator": operator}
    if value is not None:
        cond["value"] = value
    return cond


def q(condition: dict[str, Any]) -> dict[str, Any]:
    return wrap(simple(condition))


def all_matching(
    client: httpx.Client, query: dict[str, Any], sort: str = "id,asc"
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 0
    while True:
        body = search(client, query=query, size=50, page=page, sort=sort).json()
        out.extend(body["elements"])
        page += 1
        if page >= body["page"]["totalPages"]:
            return out


# -- paging ---------------------------------------------------------------------------------------
def test_default_page_is_10_sorted_by_updated_desc(
    client: httpx.Client, customers: list[dict[str, Any]]
) -> None:
    body = search(client).json()
    # size 10 and totalUnfilteredElements 0: every SDK fixture; maxElements/maxPages: 1.299.1
    assert body["page"] == {
        "size": 10,
        "totalElements": 10_000,
        "totalUnfilteredElements": 0,
        "totalPages": 1000,
        "number": 0,
        "maxElements": 10_000,
        "maxPages": 1000,
    }
    got = [c["updatedAt"] for c in body["elements"]]
    assert got == sorted(got, reverse=True)
    assert got[0] == max(c["updatedAt"] for c in customers)


@pytest.mark.parametrize("size", ["0", "51", "-1", "x"])
def test_bad_size_400(client: httpx.Client, size: str) -> None:
    resp = search(client, size=size)
    assert resp.status_code == 400 and resp.json()["message"].startswith("size must")


def test_bad_page_and_missing_node_400(client: httpx.Client) -> None:
    assert search(client, page=-1).status_code == 400
    resp = client.get("/customers")
    assert resp.status_code == 400 and resp.json()["message"] == "nodeId is required"


def test_max_page_size_is_a_switch(client: httpx.Client, served: Any) -> None:
    assert len(search(client, size=50).json()["elements"]) == 50
    served[0].behaviour = ContacthubBehaviour(max_page_size=200)
    assert len(search(client, size=200).json()["elements"]) == 200


def test_last_page_and_past_the_end(client: httpx.Client) -> None:
    last = search(client, size=50, page=199).json()
    assert len(last["elements"]) == 50 and last["page"]["number"] == 199
    past = search(client, size=50, page=200).json()
    assert past["elements"] == [] and past["page"]["totalPages"] == 200
    odd = search(client, size=30, page=333).json()  # 10000 = 333 * 30 + 10
    assert len(odd["elements"]) == 10 and odd["page"]["totalPages"] == 334


def test_empty_result(client: httpx.Client) -> None:
    body = search(client, externalId="nobody").json()
    assert body["elements"] == [] and body["page"]["totalElements"] == 0
    assert body["page"]["totalPages"] == 0


def test_external_id_sort_and_fields(client: httpx.Client, customers: list[dict[str, Any]]) -> None:
    target = customers[42]
    body = search(client, externalId=target["externalId"]).json()
    assert [c["id"] for c in body["elements"]] == [target["id"]]
    asc = search(client, sort="registeredAt,asc", size=5).json()["elements"]
    assert asc[0]["registeredAt"] == min(c["registeredAt"] for c in customers)
    slim = search(
        client, sort="registeredAt,asc", size=1, fields="base.contacts.email,externalId"
    ).json()
    one = slim["elements"][0]
    assert set(one) == {"id", "base", "externalId"} and set(one["base"]) == {"contacts"}
    assert search(client, sort="registeredAt,sideways").status_code == 400


# -- the 10,000 cap ------------------------------------------------------------------------
def test_cap_truncates_by_default(client: httpx.Client, customers: list[dict[str, Any]]) -> None:
    body = search(client, size=50, page=199, sort="registeredAt,asc").json()
    assert body["page"]["totalElements"] == 10_000 and body["page"]["maxElements"] == 10_000
    expected = sorted(c["registeredAt"] for c in customers)[9_999]
    assert body["elements"][-1]["registeredAt"] == expected
    assert search(client, size=50, page=200).json()["elements"] == []


def test_cap_error_mode(client: httpx.Client, served: Any) -> None:
    served[0].behaviour = ContacthubBehaviour(search_cap_mode="error")
    resp = search(client)
    assert resp.status_code == 400
    assert resp.json()["data"] == {"matchedElements": N, "maxElements": 10_000}
    narrow = q(atomic("registeredAt", "LT", "2019-01-01T00:00:00Z"))
    assert search(client, query=narrow).status_code == 200


# -- query operators ---------------------------------------------------------------------------
def _expected(customers: list[dict[str, Any]], pred: Any) -> set[str]:
    return {c["id"] for c in customers if pred(c)}


def test_between_on_registered_at(client: httpx.Client, customers: list[dict[str, Any]]) -> None:
    low, high = "2020-01-01T00:00:00Z", "2020-03-31T23:59:59.999Z"
    got = all_matching(client, q(atomic("registeredAt", "BETWEEN", [low, high])))
    want = _expected(
        customers, lambda c: "2020-01-01" <= c["registeredAt"] <= "2020-03-31T23:59:59.999Z"
    )
    assert {c["id"] for c in got} == want and 100 < len(want) < 10_000
    # offsets in the literal are honoured: +01:00 shifts the window by one hour
    shifted = all_matching(
        client,
        q(
            atomic(
                "registeredAt",
                "BETWEEN",
                ["2020-01-01T01:00:00+01:00", "2020-04-01T00:59:59.999+01:00"],
            )
        ),
    )
    assert {c["id"] for c in shifted} == want


def test_slices_cover_everything_once(
    client: httpx.Client, customers: list[dict[str, Any]]
) -> None:
    seen: list[str] = []
    for year in range(2018, 2026):
        cond = {
            "type": "composite",
            "conjunction": "and",
            "conditions": [
                atomic("registeredAt", "GTE", f"{year}-01-01T00:00:00Z"),
                atomic("registeredAt", "LT", f"{year + 1}-01-01T00:00:00Z"),
            ],
        }
        seen.extend(c["id"] for c in all_matching(client, q(cond)))
    assert sorted(seen) == sorted(c["id"] for c in customers)


@pytest.mark.parametrize(
    ("condition", "pred"),
    [
        (
            atomic("base.address.country", "EQUALS", "Italia"),
            lambda c: c["base"]["address"]["country"] == "Italia",
        ),
        (atomic("base.locale", "NOT_EQUALS", "it_IT"), lambda c: c["base"]["locale"] != "it_IT"),
        (atomic("tags.manual", "EQUALS", "vip"), lambda c: "vip" in c["tags"]["manual"]),
        (atomic("extended.points", "GT", 4900), lambda c: c["extended"]["points"] > 4900),
        (atomic("extended.points", "LTE", 10), lambda c: c["extended"]["points"] <= 10),
        (
            atomic("extended.loyaltyTier", "IN", ["gold", "platinum"]),
            lambda c: c["extended"]["loyaltyTier"] in ("gold", "platinum"),
        ),
        (
            atomic("base.locale", "NOT_IN", ["it_IT", "es_ES"]),
            lambda c: c["base"]["locale"] == "fr_FR",
        ),
        # a scalar IN / NOT_IN value is a one-element list (both official SDKs send one)
        (
            atomic("extended.loyaltyTier", "IN", "gold"),
            lambda c: c["extended"]["loyaltyTier"] == "gold",
        ),
        (
            atomic("base.locale", "NOT_IN", "it_IT"),
            lambda c: c["base"]["locale"] != "it_IT",
        ),
        (
            atomic("base.contacts.email", "IS_NULL"),
            lambda c: c["base"]["contacts"]["email"] is None,
        ),
        (atomic("base.dob", "IS_NOT_NULL"), lambda c: c["base"]["dob"] is not None),
        (
            atomic("base.dob", "LT", "1950-01-01"),
            lambda c: (c["base"]["dob"] or "9") < "1950-01-01",
        ),
        (atomic("enabled", "EQUALS", False), lambda c: c["enabled"] is False),
        (
            {
                "type": "composite",
                "conjunction": "or",
                "conditions": [
                    atomic("extended.loyaltyTier", "EQUALS", "platinum"),
                    atomic("tags.manual", "EQUALS", "vip"),
                ],
            },
            lambda c: c["extended"]["loyaltyTier"] == "platinum" or "vip" in c["tags"]["manual"],
        ),
    ],
)
def test_operators(
    client: httpx.Client, customers: list[dict[str, Any]], condition: dict[str, Any], pred: Any
) -> None:
    want = _expected(customers, pred)
    body = search(client, query=q(condition), size=1).json()
    assert body["page"]["totalElements"] == min(len(want), 10_000) and want
    if len(want) <= 3000:
        assert {c["id"] for c in all_matching(client, q(condition))} == want


def test_combined_intersect_and_union(
    client: httpx.Client, customers: list[dict[str, Any]]
) -> None:
    vip = simple(atomic("tags.manual", "EQUALS", "vip"))
    gold = simple(atomic("extended.loyaltyTier", "EQUALS", "gold"))
    both = wrap(
        {"type": "combined", "name": "query", "conjunction": "INTERSECT", "queries": [vip, gold]}
    )
    either = wrap(
        {"type": "combined", "name": "query", "conjunction": "UNION", "queries": [vip, gold]}
    )

    def is_vip(c: dict[str, Any]) -> bool:
        return "vip" in c["tags"]["manual"]

    def is_gold(c: dict[str, Any]) -> bool:
        return bool(c["extended"]["loyaltyTier"] == "gold")

    assert {c["id"] for c in all_matching(client, both)} == _expected(
        customers, lambda c: is_vip(c) and is_gold(c)
    )
    body = search(client, query=either, size=1).json()
    assert body["page"]["totalElements"] == len(
        _expected(customers, lambda c: is_vip(c) or is_gold(c))
    )


@pytest.mark.parametrize(
    "query",
    [
        "{not json",
        json.dumps({"query": {"type": "simple"}}),
        json.dumps([1]),
        json.dumps(q(atomic("x", "LIKE", "a"))),
        json.dumps(q(atomic("x", "EQUALS"))),
        json.dumps(q(atomic("x", "BETWEEN", ["a"]))),
        json.dumps(q(atomic("x", "IN", {"a": 1}))),
        json.dumps(q(atomic("x", "NOT_IN", []))),
        json.dumps(q(atomic("", "EQUALS", "a"))),
        json.dumps(
            q({"type": "composite", "conjunction": "xor", "conditions": [atomic("x", "IS_NULL")]})
        ),
        json.dumps(q({"type": "composite", "conjunction": "and", "conditions": []})),
        json.dumps(wrap({"type": "combined", "conjunction": "MINUS", "queries": []})),
        json.dumps(q({"type": "weird"})),
    ],
)
def test_malformed_query_400(client: httpx.Client, query: str) -> None:
    resp = client.get("/customers", params={"nodeId": NODE, "query": query})
    assert resp.status_code == 400, resp.text
    assert resp.json()["errors"][0]["path"] == "query"
