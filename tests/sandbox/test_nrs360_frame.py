"""360NRS simulator: auth, paging edges, the admin API and the fault frame, over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.sandbox.faults import FaultPlan
from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.serve import ServedApp

AUTH = ("sandbox-user", "sandbox-api-password")
UNKNOWN = {"error": {"code": 103, "description": "Username or password unknown"}}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Nrs360Simulator, str]]:
    sim = Nrs360Simulator()
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
def url(sim: Nrs360Simulator, served: tuple[Nrs360Simulator, str]) -> str:
    return served[1]


@pytest.fixture
def api(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url + "/api/rest", auth=AUTH) as client:
        yield client


def err(code: int, description: str) -> dict[str, Any]:
    return {"error": {"code": code, "description": description}}


# -- auth -----------------------------------------------------------------------------------
def test_documented_header_format_is_accepted(url: str) -> None:
    token = base64.b64encode(b"sandbox-user:sandbox-api-password").decode()
    response = httpx.get(url + "/api/rest/groups", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"sandbox-user:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"someone:sandbox-api-password").decode()},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer sandbox-api-password"},
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/contacts"),
        ("POST", "/contacts"),
        ("GET", "/contacts/1"),
        ("DELETE", "/groups/1"),
        ("PUT", "/v2/blacklist/sms"),
    ],
)
def test_bad_credentials_are_401_103(
    url: str, sim: Nrs360Simulator, headers: dict[str, str], method: str, path: str
) -> None:
    response = httpx.request(method, url + "/api/rest" + path, headers=headers, json={})
    assert response.status_code == 401
    assert response.json() == UNKNOWN
    assert sim.dump_state()["contacts"] == []


def test_custom_credentials() -> None:
    sim = Nrs360Simulator(username="acme", api_password="s3cret")
    with ServedApp(sim.asgi()) as app:
        assert httpx.get(app.url + "/api/rest/groups", auth=("acme", "s3cret")).status_code == 200
        assert httpx.get(app.url + "/api/rest/groups", auth=AUTH).status_code == 401


def test_unknown_path_and_method(api: httpx.Client) -> None:
    for path in ("/nothing", "/contacts/abc", "/v2/blacklist/fax"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == err(404, "Resource not found")
    response = api.patch("/contacts/1", json={})
    assert response.status_code == 405
    assert response.json() == err(405, "Method not allowed")
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"


# -- paging ---------------------------------------------------------------------------------
def seed(sim: Nrs360Simulator, count: int) -> None:
    sim.load({"contacts": [{"email": f"c{i}@example.com"} for i in range(count)]})


def test_default_page(api: httpx.Client, sim: Nrs360Simulator) -> None:
    seed(sim, 250)
    body = api.get("/contacts", params={"include": "customFields,groups"}).json()
    assert len(body["data"]) == 100 and body["data"][0]["id"] == 1
    base = str(api.base_url).rstrip("/")
    assert body["meta"]["pagination"] == {
        "total": 250,
        "count": 100,
        "per_page": 100,
        "current_page": 1,
        "total_pages": 3,
        "links": {"next": f"{base}/contacts?include=customFields%2Cgroups&page=2"},
    }


def test_following_links_reaches_every_contact(api: httpx.Client, sim: Nrs360Simulator) -> None:
    seed(sim, 25)
    seen: list[int] = []
    next_url: str | None = str(api.base_url).rstrip("/") + "/contacts?limit=10"
    while next_url:
        body = api.get(next_url).json()
        seen += [c["id"] for c in body["data"]]
        next_url = body["meta"]["pagination"]["links"].get("next")
    assert seen == list(range(1, 26))


def test_last_middle_and_past_the_end(api: httpx.Client, sim: Nrs360Simulator) -> None:
    seed(sim, 25)
    base = str(api.base_url).rstrip("/")
    middle = api.get("/contacts", params={"page": 2, "limit": 10}).json()["meta"]["pagination"]
    assert middle["links"] == {
        "previous": f"{base}/contacts?page=1&limit=10",
        "next": f"{base}/contacts?page=3&limit=10",
    }
    last = api.get("/contacts", params={"limit": 10, "page": 3}).json()
    assert [c["id"] for c in last["data"]] == [21, 22, 23, 24, 25]
    assert last["meta"]["pagination"]["count"] == 5
    assert last["meta"]["pagination"]["links"] == {"previous": f"{base}/contacts?limit=10&page=2"}
    past = api.get("/contacts", params={"limit": 10, "page": 9}).json()
    assert past["data"] == []
    assert past["meta"]["pagination"]["count"] == 0
    assert past["meta"]["pagination"]["current_page"] == 9
    assert "next" not in past["meta"]["pagination"]["links"]


def test_empty_list_has_one_page_and_no_links(api: httpx.Client) -> None:
    pagination = api.get("/contacts").json()["meta"]["pagination"]
    assert pagination == {
        "total": 0,
        "count": 0,
        "per_page": 100,
        "current_page": 1,
        "total_pages": 1,
        "links": {},
    }


def test_limit_bounds(api: httpx.Client, sim: Nrs360Simulator) -> None:
    seed(sim, 1001)
    full = api.get("/contacts", params={"limit": 1000}).json()
    assert len(full["data"]) == 1000 and full["meta"]["pagination"]["total_pages"] == 2
    for path in ("/contacts", "/groups", "/v2/blacklist/sms"):
        over = api.get(path, params={"limit": 1001})
        assert over.status_code == 422
        assert over.json() == err(422, "The limit field must not be greater than 1000.")
    assert api.get("/contacts", params={"limit": 0}).json() == err(
        422, "The limit field must be at least 1."
    )
    assert api.get("/contacts", params={"page": 0}).json() == err(
        422, "The page field must be at least 1."
    )
    assert api.get("/contacts", params={"page": "x"}).json() == err(
        422, "The page field must be an integer."
    )


def test_limit_clamp_switch() -> None:
    sim = Nrs360Simulator(behaviour=Nrs360Behaviour(limit_overflow="clamp"))
    sim.load({"groups": [{"name": f"G{i}"} for i in range(1001)]})
    with ServedApp(sim.asgi()) as app:
        body = httpx.get(app.url + "/api/rest/groups?limit=5000", auth=AUTH).json()
    assert len(body["data"]) == 1000 and body["meta"]["pagination"]["per_page"] == 1000


# -- admin ----------------------------------------------------------------------------------
def test_admin_load_state_reset(url: str, api: httpx.Client) -> None:
    data = {
        "groups": [{"id": 5, "name": "Imported"}],
        "contacts": [
            {
                "id": 10,
                "email": "a@example.com",
                "externalId": "EXT1",
                "groups": [5],
                "customFields": [{"key": "k", "value": "v"}],
            }
        ],
        "blacklist": {"mailing": [{"recipient": "a@example.com"}]},
    }
    loaded = httpx.post(url + "/_sandbox/load", json=data).json()
    assert loaded == {"contacts": 1, "groups": 1, "blacklist": 1}
    state = httpx.get(url + "/_sandbox/state").json()
    assert state["contacts"][0]["externalId"] == "EXT1"
    assert state["contacts"][0]["groups"] == [{"id": 5, "name": "Imported"}]
    assert state["contacts"][0]["customFields"] == [{"key": "k", "type": "string", "value": "v"}]
    assert state["blacklist"]["mailing"][0]["recipient"] == "a@example.com"
    assert set(state["blacklist"]) == {"sms", "mailing", "voice"}
    # ids continue after the loaded ones
    assert (
        api.post("/contacts", json={"email": "b@example.com", "groupsIds": [5]}).json()["data"][
            "id"
        ]
        == 11
    )
    assert api.post("/groups", json={"name": "New"}).json()["data"]["id"] == 6
    # dump -> load into a fresh simulator round-trips
    other = Nrs360Simulator()
    other.load(httpx.get(url + "/_sandbox/state").json())
    assert other.dump_state() == httpx.get(url + "/_sandbox/state").json()
    assert httpx.post(url + "/_sandbox/reset").json() == {"ok": True}
    assert httpx.get(url + "/_sandbox/state").json() == {
        "contacts": [],
        "groups": [],
        "blacklist": {"sms": [], "mailing": [], "voice": []},
    }
    assert api.post("/groups", json={"name": "Again"}).json()["data"]["id"] == 1


def test_request_log_normalises_ids(api: httpx.Client, sim: Nrs360Simulator) -> None:
    api.post("/groups", json={"name": "G"})
    api.get("/groups/1")
    api.get("/groups/1")
    counts = sim.requests.to_dict()["counts"]
    assert counts == {"POST /api/rest/groups": 1, "GET /api/rest/groups/{id}": 2}


# -- faults ---------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(api: httpx.Client, sim: Nrs360Simulator) -> None:
    sim.faults.set_plan(FaultPlan(rate_limit=2.0))
    statuses = [api.get("/groups") for _ in range(5)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json() == err(429, "Too Many Requests")


def test_injected_errors_are_reproducible_from_the_seed(
    api: httpx.Client, sim: Nrs360Simulator
) -> None:
    def run() -> list[int]:
        sim.reset()
        sim.faults.set_plan(FaultPlan(error_rate=0.4, seed=7))
        return [api.post("/groups", json={"name": f"G{i}"}).status_code for i in range(30)]

    first, second = run(), run()
    assert first == second
    assert set(first) - {201} <= {500, 502, 503} and set(first) & {500, 502, 503}
    # an injected error applies nothing
    assert len(sim.dump_state()["groups"]) == first.count(201)
    failed = api.post("/groups", json={"name": "x"})
    while failed.status_code == 201:
        failed = api.post("/groups", json={"name": "x"})
    assert failed.json()["error"]["code"] == failed.status_code


def test_lost_response_still_creates_the_contact(api: httpx.Client, sim: Nrs360Simulator) -> None:
    api.post("/groups", json={"name": "G"})
    sim.faults.set_plan(FaultPlan(lost_response_rate=1.0))
    with pytest.raises(httpx.TransportError):
        api.post("/contacts", json={"email": "lost@example.com", "groupsIds": [1]})
    sim.faults.set_plan(FaultPlan())
    found = api.get("/contacts", params={"email": "lost@example.com"}).json()["data"]
    assert [c["id"] for c in found] == [1]
    retry = api.post("/contacts", json={"email": "lost@example.com", "groupsIds": [1]})
    assert retry.json() == err(422, "The email has already been taken.")


def test_outage_is_503_with_the_360nrs_body(url: str, api: httpx.Client) -> None:
    httpx.put(url + "/_sandbox/faults", json={"outage": True}).raise_for_status()
    response = api.get("/contacts")
    assert response.status_code == 503
    assert response.json() == err(503, "Service unavailable")
    # the admin API keeps working and lifts the outage
    assert httpx.get(url + "/_sandbox/state").status_code == 200
    httpx.put(url + "/_sandbox/faults", json={}).raise_for_status()
    assert api.get("/contacts").status_code == 200
