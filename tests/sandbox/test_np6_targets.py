"""NP6 simulator over real HTTP: auth, headers, fields, targets, redlist and faults."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.sandbox.np6 import Np6Behaviour, Np6Simulator
from syncer.sandbox.serve import ServedApp

KEY = {"X-Key": "sandbox-np6-key"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Np6Simulator, ServedApp]]:
    sim = Np6Simulator()
    with ServedApp(sim.asgi()) as app:
        yield sim, app


@pytest.fixture
def sim(served: tuple[Np6Simulator, ServedApp]) -> Np6Simulator:
    simulator, _ = served
    simulator.behaviour = Np6Behaviour()
    return simulator


@pytest.fixture
def client(served: tuple[Np6Simulator, ServedApp]) -> Iterator[httpx.Client]:
    _, app = served
    with httpx.Client(base_url=app.url, headers=KEY, timeout=10) as c:
        c.post("/_sandbox/reset").raise_for_status()
        yield c


def upsert(client: httpx.Client, email: str, body: dict[str, Any]) -> httpx.Response:
    return client.put("/targets", params={"unicity": email}, json=body)


# -- auth and headers --------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"X-Key": "wrong"}, {"x-key": ""}])
def test_auth_failure_is_401_with_empty_body(client: httpx.Client, headers: dict[str, str]) -> None:
    client.headers.pop("X-Key")
    response = client.get("/fields", headers=headers)
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["x-request-id"]


def test_key_header_name_is_case_insensitive(client: httpx.Client) -> None:
    client.headers.pop("X-Key")
    assert client.get("/fields", headers={"x-key": "sandbox-np6-key"}).status_code == 200
    assert client.get("/fields", headers={"X-KEY": "sandbox-np6-key"}).status_code == 200


def test_every_answer_has_a_distinct_request_id(client: httpx.Client) -> None:
    ids = {client.get("/fields").headers["x-request-id"] for _ in range(3)}
    ids.add(client.get("/targets", params={"unicity": "no@x.com"}).headers["x-request-id"])
    assert len(ids) == 4


def test_411_without_content_length_and_415_on_wrong_type(client: httpx.Client) -> None:
    chunked = client.post("/targets", content=iter([b'{"1001": "a@x.com"}']))
    assert chunked.status_code == 411
    assert chunked.content == b""
    wrong_type = client.post(
        "/targets", content=b'{"1001": "a@x.com"}', headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    assert (
        client.post(
            "/targets", content=b"{", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert client.get("/targets/count").json() == {"targetsCount": 0}


# -- fields ------------------------------------------------------------------------------------
def test_fields_default_schema(client: httpx.Client) -> None:
    fields = client.get("/fields").json()
    assert fields[0] == {
        "type": "email",
        "id": 1001,
        "name": "Email",
        "isUnicity": True,
        "isMandatory": True,
    }
    by_id = {f["id"]: f for f in fields}
    assert (by_id[1002]["type"], by_id[1003]["type"], by_id[1004]["type"]) == (
        "textField",
        "numeric",
        "date",
    )
    assert client.get("/fields/1003").json()["name"] == "amount"
    assert client.get("/fields/999").status_code == 404


def test_fields_are_loadable(client: httpx.Client) -> None:
    schema = [
        {"type": "email", "id": 728, "name": "Email", "isUnicity": True, "isMandatory": True},
        {"type": "textField", "id": 729, "name": "Name"},
    ]
    client.post("/_sandbox/load", json={"fields": schema}).raise_for_status()
    assert [f["id"] for f in client.get("/fields").json()] == [728, 729]
    assert upsert(client, "a@x.com", {"729": "Ann"}).json()["fields"] == {
        "728": "a@x.com",
        "729": "Ann",
    }


# -- targets -----------------------------------------------------------------------------------
def test_upsert_get_update_delete(client: httpx.Client) -> None:
    created = upsert(client, "Ann@X.com", {"1010": "Ann", "1003": "12.5", "1004": "2024-05-01"})
    assert created.status_code == 200
    target = created.json()
    assert re.fullmatch(r"[0-9A-Z]{8}", target["id"])
    assert target["fields"] == {
        "1001": "ann@x.com",
        "1010": "Ann",
        "1003": 12.5,
        "1004": "2024-05-01T00:00:00Z",
    }
    assert set(target) >= {"id", "creationDate", "lastUpdateDate", "fields", "redList"}

    updated = upsert(client, "ann@x.com", {"LastName": "Smith", "1003": None}).json()
    assert updated["id"] == target["id"]
    assert updated["fields"] == {
        "1001": "ann@x.com",
        "1010": "Ann",
        "1011": "Smith",
        "1004": "2024-05-01T00:00:00Z",
    }
    assert client.get("/targets", params={"unicity": "ANN@x.com"}).json()["id"] == target["id"]
    assert client.get(f"/targets/{target['id']}").json()["fields"]["1011"] == "Smith"
    assert client.get("/targets/count").json() == {"targetsCount": 1}

    assert client.delete(f"/targets/{target['id']}").status_code == 204
    assert client.get(f"/targets/{target['id']}").status_code == 404
    assert client.delete(f"/targets/{target['id']}").status_code == 404
    missing = client.get("/targets", params={"unicity": "ann@x.com"})
    assert (missing.status_code, missing.content) == (404, b"")


@pytest.mark.parametrize(
    "body",
    [{"9999": "x"}, {"1003": "twelve"}, {"1004": "2024-13-45"}, {"1001": "other@x.com"}],
)
def test_upsert_rejects_invalid_bodies(client: httpx.Client, body: dict[str, Any]) -> None:
    response = upsert(client, "a@x.com", body)
    assert response.status_code == 400
    assert client.get("/targets/count").json() == {"targetsCount": 0}


def test_upsert_without_unicity_or_with_nested_fields(client: httpx.Client) -> None:
    assert client.put("/targets", json={"1010": "A"}).status_code == 400
    nested = upsert(client, "a@x.com", {"fields": {"1001": "a@x.com"}})
    assert nested.status_code == 400
    assert nested.text == "target cannot be identified - unicity is null"
    assert upsert(client, "not-an-email", {}).status_code == 400


def test_post_create_conflicts_when_exists(client: httpx.Client) -> None:
    created = client.post("/targets", json={"1001": "a@x.com", "1010": "A"})
    assert created.status_code == 200
    conflict = client.post("/targets", json={"Email": "A@x.com"})
    assert (conflict.status_code, conflict.content) == (409, b"")
    no_unicity = client.post("/targets", json={"1010": "B"})
    assert no_unicity.status_code == 400


def test_put_by_id_and_unicity_clash(client: httpx.Client) -> None:
    a = upsert(client, "a@x.com", {}).json()["id"]
    upsert(client, "b@x.com", {})
    assert client.put(f"/targets/{a}", json={"1001": "b@x.com"}).status_code == 409
    moved = client.put(f"/targets/{a}", json={"1001": "c@x.com", "1010": "C"})
    assert moved.json()["fields"] == {"1001": "c@x.com", "1010": "C"}
    assert client.get("/targets", params={"unicity": "c@x.com"}).json()["id"] == a
    assert client.get("/targets", params={"unicity": "a@x.com"}).status_code == 404
    assert client.put("/targets/000ZZZZZ", json={"1010": "x"}).status_code == 404


def test_list_all_targets(client: httpx.Client) -> None:
    for email in ("a@x.com", "b@x.com"):
        upsert(client, email, {})
    assert sorted(t["fields"]["1001"] for t in client.get("/targets").json()) == [
        "a@x.com",
        "b@x.com",
    ]


def test_bulk_delete_by_unicity_and_id(client: httpx.Client, sim: Np6Simulator) -> None:
    ids = {e: upsert(client, e, {}).json()["id"] for e in ("a@x.com", "b@x.com", "c@x.com")}
    body = {"type": "unicity", "value": [["a@x.com"], ["B@x.com"], ["zz@x.com"]]}
    response = client.request(
        "DELETE", "/targets", json=body, headers={"Accept": "application/vnd.np6.cm.v1"}
    )
    assert response.status_code == 200
    assert sorted(response.json(), key=lambda d: d["unicity"]) == [
        {"id": ids["a@x.com"], "unicity": ["a@x.com"]},
        {"id": ids["b@x.com"], "unicity": ["b@x.com"]},
    ]
    sim.behaviour.bulk_delete_response = "empty"
    by_id = client.request("DELETE", "/targets", json={"value": [[ids["c@x.com"]], ["000XXXXX"]]})
    assert by_id.status_code == 204
    assert client.get("/targets/count").json() == {"targetsCount": 0}
    assert (
        client.request("DELETE", "/targets", json={"type": "nope", "value": []}).status_code == 400
    )


# -- redlist -----------------------------------------------------------------------------------
def test_redlist_post_and_read(client: httpx.Client) -> None:
    target_id = upsert(client, "a@x.com", {}).json()["id"]
    body = {"id": target_id, "timestamp": "2024-05-01T10:00:00Z", "origin": 4, "detail": "unsub"}
    assert client.post(f"/targets/{target_id}/redlist/mail", json=body).status_code == 204
    assert client.post(f"/targets/{target_id}/redlist/sms", json={"origin": 6}).status_code == 204
    red = client.get(f"/targets/{target_id}").json()["redList"]
    assert red["mail"] == {"timestamp": "2024-05-01T10:00:00Z", "reason": 4}
    assert red["sms"]["reason"] == 6

    window = {"startDate": "2024-05-01", "endDate": "2024-05-02"}
    mail = client.get("/targets/redlist/mail", params=window).json()
    assert mail == [
        {
            "id": target_id,
            "channel": "mail",
            "timestamp": "2024-05-01T10:00:00Z",
            "origin": 4,
            "detail": "unsub",
        }
    ]
    assert client.get("/targets/redlist/sms", params=window).json() == []
    assert client.get("/targets/redlist/mail").status_code == 400
    assert client.post(f"/targets/{target_id}/redlist/mail", json={"origin": 12}).status_code == 400
    assert client.post(f"/targets/{target_id}/redlist/fax", json={}).status_code == 404
    assert client.post("/targets/000ZZZZZ/redlist/mail", json={}).status_code == 404


# -- faults ------------------------------------------------------------------------------------
def test_rate_limit_429_has_retry_after_and_rate_headers(client: httpx.Client) -> None:
    client.put("/_sandbox/faults", json={"rate_limit": 2.0})
    responses = [client.get("/targets/count") for _ in range(4)]
    assert responses[0].status_code == 200
    assert responses[0].headers["x-ratelimit-limit"] == "2"
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    answer = limited[0]
    assert answer.content == b""
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.headers["x-ratelimit-limit"] == "2"
    assert answer.headers["x-ratelimit-remaining"] == "0"
    assert int(answer.headers["x-ratelimit-reset"]) > 0
    assert answer.headers["x-request-id"]


def test_server_errors_reproducible_by_seed(client: httpx.Client) -> None:
    def run() -> list[int]:
        client.put("/_sandbox/faults", json={"error_rate": 0.5, "seed": 3})
        return [client.get("/targets/count").status_code for _ in range(12)]

    first = run()
    assert first == run()
    assert 200 in first and any(s >= 500 for s in first)
    client.put("/_sandbox/faults", json={"error_rate": 1.0})
    failed = upsert(client, "a@x.com", {})
    assert failed.status_code >= 500 and failed.content == b""
    assert failed.headers["x-request-id"]
    assert client.get("/_sandbox/state").json()["targets"] == []


def test_lost_response_is_applied(client: httpx.Client) -> None:
    client.put("/_sandbox/faults", json={"lost_response_rate": 1.0})
    with pytest.raises(httpx.TransportError):
        upsert(client, "a@x.com", {"1010": "A"})
    targets = client.get("/_sandbox/state").json()["targets"]
    assert [t["fields"]["1001"] for t in targets] == ["a@x.com"]


def test_outage(client: httpx.Client) -> None:
    client.put("/_sandbox/faults", json={"outage": True})
    response = client.get("/fields")
    assert (response.status_code, response.content) == (503, b"")
    client.put("/_sandbox/faults", json={})
    assert client.get("/fields").status_code == 200
