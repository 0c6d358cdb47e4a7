"""Octopush simulator over real HTTP: auth, contacts, lists, limits and faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.sandbox.faults import FaultPlan
from syncer.sandbox.octopush import OctopushBehaviour, OctopushSimulator
from syncer.sandbox.serve import ServedApp

AUTH = {"api-login": "sandbox@example.com", "api-key": "sandbox-octopush-key"}
FR = "+33612345678"
FR2 = "+33612345679"
IT = "+393471234567"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OctopushSimulator, ServedApp]]:
    sim = OctopushSimulator()
    with ServedApp(sim.asgi()) as app:
        yield sim, app


@pytest.fixture
def sim(served: tuple[OctopushSimulator, ServedApp]) -> OctopushSimulator:
    simulator, _ = served
    simulator.behaviour = OctopushBehaviour()
    return simulator


@pytest.fixture
def client(served: tuple[OctopushSimulator, ServedApp]) -> Iterator[httpx.Client]:
    _, app = served
    with httpx.Client(base_url=app.url, headers=AUTH, timeout=10) as c:
        c.post("/_sandbox/reset").raise_for_status()
        yield c


def create(client: httpx.Client, contacts: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return client.post("/v1/public/contact/create", json={"contacts": contacts, **extra})


def delete(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return client.request("DELETE", f"/v1/public{path}", json=body)


def make_list(client: httpx.Client, name: str) -> httpx.Response:
    return client.post("/v1/public/contact-list/create", json={"list_name": name})


def state(client: httpx.Client) -> dict[str, Any]:
    result: dict[str, Any] = client.get("/_sandbox/state").json()
    return result


# -- authentication ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"api-login": "sandbox@example.com"},
        {"api-key": "sandbox-octopush-key"},
        {"api-login": "sandbox@example.com", "api-key": "wrong"},
        {"api-login": "other@example.com", "api-key": "sandbox-octopush-key"},
    ],
)
def test_auth_failures_answer_401_code_101(client: httpx.Client, headers: dict[str, str]) -> None:
    client.headers.clear()
    response = client.post(
        "/v1/public/contact/create", json={"contacts": [{"phone_number": FR}]}, headers=headers
    )
    assert response.status_code == 401
    assert response.json() == {
        "code": 101,
        "message": "Incorrect login: check the api-login and api-key headers",
    }
    assert state(client)["contacts"] == {}


# -- contact/create ----------------------------------------------------------------------------
def test_create_added_updated_skipped(client: httpx.Client) -> None:
    assert make_list(client, "customers").status_code == 201
    first = create(
        client,
        [{"phone_number": FR, "first_name": "Axelle", "last_name": "Durand", "param3": "Mme"}],
        list_name="customers",
        tag_name="vip",
    )
    assert first.status_code == 201
    assert first.json() == {"items": [{"phone_number": FR, "email": None, "status": "added"}]}

    second = create(client, [{"phone_number": FR, "first_name": "Axel"}, {"phone_number": IT}])
    assert [i["status"] for i in second.json()["items"]] == ["updated", "added"]
    contact = state(client)["contacts"][FR]
    assert contact["first_name"] == "Axel"
    assert contact["last_name"] == "Durand"  # absent keys are kept
    assert contact["param3"] == "Mme"
    assert contact["lists"] == ["customers"]
    assert contact["tags"] == ["vip"]

    third = create(client, [{"phone_number": FR, "first_name": "Ignored"}], do_not_overwrite=True)
    assert third.json()["items"][0]["status"] == "skipped"
    assert state(client)["contacts"][FR]["first_name"] == "Axel"


def test_create_null_clears_and_repeated_number_is_updated(client: httpx.Client) -> None:
    create(client, [{"phone_number": FR, "first_name": "A", "param1": "x"}])
    response = create(
        client, [{"phone_number": FR, "param1": None}, {"phone_number": FR, "last_name": "B"}]
    )
    assert [i["status"] for i in response.json()["items"]] == ["updated", "updated"]
    contact = state(client)["contacts"][FR]
    assert (contact["first_name"], contact["last_name"], contact["param1"]) == ("A", "B", None)


def test_create_normalises_to_e164(client: httpx.Client) -> None:
    response = create(client, [{"phone_number": "+33 6 12 34 56 78"}])
    assert response.json()["items"][0]["phone_number"] == FR
    assert list(state(client)["contacts"]) == [FR]


@pytest.mark.parametrize("bad", ["0612345678", "+33123", "+111222233334444", "abc", None])
def test_one_invalid_number_rejects_the_whole_request(client: httpx.Client, bad: Any) -> None:
    response = create(client, [{"phone_number": FR}, {"phone_number": bad}])
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 117
    assert str(bad) in body["message"]
    assert state(client)["contacts"] == {}


def test_invalid_number_skip_item_answers_per_item(
    client: httpx.Client, served: tuple[OctopushSimulator, ServedApp]
) -> None:
    """``invalid_number=skip_item`` (set through the admin API): 201, the invalid item
    answered "skipped" and not stored, the valid ones applied; a refused number counts as
    invalid in both readings."""
    client.post("/_sandbox/load", json={"refused_numbers": [FR2]}).raise_for_status()
    refused = create(client, [{"phone_number": FR}, {"phone_number": FR2}])
    assert (refused.status_code, refused.json()["code"]) == (400, 117)
    assert FR2 in refused.json()["message"] and state(client)["contacts"] == {}
    switched = client.put("/_sandbox/behaviour", json={"invalid_number": "skip_item"})
    assert switched.json()["invalid_number"] == "skip_item"
    try:
        response = create(
            client, [{"phone_number": FR}, {"phone_number": FR2}, {"phone_number": "+33123"}]
        )
        assert response.status_code == 201
        assert [(i["phone_number"], i["status"]) for i in response.json()["items"]] == [
            (FR, "added"),
            (FR2, "skipped"),
            ("+33123", "skipped"),
        ]
        assert list(state(client)["contacts"]) == [FR]
    finally:
        served[0].behaviour = OctopushBehaviour()
    assert client.get("/_sandbox/behaviour").json()["invalid_number"] == "refuse_call"


def test_invalid_number_switch_from_the_command_line() -> None:
    from syncer.cli.sandbox_cmd import apply_behaviours

    sims: dict[str, Any] = {"octopush": OctopushSimulator()}
    apply_behaviours(sims, ["octopush.invalid_number=skip_item"])
    assert sims["octopush"].behaviour.invalid_number == "skip_item"
    with pytest.raises(ValueError, match="takes refuse_call or skip_item"):
        apply_behaviours(sims, ["octopush.invalid_number=drop"])


def test_create_limits_and_validation(client: httpx.Client, sim: OctopushSimulator) -> None:
    sim.behaviour.max_contacts_per_create = 2
    too_many = create(client, [{"phone_number": n} for n in (FR, FR2, IT)])
    assert too_many.status_code == 400
    assert too_many.json()["code"] == 903
    assert create(client, [{"phone_number": n} for n in (FR, FR2)]).status_code == 201

    assert create(client, []).json()["code"] == 110
    long_list = create(client, [{"phone_number": FR}], list_name="x" * 31)
    assert (long_list.status_code, long_list.json()["code"]) == (400, 902)
    long_tag = create(client, [{"phone_number": FR}], tag_name="t" * 21)
    assert (long_tag.status_code, long_tag.json()["code"]) == (400, 902)
    assert create(client, [{"phone_number": FR}], tag_name="t" * 20).status_code == 201
    bad_type = create(client, [{"phone_number": FR, "first_name": {"a": 1}}])
    assert (bad_type.status_code, bad_type.json()["code"]) == (400, 901)
    not_json = client.post("/v1/public/contact/create", content=b"{oops")
    assert not_json.status_code == 400
    assert not_json.json()["code"] == 100


def test_unknown_list_errors_or_is_created(client: httpx.Client, sim: OctopushSimulator) -> None:
    response = create(client, [{"phone_number": FR}], list_name="nope")
    assert response.status_code == 404
    assert response.json() == {"code": 904, "message": "Contact list not found: 'nope'"}
    assert state(client)["contacts"] == {}

    sim.behaviour.missing_list = "create"
    assert create(client, [{"phone_number": FR}], list_name="nope").status_code == 201
    assert state(client)["lists"] == {"nope": [FR]}


def test_auto_remove_blacklisted_numbers(client: httpx.Client) -> None:
    client.post("/_sandbox/load", json={"lists": {"l": [FR2]}, "blacklist": [FR, FR2]})
    response = create(
        client,
        [{"phone_number": FR}, {"phone_number": FR2}, {"phone_number": IT}],
        list_name="l",
        auto_remove_blacklisted_numbers=True,
    )
    assert [i["status"] for i in response.json()["items"]] == ["skipped", "skipped", "added"]
    dumped = state(client)
    assert dumped["lists"] == {"l": [IT]}
    assert FR not in dumped["contacts"]
    # Without the flag a blacklisted number is stored like any other.
    assert create(client, [{"phone_number": FR}]).json()["items"][0]["status"] == "added"


# -- contact/delete ----------------------------------------------------------------------------
def test_delete_limits(client: httpx.Client) -> None:
    zero = delete(client, "/contact/delete", {"phone_numbers": []})
    assert (zero.status_code, zero.json()["code"]) == (400, 110)
    numbers = [f"+336123456{i:02d}" for i in range(100)] + [
        f"+336123457{i:02d}" for i in range(100)
    ]
    assert delete(client, "/contact/delete", {"phone_numbers": numbers[:1]}).status_code == 204
    assert delete(client, "/contact/delete", {"phone_numbers": numbers}).status_code == 204
    over = delete(client, "/contact/delete", {"phone_numbers": [*numbers, "+33612345800"]})
    assert (over.status_code, over.json()["code"]) == (400, 903)


def test_delete_from_list_or_account(client: httpx.Client) -> None:
    make_list(client, "a")
    make_list(client, "b")
    create(client, [{"phone_number": FR}, {"phone_number": IT}], list_name="a")
    create(client, [{"phone_number": FR}], list_name="b")

    body = {"phone_numbers": [FR, "+33699999999", "garbage"], "list_name": "a"}
    assert delete(client, "/contact/delete", body).status_code == 204
    dumped = state(client)
    assert dumped["lists"] == {"a": [IT], "b": [FR]}
    assert dumped["contacts"][FR]["lists"] == ["b"]

    assert delete(client, "/contact/delete", {"phone_numbers": [FR]}).status_code == 204
    dumped = state(client)
    assert FR not in dumped["contacts"]
    assert dumped["lists"] == {"a": [IT], "b": []}

    unknown = delete(client, "/contact/delete", {"phone_numbers": [IT], "list_name": "zz"})
    assert unknown.status_code == 404


# -- contact lists -----------------------------------------------------------------------------
def test_list_create(client: httpx.Client, sim: OctopushSimulator) -> None:
    first = make_list(client, "my_list")
    assert first.status_code == 201
    assert first.json() == {"list_name": "my_list", "id": 1}
    again = make_list(client, "my_list")
    assert again.status_code == 409
    assert again.json()["code"] == 905
    sim.behaviour.existing_list = "ok"
    assert make_list(client, "my_list").json() == {"list_name": "my_list", "id": 1}
    assert make_list(client, "y" * 31).status_code == 400
    assert client.post("/v1/public/contact-list/create", json={}).status_code == 400


def test_list_delete_and_empty(client: httpx.Client) -> None:
    for name in ("a", "b"):
        make_list(client, name)
    create(client, [{"phone_number": FR}, {"phone_number": IT}], list_name="a")
    create(client, [{"phone_number": FR2}], list_name="b")

    assert delete(client, "/contact-list/delete", {"list_name": "a"}).status_code == 204
    dumped = state(client)
    assert dumped["lists"] == {"b": [FR2]}
    assert dumped["contacts"][FR]["lists"] == []
    assert delete(client, "/contact-list/delete", {"list_name": "a"}).status_code == 404

    create(client, [{"phone_number": FR}], list_name="b")
    empty = client.post("/v1/public/contact-list/empty", json={"list_name": "b"})
    assert empty.status_code == 204
    dumped = state(client)
    assert dumped["lists"] == {"b": []}
    assert set(dumped["contacts"]) == {FR, FR2, IT}

    create(client, [{"phone_number": FR}, {"phone_number": FR2}], list_name="b")
    body = {"list_name": "b", "delete_contacts": True}
    assert client.post("/v1/public/contact-list/empty", json=body).status_code == 204
    assert set(state(client)["contacts"]) == {IT}
    missing = client.post("/v1/public/contact-list/empty", json={"list_name": "zz"})
    assert missing.status_code == 404


def test_load_and_dump_round_trip(client: httpx.Client) -> None:
    data = {
        "lists": {"l": [FR]},
        "contacts": {FR: {"first_name": "A", "tags": ["t"]}, IT: {"lists": ["m"]}},
    }
    assert client.post("/_sandbox/load", json=data).json() == {"lists": 2, "contacts": 2}
    dumped = state(client)
    assert dumped["lists"] == {"l": [FR], "m": [IT]}
    assert dumped["contacts"][FR]["first_name"] == "A"
    assert dumped["contacts"][FR]["lists"] == ["l"]


# -- faults ------------------------------------------------------------------------------------
def statuses_with_seed(client: httpx.Client, seed: int) -> list[int]:
    client.put("/_sandbox/faults", json={"error_rate": 0.5, "seed": seed}).raise_for_status()
    return [create(client, [{"phone_number": FR}]).status_code for _ in range(12)]


def test_server_errors_reproducible_by_seed(client: httpx.Client) -> None:
    first = statuses_with_seed(client, 7)
    assert first == statuses_with_seed(client, 7)
    assert 201 in first
    assert any(s >= 500 for s in first)


def test_injected_error_applies_nothing(client: httpx.Client) -> None:
    client.put("/_sandbox/faults", json={"error_rate": 1.0})
    failed = create(client, [{"phone_number": IT}])
    assert failed.status_code in (500, 502, 503)
    assert failed.json() == {"code": 125, "message": "Service unavailable"}
    assert state(client)["contacts"] == {}


def test_lost_response_is_applied(client: httpx.Client) -> None:
    client.put("/_sandbox/faults", json={"lost_response_rate": 1.0})
    with pytest.raises(httpx.TransportError):
        create(client, [{"phone_number": FR}])
    assert FR in state(client)["contacts"]


def test_outage_and_rate_limit(client: httpx.Client) -> None:
    client.put("/_sandbox/faults", json={"outage": True})
    outage = create(client, [{"phone_number": FR}])
    assert outage.status_code == 503
    assert outage.json()["code"] == 125
    client.put("/_sandbox/faults", json=FaultPlan(rate_limit=1.0).to_dict())
    statuses = [create(client, [{"phone_number": FR}]).status_code for _ in range(3)]
    assert statuses[0] == 201
    assert 429 in statuses
    limited = create(client, [{"phone_number": FR}])
    assert limited.status_code == 429
    assert limited.json()["code"] == 900
    assert int(limited.headers["retry-after"]) >= 1
