"""360NRS simulator: /contacts over real HTTP (validation, filters, include, PUT semantics)."""

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
FIXED = datetime(2018, 3, 13, 14, 32, 25, tzinfo=UTC)


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
    simulator.load({"groups": [{"name": "Newsletter"}, {"name": "VIP"}]})
    return simulator


@pytest.fixture
def api(sim: Nrs360Simulator, served: tuple[Nrs360Simulator, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[1] + "/api/rest", auth=AUTH) as client:
        yield client


def err(code: int, description: str) -> dict[str, Any]:
    return {"error": {"code": code, "description": description}}


def contact(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"email": "ana@example.com", "groupsIds": [1]}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def test_create_returns_documented_shape(api: httpx.Client) -> None:
    body = contact(
        phone="34666666666",
        countryIso="ES",
        name="Ana",
        customFields=[{"key": "company", "value": "ACME inc."}],
    )
    response = api.post("/contacts", json=body)
    assert response.status_code == 201
    assert response.json() == {
        "data": {
            "id": 1,
            "email": "ana@example.com",
            "phone": "34666666666",
            "countryIso": "ES",
            "landline": None,
            "name": "Ana",
            "surname": None,
            "createdAt": "2018-03-13T14:32:25+00:00",
            "updatedAt": "2018-03-13T14:32:25+00:00",
            "links": {"self": f"{str(api.base_url).rstrip('/')}/contacts/1"},
        }
    }
    assert api.post("/contacts", json=contact(email="b@example.com")).json()["data"]["id"] == 2


def test_show_with_and_without_include(api: httpx.Client) -> None:
    api.post(
        "/contacts",
        json=contact(
            groupsIds=[2],
            groupsNames=["newsletter"],
            customFields=[{"key": "color", "type": "string", "value": "green"}],
        ),
    )
    plain = api.get("/contacts/1").json()["data"]
    assert "customFields" not in plain and "groups" not in plain and "links" not in plain
    full = api.get("/contacts/1", params={"include": "customFields,groups"}).json()["data"]
    assert full["customFields"] == {"data": [{"key": "color", "type": "string", "value": "green"}]}
    assert full["groups"] == {"data": [{"id": 2, "name": "VIP"}, {"id": 1, "name": "Newsletter"}]}
    only_groups = api.get("/contacts/1", params={"include": "groups,bogus"}).json()["data"]
    assert "groups" in only_groups and "customFields" not in only_groups


def test_unknown_contact_is_404(api: httpx.Client) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = api.request(method, "/contacts/99", json=contact())
        assert response.status_code == 404
        assert response.json() == err(404, "Resource not found")


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({"groupsIds": [1]}, "The email field is required."),
        (contact(email=""), "The email field is required."),
        (contact(email="not-an-email"), "The email field must be a valid email address."),
        (
            contact(email=None, phone="34666666666"),
            "The countryIso field is required when phone / landline is present.",
        ),
        (
            contact(phone="34666666666", countryIso="XX"),
            "The countryIso field must be a valid ISO 3166-1 alpha-2 country code.",
        ),
        (
            contact(phone="3466666666", countryIso="ES"),  # the doc's example: a digit short
            "The phone field does not contain a valid phone number.",
        ),
        (
            contact(phone="+34666666666", countryIso="ES"),
            "The phone field does not contain a valid phone number.",
        ),
        (
            contact(phone="34912345678", countryIso="ES"),  # a Madrid landline, not a mobile
            "The phone field does not contain a valid phone number.",
        ),
        (
            contact(phone="33612345678", countryIso="ES"),  # French mobile, Spanish contact
            "The phone field does not contain a valid phone number.",
        ),
        (
            contact(phone=34666666666, countryIso="ES"),
            "The phone field must be a string.",
        ),
        (
            contact(landline="666666666", countryIso="ES"),
            "The landline field does not contain a valid phone number.",
        ),
        (
            contact(groupsIds=None),
            "The groupsIds field is required when groupsNames is not present.",
        ),
        (
            contact(groupsIds=[]),
            "The groupsIds field is required when groupsNames is not present.",
        ),
        (contact(groupsIds=1), "The groupsIds field must be an array."),
        (contact(groupsIds=["1"]), "The groupsIds.0 field must be an integer."),
        (contact(groupsIds=[1, 42]), "The selected groupsIds.1 is invalid."),
        (contact(groupsIds=None, groupsNames=["Nope"]), "The selected groupsNames.0 is invalid."),
        (contact(name=5), "The name field must be a string."),
        (contact(customFields={"key": "a"}), "The customFields field must be an array."),
        (contact(customFields=[{"value": "x"}]), "The customFields.0.key field is required."),
        (
            contact(customFields=[{"key": "a", "type": "bool", "value": "x"}]),
            "The selected customFields.0.type is invalid.",
        ),
        (
            contact(
                customFields=[{"key": "a"}, {"key": "b", "type": "date", "value": "13/03/2018"}]
            ),
            "The customFields.1.value field must be a valid ISO 8601 date.",
        ),
        (
            contact(customFields=[{"key": "b", "type": "date", "value": "2018-02-30"}]),
            "The customFields.0.value field must be a valid ISO 8601 date.",
        ),
        (
            contact(customFields=[{"key": "n", "type": "decimal", "value": "12,5"}]),
            "The customFields.0.value field must be a number.",
        ),
        (
            contact(customFields=[{"key": "s", "value": 12}]),
            "The customFields.0.value field must be a string.",
        ),
    ],
)
def test_create_validation_errors(
    api: httpx.Client, body: dict[str, Any], description: str
) -> None:
    response = api.post("/contacts", json=body)
    assert response.status_code == 422
    assert response.json() == err(422, description)
    assert api.get("/contacts").json()["meta"]["pagination"]["total"] == 0


