"""Contacthub simulator over real HTTP: auth, errors, customer CRUD, MERGE/409, validation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.sandbox.contacthub import (
    DEFAULT_NODE_ID as NODE,
)
from syncer.sandbox.contacthub import (
    DEFAULT_TOKEN as TOKEN,
)
from syncer.sandbox.contacthub import (
    DEFAULT_WORKSPACE_ID as WS,
)
from syncer.sandbox.contacthub import (
    ContacthubBehaviour,
    ContacthubSimulator,
)
from syncer.sandbox.serve import ServedApp

OTHER_NODE = "00000000-0000-4000-8000-00000000000b"
API = f"/hub/v1/workspaces/{WS}"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ContacthubSimulator, ServedApp]]:
    sim = ContacthubSimulator(node_ids=(NODE, OTHER_NODE))
    with ServedApp(sim.asgi()) as app:
        yield sim, app


@pytest.fixture
def sim(served: tuple[ContacthubSimulator, ServedApp]) -> ContacthubSimulator:
    served[0].behaviour = ContacthubBehaviour()
    return served[0]


@pytest.fixture
def client(
    served: tuple[ContacthubSimulator, ServedApp], sim: ContacthubSimulator
) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=served[1].url + API, headers=headers, timeout=10) as c:
        httpx.post(served[1].url + "/_sandbox/reset").raise_for_status()
        yield c


def customer(
    ext: str = "E1", email: str = "mario.rossi@example.it", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nodeId": NODE,
        "externalId": ext,
        "base": {"firstName": "Mario", "lastName": "Rossi", "contacts": {"email": email}},
        "tags": {"auto": [], "manual": ["newsletter"]},
    }
    body.update(extra)
    return body


def assert_error(resp: httpx.Response, status: int, message: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    # the shape of every SDK fixture: all four keys always there, each item with code
    assert set(body) == {"message", "logref", "data", "errors"}
    assert isinstance(body["logref"], str) and body["logref"]
    assert isinstance(body["errors"], list)
    assert all(set(item) == {"path", "message", "data", "code"} for item in body["errors"])
    if message is not None:
        assert body["message"] == message
    return body


# -- auth -------------------------------------------------------------------------------------
def test_missing_and_wrong_token_401(served: tuple[ContacthubSimulator, ServedApp]) -> None:
    url = served[1].url + API + "/customers"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        resp = httpx.get(url, params={"nodeId": NODE}, headers=headers)
        assert_error(resp, 401, "The client is not authorized to access the API")


def test_unknown_workspace_403_and_unknown_node_404(
    served: tuple[ContacthubSimulator, ServedApp], client: httpx.Client
) -> None:
    url = served[1].url + "/hub/v1/workspaces/ws-x/customers"
    resp = httpx.get(url, params={"nodeId": NODE}, headers=client.headers)
    assert_error(resp, 403, "workspace not found: ws-x")
    assert_error(client.get("/customers", params={"nodeId": "n-x"}), 404, "node not found n-x")
    assert_error(client.post("/customers", json=customer(nodeId="n-y")), 404, "node not found n-y")
    assert_error(client.get("/updates", params={"nodeId": "n-z"}), 404, "node not found n-z")


# -- create / read / merge ------------------------------------------------------------------------
def test_create_returns_201_with_system_fields(client: httpx.Client) -> None:
    resp = client.post("/customers", json=customer())
    assert resp.status_code == 201
    doc = resp.json()
    assert doc["nodeId"] == NODE and doc["externalId"] == "E1"
    assert doc["version"] == 0 and doc["deleted"] == 0 and doc["enabled"] is True
    assert doc["registeredAt"] == doc["updatedAt"]
    # the API's spelling (every SDK fixture): milliseconds and +0000, never Z
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", doc["registeredAt"])
    assert doc["extended"] == {} and doc["tags"] == {"auto": [], "manual": ["newsletter"]}
    assert client.get(f"/customers/{doc['id']}").json() == doc
    assert_error(client.get("/customers/00000000-0000-4000-8000-000000000000"), 404)


def test_merge_updates_existing_customer(client: httpx.Client) -> None:
    first = client.post("/customers", json=customer()).json()
    again = client.post(
        "/customers",
        json=customer(email="new@example.it", tags={"manual": ["vip", "newsletter"]}),
    )
    assert again.status_code == 200
    doc = again.json()
    assert doc["id"] == first["id"] and doc["version"] == 1
    assert doc["base"]["contacts"]["email"] == "new@example.it"
    assert doc["base"]["firstName"] == "Mario"  # kept
    assert doc["tags"]["manual"] == ["newsletter", "vip"]  # appended, deduplicated
    assert doc["registeredAt"] == first["registeredAt"]
    assert len(client.get("/customers", params={"nodeId": NODE}).json()["elements"]) == 1


def test_conflict_mode_409(client: httpx.Client, sim: ContacthubSimulator) -> None:
    sim.behaviour = ContacthubBehaviour(conflict_mode="409")
    first = client.post("/customers", json=customer()).json()
    body = assert_error(client.post("/customers", json=customer()), 409)
    assert body["message"] == f"Conflict with exiting customer {first['id']}"
    assert body["data"]["customer"]["id"] == first["id"]
    assert body["data"]["customer"]["href"].endswith(f"/customers/{first['id']}")


def test_matching_policy_is_required_and_configurable(
    client: httpx.Client, sim: ContacthubSimulator
) -> None:
    no_ext = customer()
    del no_ext["externalId"]
    body = assert_error(client.post("/customers", json=no_ext), 400, "source customer is not valid")
    assert body["errors"][0] == {
        "message": "unique customer property is required",
        "path": "/externalId",
        "data": None,
        "code": None,
    }
    policy = client.get(f"/configuration/nodes/entries/{NODE}/unique-customer-matching-policy")
    assert policy.json() == {"properties": ["externalId"], "caseSensitive": True}
    sim.behaviour = ContacthubBehaviour(
        matching_policy=["base.contacts.email"], matching_case_sensitive=False
    )
    a = client.post("/customers", json=customer("A", "Same@Example.it")).json()
    b = client.post("/customers", json=customer("B", "same@example.it"))
    assert b.status_code == 200 and b.json()["id"] == a["id"] and b.json()["externalId"] == "B"


# -- updates ----------------------------------------------------------------------------------
def test_patch_deep_merges_and_bumps_version(client: httpx.Client) -> None:
    doc = client.post("/customers", json=customer()).json()
    resp = client.patch(
        f"/customers/{doc['id']}",
        json={
            "base": {"contacts": {"mobilePhone": "+39 347 123 4567"}},
            "tags": {"manual": ["vip"]},
            "id": "ignored",
            "version": 99,
            "registeredAt": "2000-01-01T00:00:00.000Z",
        },
    )
    assert resp.status_code == 200
    new = resp.json()
    assert new["base"]["contacts"] == {
        "email": "mario.rossi@example.it",
        "mobilePhone": "+39 347 123 4567",
    }
    assert new["tags"]["manual"] == ["vip"]  # lists are replaced by PATCH
    assert new["id"] == doc["id"] and new["version"] == 1
    assert new["registeredAt"] == doc["registeredAt"] and new["updatedAt"] >= doc["updatedAt"]


def test_patch_strict_replaces_top_level(client: httpx.Client) -> None:
    doc = client.post("/customers", json=customer()).json()
    new = client.patch(
        f"/customers/{doc['id']}?mode=STRICT", json={"base": {"lastName": "Verdi"}}
    ).json()
    assert new["base"] == {"lastName": "Verdi"}


def test_put_keeps_missing_unless_strict(client: httpx.Client) -> None:
    doc = client.post("/customers", json=customer(extended={"loyaltyTier": "gold"})).json()
    body = {"nodeId": NODE, "externalId": "E1", "base": {"firstName": "Luigi"}}
    kept = client.put(f"/customers/{doc['id']}", json=body).json()
    assert kept["base"]["firstName"] == "Luigi" and kept["base"]["lastName"] == "Rossi"
    assert kept["extended"] == {"loyaltyTier": "gold"} and kept["version"] == 1
    strict = client.put(f"/customers/{doc['id']}?mode=STRICT", json=body).json()
    assert strict["base"] == {"firstName": "Luigi"} and strict["extended"] == {}
    assert strict["version"] == 2 and strict["id"] == doc["id"]
    no_node = {"externalId": "E1"}
    assert_error(client.put(f"/customers/{doc['id']}", json=no_node), 400)
    moved = {**body, "nodeId": OTHER_NODE}
    assert_error(client.put(f"/customers/{doc['id']}", json=moved), 400)


def test_update_into_another_customers_key_is_409(client: httpx.Client) -> None:
    client.post("/customers", json=customer("A")).raise_for_status()
    b = client.post("/customers", json=customer("B")).json()
    assert_error(client.patch(f"/customers/{b['id']}", json={"externalId": "A"}), 409)


def test_delete_customer(client: httpx.Client) -> None:
    doc = client.post("/customers", json=customer()).json()
    resp = client.delete(f"/customers/{doc['id']}")
    # 200 and an empty body: "the API returns an empty body" (Go SDK client/customers.go)
    assert resp.status_code == 200 and resp.content == b""
    assert_error(client.get(f"/customers/{doc['id']}"), 404, f"customer not found {doc['id']}")
    assert_error(client.delete(f"/customers/{doc['id']}"), 404)
    assert_error(client.patch(f"/customers/{doc['id']}", json={}), 404)
    # its externalId is free again
    assert client.post("/customers", json=customer()).status_code == 201


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"base": {"firstName": "x" * 256}}, "/base/firstName"),
        ({"base": {"address": {"street": "s" * 501}}}, "/base/address/street"),
        ({"base": {"pictureUrl": "p" * 1001}}, "/base/pictureUrl"),
        ({"tags": {"manual": ["t" * 500, "u" * 500]}}, "/tags/manual"),
        ({"base": {"nickname": "x"}}, "/base/nickname"),
        ({"surprise": 1}, "/surprise"),
        ({"base": {"contacts": {"email": "not an email"}}}, "/base/contacts/email"),
        ({"enabled": "yes"}, "/enabled"),
        ({"externalId": 5}, "/externalId"),
    ],
)
def test_invalid_customer_400(client: httpx.Client, patch: dict[str, Any], path: str) -> None:
    body = customer()
    for key, value in patch.items():
        body[key] = {**body[key], **value} if isinstance(body.get(key), dict) else value
    err = assert_error(client.post("/customers", json=body), 400, "customer is not valid")
    assert path in [e["path"] for e in err["errors"]]


def test_limits_that_pass(client: httpx.Client) -> None:
    body = customer(base={"firstName": "x" * 255, "address": {"street": "s" * 500}})
    assert client.post("/customers", json=body).status_code == 201


def test_payload_over_64kb_413_and_bad_json_400(client: httpx.Client) -> None:
    body = customer(extended={"blob": "x" * 70_000})
    assert_error(client.post("/customers", json=body), 413)
    resp = client.post("/customers", content=b"{nope", headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "the request body is not valid JSON")
    assert_error(client.post("/customers", json=[1, 2]), 400)
    no_node = customer()
    del no_node["nodeId"]
    assert_error(client.post("/customers", json=no_node), 400)


# -- admin ----------------------------------------------------------------------------------------
def test_admin_state_behaviour_and_load(
    served: tuple[ContacthubSimulator, ServedApp], client: httpx.Client
) -> None:
    root = served[1].url + "/_sandbox"
    loaded = httpx.post(
        root + "/load", json={"customers": [customer("L1")], "append_updates": True}
    )
    assert loaded.json()["customers"] == 1 and loaded.json()["lastOffset"] == 1
    state = httpx.get(root + "/state").json()
    assert state["customers"][0]["externalId"] == "L1"
    assert state["customers"][0]["version"] == 0 and "id" in state["customers"][0]
    summary = httpx.get(root + "/state", params={"summary": "1"}).json()
    assert "customers" not in summary and summary["workspaces"][WS]["customers"] == 1
    resp = httpx.put(root + "/behaviour", json={"max_page_size": 100})
    assert resp.json()["max_page_size"] == 100
    assert httpx.put(root + "/behaviour", json={"nope": 1}).status_code == 400
    assert httpx.put(root + "/behaviour", json={"search_cap_mode": "x"}).status_code == 400
    gen = httpx.post(
        root + "/load", json={"generate": {"customers": 300, "events": 100, "seed": 7}}
    )
    assert gen.json() == {"customers": 300, "events": 100, "lastOffset": 1}
    assert client.get("/customers", params={"nodeId": NODE}).json()["page"]["totalElements"] == 301
