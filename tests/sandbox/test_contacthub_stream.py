"""Contacthub update stream and events over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.sandbox.contacthub import DEFAULT_NODE_ID as NODE
from syncer.sandbox.contacthub import DEFAULT_TOKEN as TOKEN
from syncer.sandbox.contacthub import DEFAULT_WORKSPACE_ID as WS
from syncer.sandbox.contacthub import ContacthubBehaviour, ContacthubSimulator
from syncer.sandbox.serve import ServedApp

NODE_B = "00000000-0000-4000-8000-0000000000bb"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ContacthubSimulator, ServedApp]]:
    sim = ContacthubSimulator(node_ids=(NODE, NODE_B))
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
    with httpx.Client(
        base_url=f"{served[1].url}/hub/v1/workspaces/{WS}", headers=headers, timeout=10
    ) as c:
        httpx.post(served[1].url + "/_sandbox/reset").raise_for_status()
        yield c


def create(client: httpx.Client, ext: str, node: str = NODE) -> dict[str, Any]:
    resp = client.post(
        "/customers", json={"nodeId": node, "externalId": ext, "base": {"firstName": ext}}
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def event(client: httpx.Client, cid: str, kind: str = "completedOrder", **extra: Any) -> str:
    body = {
        "customerId": cid,
        "type": kind,
        "context": "ECOMMERCE",
        "properties": {"orderId": "O1", "amount": {"total": 10.5}},
        **extra,
    }
    resp = client.post("/events", json=body)
    assert resp.status_code == 202, resp.text
    assert set(resp.json()) == {"id"}
    return str(resp.json()["id"])


def updates(client: httpx.Client, **params: Any) -> dict[str, Any]:
    resp = client.get("/updates", params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# -- the stream ---------------------------------------------------------------------------------
def test_empty_stream(client: httpx.Client) -> None:
    assert client.get("/updates/last-offset").json() == {"lastOffset": 0}
    assert updates(client) == {"nextOffset": 0, "updates": []}
    assert updates(client, offset=7) == {"nextOffset": 7, "updates": []}


def test_every_write_appends_one_update(client: httpx.Client) -> None:
    a = create(client, "A")
    client.patch(f"/customers/{a['id']}", json={"base": {"lastName": "X"}}).raise_for_status()
    eid = event(client, a["id"])
    client.post(
        "/customers", json={"nodeId": NODE, "externalId": "A", "extra": "m"}
    ).raise_for_status()
    body = updates(client)
    ops = [(u["operation"], u["entity"]["type"]) for u in body["updates"]]
    assert ops == [
        ("CREATE", "CUSTOMER"),
        ("UPDATE", "CUSTOMER"),
        ("CREATE", "EVENT"),
        ("UPDATE", "CUSTOMER"),
    ]
    assert body["nextOffset"] == 4
    assert set(body["updates"][0]) == {"operation", "entity"}  # no offset of its own
    assert body["updates"][0]["entity"]["data"]["version"] == 0  # a snapshot, not the live doc
    assert body["updates"][1]["entity"]["data"]["base"]["lastName"] == "X"
    assert body["updates"][2]["entity"]["data"]["id"] == eid
    assert body["updates"][3]["entity"]["data"]["version"] == 2
    # reads, failed writes and searches append nothing
    client.get(f"/customers/{a['id']}")
    assert client.post("/customers", json={"nodeId": NODE}).status_code == 400
    assert client.get("/updates/last-offset").json() == {"lastOffset": 4}


def test_offset_is_exclusive_and_size_pages(client: httpx.Client) -> None:
    for i in range(10):
        create(client, f"C{i}")
    page = updates(client, offset=3, size=4)
    assert page["nextOffset"] == 7
    assert [u["entity"]["data"]["externalId"] for u in page["updates"]] == ["C3", "C4", "C5", "C6"]
    tail = updates(client, offset=page["nextOffset"], size=4000)
    assert tail["nextOffset"] == 10 and len(tail["updates"]) == 3
    assert updates(client, offset=10) == {"nextOffset": 10, "updates": []}
    assert updates(client, offset=2, size=0) == {"nextOffset": 2, "updates": []}
    assert len(updates(client)["updates"]) == 10  # default size 50


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("size", "4001"),
        ("size", "-1"),
        ("size", "x"),
        ("offset", "-1"),
        ("offset", "abc"),
        ("timestamp", "x"),
        ("entity", "ORDER"),
    ],
)
def test_bad_stream_params_400(client: httpx.Client, name: str, value: str) -> None:
    resp = client.get("/updates", params={name: value})
    assert resp.status_code == 400 and resp.json()["logref"]


def test_size_4000_returns_a_full_page(
    served: tuple[ContacthubSimulator, ServedApp], client: httpx.Client
) -> None:
    docs = [
        {"nodeId": NODE, "externalId": f"L{i}", "base": {"firstName": "Anna"}} for i in range(9000)
    ]
    httpx.post(served[1].url + "/_sandbox/load", json={"customers": docs, "append_updates": True})
    body = updates(client, offset=1000, size=4000)  # its speed is measured in bench/, not here
    assert len(body["updates"]) == 4000 and body["nextOffset"] == 5000


def test_node_and_entity_filters(client: httpx.Client) -> None:
    a, b = create(client, "A"), create(client, "B", NODE_B)
    event(client, a["id"])
    event(client, b["id"])
    create(client, "A2")
    only_b = updates(client, nodeId=NODE_B)
    assert [u["entity"]["type"] for u in only_b["updates"]] == ["CUSTOMER", "EVENT"]
    assert only_b["nextOffset"] == 4  # offsets stay workspace-wide
    events_a = updates(client, nodeId=NODE, entity="EVENT")
    assert len(events_a["updates"]) == 1 and events_a["nextOffset"] == 3
    customers = updates(client, entity="CUSTOMER", offset=2)
    assert [u["entity"]["data"]["externalId"] for u in customers["updates"]] == ["A2"]
    assert customers["nextOffset"] == 5
    assert updates(client, entity="EVENT", offset=4) == {"nextOffset": 4, "updates": []}
    last = client.get("/updates/last-offset", params={"nodeId": NODE_B}).json()
    assert last == {"lastOffset": 4}
    assert client.get("/updates/last-offset", params={"entity": "EVENT"}).json() == {
        "lastOffset": 4
    }
    assert client.get(
        "/updates/last-offset", params={"nodeId": NODE, "entity": "CUSTOMER"}
    ).json() == {"lastOffset": 5}


def test_timestamp_used_only_without_offset(client: httpx.Client, sim: ContacthubSimulator) -> None:
    create(client, "old")
    time.sleep(0.02)
    cut_ms = int(time.time() * 1000)
    time.sleep(0.02)
    create(client, "new")
    body = updates(client, timestamp=cut_ms)
    assert [u["entity"]["data"]["externalId"] for u in body["updates"]] == ["new"]
    assert body["nextOffset"] == 2
    assert len(updates(client, timestamp=cut_ms, offset=0)["updates"]) == 2  # offset wins
    assert updates(client, timestamp=cut_ms + 60_000) == {"nextOffset": 2, "updates": []}
    sim.behaviour = ContacthubBehaviour(timestamp_unit="s")
    assert len(updates(client, timestamp=cut_ms // 1000 - 5)["updates"]) == 2


@pytest.mark.parametrize("mode", ["full", "id_only"])
def test_delete_payload_and_cascade(
    client: httpx.Client, sim: ContacthubSimulator, mode: str
) -> None:
    sim.behaviour = ContacthubBehaviour(delete_payload=mode)
    a = create(client, "A")
    e1, e2 = event(client, a["id"]), event(client, a["id"], "viewedPage", context="WEB")
    client.delete(f"/customers/{a['id']}").raise_for_status()
    body = updates(client, offset=3)
    ops = [
        (u["operation"], u["entity"]["type"], u["entity"]["data"]["id"]) for u in body["updates"]
    ]
    assert ops == [
        ("DELETE", "EVENT", e1),
        ("DELETE", "EVENT", e2),
        ("DELETE", "CUSTOMER", a["id"]),
    ]
    data = body["updates"][-1]["entity"]["data"]
    if mode == "full":
        assert data["externalId"] == "A" and data["base"]["firstName"] == "A"
    else:
        assert data == {"id": a["id"]}
    assert client.get(f"/events/{e1}").status_code == 404


def test_cascade_updates_switch(client: httpx.Client, sim: ContacthubSimulator) -> None:
    sim.behaviour = ContacthubBehaviour(cascade_event_updates=False)
    a = create(client, "A")
    eid = event(client, a["id"])
    client.delete(f"/customers/{a['id']}").raise_for_status()
    assert [u["entity"]["type"] for u in updates(client, offset=2)["updates"]] == ["CUSTOMER"]
    assert client.get(f"/events/{eid}").status_code == 404


# -- events -----------------------------------------------------------------------------------
def test_event_get_search_and_delete(client: httpx.Client) -> None:
    a, b = create(client, "A"), create(client, "B", NODE_B)
    e_old = event(client, a["id"], date="2024-01-01T10:00:00+02:00")
    e_new = event(client, a["id"], "viewedPage", context="WEB", date="2024-06-01T10:00:00Z")
    e_b = event(
        client, b["id"], "campaignSent", context="DIGITAL_CAMPAIGN", date="2024-03-01T00:00:00Z"
    )
    got = client.get(f"/events/{e_old}").json()
    assert got["customerId"] == a["id"] and got["date"] == "2024-01-01T08:00:00.000+0000"
    assert got["properties"]["amount"]["total"] == 10.5

    def ids(**params: Any) -> list[str]:
        resp = client.get("/events", params=params)
        assert resp.status_code == 200, resp.text
        return [e["id"] for e in resp.json()["elements"]]

    assert ids() == [e_new, e_b, e_old]  # date desc
    assert ids(customerId=a["id"]) == [e_new, e_old]
    assert ids(type="completedOrder,campaignSent") == [e_b, e_old]
    assert ids(context="WEB") == [e_new]
    assert ids(mode="PASSIVE") == [e_b] and ids(mode="ACTIVE") == [e_new, e_old]
    assert ids(nodeId=NODE_B) == [e_b]
    assert ids(dateFrom="2024-02-01T00:00:00Z", dateTo="2024-06-01T10:00:00Z") == [e_new, e_b]
    assert ids(size=1, page=1) == [e_b] and ids(size=1, page=3) == []
    for bad in ({"type": "nope"}, {"mode": "X"}, {"dateFrom": "yesterday"}, {"size": "51"}):
        assert client.get("/events", params=bad).status_code == 400
    assert client.get("/events", params={"nodeId": "zz"}).status_code == 404
    assert client.delete(f"/events/{e_b}").status_code == 204
    assert client.get(f"/events/{e_b}").status_code == 404
    assert updates(client, offset=5)["updates"][0]["operation"] == "DELETE"


def test_event_bring_back_properties(client: httpx.Client) -> None:
    a = create(client, "A")
    body = {
        "bringBackProperties": {"type": "EXTERNAL_ID", "value": "A", "nodeId": NODE},
        "type": "loggedIn",
        "context": "WEB",
        "properties": {},
    }
    eid = client.post("/events", json=body).json()["id"]
    assert client.get(f"/events/{eid}").json()["customerId"] == a["id"]
    session = {
        **body,
        "bringBackProperties": {"type": "SESSION_ID", "value": "s-1", "nodeId": NODE},
    }
    anon = client.post("/events", json=session)
    assert anon.status_code == 202
    assert client.get(f"/events/{anon.json()['id']}").json()["customerId"] is None


@pytest.mark.parametrize(
    "change",
    [
        {"customerId": None},  # neither
        {"bringBackProperties": {"type": "EXTERNAL_ID", "value": "A", "nodeId": NODE}},  # both
        {"customerId": "00000000-0000-4000-8000-000000000000"},  # unknown customer
        {"type": "boughtStuff"},
        {"context": "MOON"},
        {"properties": None},
        {"date": "tomorrow"},
        {"colour": "red"},
    ],
)
def test_invalid_events_400(client: httpx.Client, change: dict[str, Any]) -> None:
    a = create(client, "A")
    body = {
        "customerId": a["id"],
        "type": "completedOrder",
        "context": "ECOMMERCE",
        "properties": {},
    }
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None or k != "customerId"}
    resp = client.post("/events", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == "event is not valid" and resp.json()["errors"]


def test_event_unknown_external_id_and_limits(client: httpx.Client) -> None:
    body = {
        "bringBackProperties": {"type": "EXTERNAL_ID", "value": "ghost", "nodeId": NODE},
        "type": "loggedIn",
        "context": "WEB",
        "properties": {},
    }
    assert client.post("/events", json=body).status_code == 400
    body["bringBackProperties"] = {"type": "EXTERNAL_ID", "value": "ghost", "nodeId": "nope"}
    assert client.post("/events", json=body).status_code == 404
    a = create(client, "A")
    huge = {
        "customerId": a["id"],
        "type": "viewedPage",
        "context": "WEB",
        "properties": {"x": "y" * 66_000},
    }
    assert client.post("/events", json=huge).status_code == 413
    assert (
        client.get("/events/00000000-0000-4000-8000-000000000000")
        .json()["message"]
        .startswith("event not found")
    )