def test_valid_variants_are_accepted(api: httpx.Client) -> None:
    accepted = [
        contact(email=None, phone="34612345678", countryIso="es"),
        contact(email=None, landline="900222222", countryIso="ES"),  # the doc's national form
        contact(
            email=None, landline="34912345679", countryIso="ES", groupsIds=None, groupsNames=["VIP"]
        ),
        contact(
            email="x@example.com",
            customFields=[
                {"key": "born", "type": "date", "value": "1990-05-01"},
                {"key": "seen", "type": "date", "value": "2018-03-13T14:32:25+00:00"},
                {"key": "score", "type": "decimal", "value": 12.5},
                {"key": "limit", "type": "decimal", "value": "-3.25"},
                {"key": "note", "value": None},
            ],
        ),
    ]
    for body in accepted:
        response = api.post("/contacts", json=body)
        assert response.status_code == 201, response.text
    assert api.get("/contacts/1").json()["data"]["countryIso"] == "ES"


def test_invalid_json_is_error_125(api: httpx.Client) -> None:
    for raw in (b"{nope", b"[1, 2]"):
        response = api.post("/contacts", content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json() == err(125, "Invalid JSON")


def test_duplicate_email_and_phone_are_rejected(api: httpx.Client) -> None:
    first = contact(phone="34666666666", countryIso="ES")
    assert api.post("/contacts", json=first).status_code == 201
    dup_email = api.post("/contacts", json=contact(email="ANA@example.com"))
    assert dup_email.status_code == 422
    assert dup_email.json() == err(422, "The email has already been taken.")
    dup_phone = api.post(
        "/contacts", json=contact(email="b@example.com", phone="34666666666", countryIso="ES")
    )
    assert dup_phone.status_code == 422
    assert dup_phone.json() == err(422, "The phone has already been taken.")
    # updating a contact with its own email and phone is fine
    assert api.put("/contacts/1", json=first).status_code == 200


def test_duplicates_allowed_by_switch() -> None:
    sim = Nrs360Simulator(behaviour=Nrs360Behaviour(duplicates="allow"))
    sim.load({"groups": [{"name": "G"}]})
    with (
        ServedApp(sim.asgi()) as app,
        httpx.Client(base_url=app.url + "/api/rest", auth=AUTH) as api,
    ):
        assert api.post("/contacts", json=contact()).status_code == 201
        assert api.post("/contacts", json=contact()).status_code == 201
        found = api.get("/contacts", params={"email": "ana@example.com"}).json()
        assert [c["id"] for c in found["data"]] == [1, 2]


def test_filters(api: httpx.Client, sim: Nrs360Simulator) -> None:
    sim.load(
        {
            "contacts": [
                {
                    "email": "ana@example.com",
                    "phone": "34666666666",
                    "countryIso": "ES",
                    "externalId": "EXT1",
                    "groups": [1],
                },
                {
                    "email": "bob@example.com",
                    "phone": "33612345678",
                    "countryIso": "FR",
                    "landline": "900222222",
                },
                {"email": "cy@example.com", "countryIso": "ES", "externalId": "EXT3"},
            ]
        }
    )

    def ids(**params: str) -> list[int]:
        return [c["id"] for c in api.get("/contacts", params=params).json()["data"]]

    assert ids() == [1, 2, 3]
    assert ids(email="ANA@example.com") == [1]
    assert ids(email="nobody@example.com") == []
    assert ids(phone="33612345678") == [2]
    assert ids(landline="900222222") == [2]
    assert ids(countryIso="es") == [1, 3]
    assert ids(externalId="EXT3") == [3]
    assert ids(externalId="EXT1", countryIso="FR") == []
    assert ids(email="ana@example.com", phone="34666666666") == [1]
    assert "externalId" not in api.get("/contacts/1").json()["data"]
    listed = api.get("/contacts", params={"email": "ana@example.com", "include": "groups"}).json()
    assert listed["data"][0]["groups"] == {"data": [{"id": 1, "name": "Newsletter"}]}
    assert listed["meta"]["pagination"]["total"] == 1


def test_put_replaces_groups_and_keeps_unsent_fields(
    api: httpx.Client, sim: Nrs360Simulator
) -> None:
    body = contact(
        groupsIds=[1, 2],
        name="Ana",
        surname="Ruiz",
        phone="34666666666",
        countryIso="ES",
        customFields=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
    )
    api.post("/contacts", json=body)
    later = datetime(2019, 1, 1, tzinfo=UTC)
    sim.ctx.clock = lambda: later
    try:
        response = api.put(
            "/contacts/1",
            json={
                "email": "ana@example.com",
                "groupsIds": [2],
                "name": "Anita",
                "customFields": [{"key": "b", "value": "3"}],
            },
        )
    finally:
        sim.ctx.clock = lambda: FIXED
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["name"] == "Anita" and data["surname"] == "Ruiz" and data["phone"] == "34666666666"
    assert data["createdAt"] == "2018-03-13T14:32:25+00:00"
    assert data["updatedAt"] == "2019-01-01T00:00:00+00:00"
    assert data["links"] == {"self": f"{str(api.base_url).rstrip('/')}/contacts/1"}
    full = api.get("/contacts/1", params={"include": "customFields,groups"}).json()["data"]
    assert full["groups"] == {"data": [{"id": 2, "name": "VIP"}]}
    assert full["customFields"]["data"] == [
        {"key": "a", "type": "string", "value": "1"},
        {"key": "b", "type": "string", "value": "3"},
    ]
    # null clears a scalar; the email index follows changes
    api.put("/contacts/1", json={"email": "new@example.com", "surname": None, "groupsIds": [1]})
    assert api.get("/contacts/1").json()["data"]["surname"] is None
    assert api.get("/contacts", params={"email": "ana@example.com"}).json()["data"] == []
    assert len(api.get("/contacts", params={"email": "new@example.com"}).json()["data"]) == 1
    # PUT follows the same parameter table as POST
    missing = api.put("/contacts/1", json={"name": "X"})
    assert missing.json() == err(422, "The email field is required.")


def test_put_replace_switch_clears_unsent_fields() -> None:
    sim = Nrs360Simulator(behaviour=Nrs360Behaviour(put_semantics="replace"))
    sim.load({"groups": [{"name": "G"}]})
    with (
        ServedApp(sim.asgi()) as app,
        httpx.Client(base_url=app.url + "/api/rest", auth=AUTH) as api,
    ):
        api.post("/contacts", json=contact(name="Ana", customFields=[{"key": "a", "value": "1"}]))
        api.put("/contacts/1", json=contact(surname="Ruiz"))
        data = api.get("/contacts/1", params={"include": "customFields"}).json()["data"]
    assert data["name"] is None and data["surname"] == "Ruiz"
    assert data["customFields"] == {"data": []}


def test_delete_contact(api: httpx.Client, sim: Nrs360Simulator) -> None:
    api.post("/contacts", json=contact(phone="34666666666", countryIso="ES"))
    response = api.delete("/contacts/1")
    assert response.status_code == 204 and response.content == b""
    assert api.get("/contacts/1").status_code == 404
    assert sim.store.members == {} and sim.store.by_email == {} and sim.store.by_phone == {}
    # the email is free again; ids keep increasing
    assert api.post("/contacts", json=contact()).json()["data"]["id"] == 2


def test_group_names_create_switch() -> None:
    sim = Nrs360Simulator(behaviour=Nrs360Behaviour(group_names="create"))
    with (
        ServedApp(sim.asgi()) as app,
        httpx.Client(base_url=app.url + "/api/rest", auth=AUTH) as api,
    ):
        body = {"email": "a@example.com", "groupsNames": ["Fresh", "fresh"]}
        assert api.post("/contacts", json=body).status_code == 201
        assert api.get("/groups").json()["data"] == [{"id": 1, "name": "Fresh"}]


def test_external_id_and_plus_switches() -> None:
    behaviour = Nrs360Behaviour(external_id_writable=True, accept_plus_prefix=True)
    sim = Nrs360Simulator(behaviour=behaviour)
    sim.load({"groups": [{"name": "G"}]})
    with (
        ServedApp(sim.asgi()) as app,
        httpx.Client(base_url=app.url + "/api/rest", auth=AUTH) as api,
    ):
        body = contact(phone="+34666666666", countryIso="ES", externalId="CH-1")
        data = api.post("/contacts", json=body).json()["data"]
        assert data["phone"] == "34666666666" and data["externalId"] == "CH-1"
        assert [
            c["id"] for c in api.get("/contacts", params={"externalId": "CH-1"}).json()["data"]
        ] == [1]
        assert len(api.get("/contacts", params={"phone": "+34666666666"}).json()["data"]) == 1


def test_external_id_is_ignored_by_default(api: httpx.Client, sim: Nrs360Simulator) -> None:
    api.post("/contacts", json=contact(externalId="CH-1"))
    assert sim.dump_state()["contacts"][0]["externalId"] is None
