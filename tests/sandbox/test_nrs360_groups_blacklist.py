"""360NRS simulator: /groups and /v2/blacklist over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from syncer.sandbox.faults import FaultPlan
from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.serve import ServedApp

AUTH = ("sandbox-user", "sandbox-api-password")
FIXED = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Nrs360Simulator, str]]:
    sim = Nrs360Simulator(clock=lambda: FIXED)
    with ServedApp(sim.asgi()) as app:
        yield sim, app.url


@pytest.fixture
def sim(served: tuple[Nrs360Simulator, str]) -> Nrs360Simulator:
    simulator = served[0]
    simulator.reset()
    simulator.requests.clear()
    simulator.faults.set_plan(FaultPlan())
    return simulator


@pytest.fixture
def api(sim: Nrs360Simulator, served: tuple[Nrs360Simulator, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[1] + "/api/rest", auth=AUTH) as client:
        yield client


def err(code: int, description: str) -> dict[str, Any]:
    return {"error": {"code": code, "description": description}}


# -- groups ---------------------------------------------------------------------------------
def test_group_crud(api: httpx.Client) -> None:
    created = api.post("/groups", json={"name": "My new contact list"})
    assert created.status_code == 201
    assert created.json() == {"data": {"id": 1, "name": "My new contact list"}}
    assert api.get("/groups/1").json() == {"data": {"id": 1, "name": "My new contact list"}}
    updated = api.put("/groups/1", json={"name": "Renamed"})
    assert updated.status_code == 200
    assert updated.json() == {"data": {"id": 1, "name": "Renamed"}}
    listed = api.get("/groups").json()
    assert listed["data"] == [{"id": 1, "name": "Renamed"}]
    assert listed["meta"]["pagination"]["total"] == 1
    deleted = api.delete("/groups/1")
    assert deleted.status_code == 204 and deleted.content == b""
    for method in ("GET", "PUT", "DELETE"):
        missing = api.request(method, "/groups/1", json={"name": "x"})
        assert missing.status_code == 404
        assert missing.json() == err(404, "Resource not found")


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({}, "The name field is required."),
        ({"name": ""}, "The name field is required."),
        ({"name": None}, "The name field is required."),
        ({"name": 7}, "The name field must be a string."),
        ({"name": "x" * 256}, "The name field must not be greater than 255 characters."),
    ],
)
def test_group_validation(api: httpx.Client, body: dict[str, Any], description: str) -> None:
    for response in (api.post("/groups", json=body), api.put("/groups/1", json=body)):
        assert response.status_code in (404, 422)
    api.post("/groups", json={"name": "G"})
    for response in (api.post("/groups", json=body), api.put("/groups/1", json=body)):
        assert response.status_code == 422
        assert response.json() == err(422, description)


def test_duplicate_group_names_allowed_by_default(api: httpx.Client) -> None:
    assert api.post("/groups", json={"name": "Same"}).json()["data"]["id"] == 1
    assert api.post("/groups", json={"name": "Same"}).json()["data"]["id"] == 2
    # groupsNames picks the oldest group with that name
    api.post("/contacts", json={"email": "a@example.com", "groupsNames": ["same"]})
    groups = api.get("/contacts/1", params={"include": "groups"}).json()["data"]["groups"]
    assert groups == {"data": [{"id": 1, "name": "Same"}]}


def test_put_groups_without_id_is_405_by_default(api: httpx.Client) -> None:
    api.post("/groups", json={"name": "G"})
    response = api.put("/groups", json={"id": 1, "name": "H"})
    assert response.status_code == 405
    assert response.json() == err(405, "Method not allowed")
    assert response.headers["allow"] == "GET, HEAD, POST"


def test_group_switches() -> None:
    behaviour = Nrs360Behaviour(duplicate_group_names=False, group_update_without_id=True)
    sim = Nrs360Simulator(behaviour=behaviour)
    with (
        ServedApp(sim.asgi()) as app,
        httpx.Client(base_url=app.url + "/api/rest", auth=AUTH) as api,
    ):
        api.post("/groups", json={"name": "A"})
        api.post("/groups", json={"name": "B"})
        dup = api.post("/groups", json={"name": "a"})
        assert dup.json() == err(422, "The name has already been taken.")
        assert api.put("/groups/1", json={"name": "A"}).status_code == 200  # its own name
        assert api.put("/groups", json={"id": 2, "name": "A"}).json() == err(
            422, "The name has already been taken."
        )
        assert api.put("/groups", json={"id": 2, "name": "C"}).json() == {
            "data": {"id": 2, "name": "C"}
        }
        assert api.put("/groups", json={"name": "C"}).json() == err(
            422, "The id field is required."
        )
        assert api.put("/groups", json={"id": 9, "name": "C"}).status_code == 404


def test_group_delete_removes_memberships(api: httpx.Client, sim: Nrs360Simulator) -> None:
    api.post("/groups", json={"name": "A"})
    api.post("/groups", json={"name": "B"})
    api.post("/contacts", json={"email": "a@example.com", "groupsIds": [1, 2]})
    api.post("/contacts", json={"email": "b@example.com", "groupsIds": [1]})
    assert api.delete("/groups/1").status_code == 204
    first = api.get("/contacts/1", params={"include": "groups"}).json()["data"]
    second = api.get("/contacts/2", params={"include": "groups"}).json()["data"]
    assert first["groups"] == {"data": [{"id": 2, "name": "B"}]}
    assert second["groups"] == {"data": []}
    assert [c["groups"] for c in sim.dump_state()["contacts"]] == [[{"id": 2, "name": "B"}], []]
    gone = api.post("/contacts", json={"email": "c@example.com", "groupsIds": [1]})
    assert gone.json() == err(422, "The selected groupsIds.0 is invalid.")


def test_groups_pagination(api: httpx.Client, sim: Nrs360Simulator) -> None:
    sim.load({"groups": [{"name": f"G{i}"} for i in range(5)]})
    page = api.get("/groups", params={"limit": 2, "page": 3}).json()
    assert [g["name"] for g in page["data"]] == ["G4"]
    base = str(api.base_url).rstrip("/")
    assert page["meta"]["pagination"] == {
        "total": 5,
        "count": 1,
        "per_page": 2,
        "current_page": 3,
        "total_pages": 3,
        "links": {"previous": f"{base}/groups?limit=2&page=2"},
    }


# -- blacklist ------------------------------------------------------------------------------
def test_blacklist_put_get_delete(api: httpx.Client) -> None:
    added = api.put("/v2/blacklist/mailing", json={"recipient": "test@example.com"})
    assert added.status_code == 200
    entry = {
        "type": "mailing",
        "recipient": "test@example.com",
        "isDefinitive": False,
        "campaignName": None,
        "createdAt": "2020-01-01T00:00:00+00:00",
    }
    assert added.json() == {"data": entry}
    again = api.put("/v2/blacklist/mailing", json={"recipient": "TEST@example.com"})
    assert again.json() == {"data": entry}
    listed = api.get("/v2/blacklist/mailing").json()
    assert listed["data"] == [{**entry, "sendingId": None}]
    assert list(listed["data"][0]) == [
        "type",
        "recipient",
        "isDefinitive",
        "sendingId",
        "campaignName",
        "createdAt",
    ]
    assert listed["meta"]["pagination"]["total"] == 1
    assert api.get("/v2/blacklist/sms").json()["data"] == []
    removed = api.request("DELETE", "/v2/blacklist/mailing", json={"recipient": "test@example.com"})
    assert removed.status_code == 204 and removed.content == b""
    assert api.get("/v2/blacklist/mailing").json()["data"] == []
    again_removed = api.request(
        "DELETE", "/v2/blacklist/mailing", json={"recipient": "test@example.com"}
    )
    assert again_removed.status_code == 404
    assert again_removed.json() == err(404, "Resource not found")


def test_blacklist_filters_and_types(api: httpx.Client, sim: Nrs360Simulator) -> None:
    sim.load(
        {
            "blacklist": {
                "sms": [
                    {"recipient": "34666555444", "sendingId": 123, "campaignName": "TEST"},
                    {"recipient": "34666555445", "sendingId": 124, "isDefinitive": True},
                    {"recipient": "34666555446", "sendingId": 123},
                ]
            }
        }
    )
    sms = "/v2/blacklist/sms"

    def recipients(**params: Any) -> list[str]:
        return [e["recipient"] for e in api.get(sms, params=params).json()["data"]]

    assert recipients() == ["34666555444", "34666555445", "34666555446"]
    assert recipients(sendingId=123) == ["34666555444", "34666555446"]
    assert recipients(recipient="34666555445") == ["34666555445"]
    assert recipients(recipient="34666555445", sendingId=123) == []
    assert recipients(limit=1, page=2) == ["34666555445"]
    bad = api.get(sms, params={"sendingId": "abc"})
    assert bad.json() == err(422, "The sendingId field must be an integer.")
    voice = api.put("/v2/blacklist/voice", json={"recipient": "34912345678"})
    assert voice.status_code == 200 and voice.json()["data"]["type"] == "voice"
    unknown = api.get("/v2/blacklist/whatsapp")
    assert unknown.status_code == 404 and unknown.json() == err(404, "Resource not found")


@pytest.mark.parametrize(
    ("kind", "body", "description"),
    [
        ("mailing", {}, "The recipient field is required."),
        ("mailing", {"recipient": ""}, "The recipient field is required."),
        (
            "mailing",
            {"recipient": "34666555444"},
            "The recipient field must be a valid phone or email.",
        ),
        (
            "sms",
            {"recipient": "test@example.com"},
            "The recipient field must be a valid phone or email.",
        ),
        (
            "sms",
            {"recipient": "34912345678"},
            "The recipient field must be a valid phone or email.",
        ),
        ("sms", {"recipient": 34666555444}, "The recipient field must be a valid phone or email."),
    ],
)
def test_blacklist_validation(
    api: httpx.Client, kind: str, body: dict[str, Any], description: str
) -> None:
    response = api.put(f"/v2/blacklist/{kind}", json=body)
    assert response.status_code == 422
    assert response.json() == err(422, description)


def test_blacklist_delete_needs_recipient(api: httpx.Client) -> None:
    response = api.request("DELETE", "/v2/blacklist/sms")
    assert response.json() == err(422, "The recipient field is required.")


def test_blacklist_delete_missing_ok_switch() -> None:
    sim = Nrs360Simulator(behaviour=Nrs360Behaviour(blacklist_delete_missing_ok=True))
    with (
        ServedApp(sim.asgi()) as app,
        httpx.Client(base_url=app.url + "/api/rest", auth=AUTH) as api,
    ):
        response = api.request("DELETE", "/v2/blacklist/sms", json={"recipient": "34666555444"})
        assert response.status_code == 204
