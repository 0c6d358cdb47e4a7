"""Contactlab's official Python SDK (PyPI ``contacthub-sdk-python`` 0.2) against the simulator.

Every Contacthub call a user of the SDK makes goes over a real socket on 127.0.0.1: paging,
get, externalId lookup, the query builder (IN with a scalar too), create, update (PUT),
patch, delete, events and errors. The SDK reads ``totalUnfilteredElements`` on every page and
``data``/``logref`` of every error, and its fixtures write dates as ``...215+0000``: a
simulator that differs from the real API on any of these makes it crash here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from contacthub import Workspace
from contacthub.errors.api_error import APIError
from contacthub.errors.operation_not_permitted import OperationNotPermitted
from contacthub.models import Properties
from contacthub.models.customer import Customer
from contacthub.models.query import between_, in_, not_in_

from syncer.sandbox.contacthub import DEFAULT_NODE_ID as NODE
from syncer.sandbox.contacthub import DEFAULT_TOKEN as TOKEN
from syncer.sandbox.contacthub import DEFAULT_WORKSPACE_ID as WS
from syncer.sandbox.contacthub import ContacthubBehaviour, ContacthubSimulator
from syncer.sandbox.serve import ServedApp

pytestmark = pytest.mark.timeout(60)  # the SDK calls requests without a timeout

# The API's spelling, as every fixture of the SDKs writes it (Go: 2006-01-02T15:04:05.999-0700)
REAL_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ContacthubSimulator, ServedApp]]:
    sim = ContacthubSimulator()
    with ServedApp(sim.asgi()) as app:
        yield sim, app


@pytest.fixture
def sim(
    served: tuple[ContacthubSimulator, ServedApp], monkeypatch: pytest.MonkeyPatch
) -> ContacthubSimulator:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)  # requests must reach 127.0.0.1 directly
    httpx.post(served[1].url + "/_sandbox/reset").raise_for_status()
    served[0].behaviour = ContacthubBehaviour()
    return served[0]


def workspace(served: tuple[Any, ServedApp], ws: str = WS, token: str = TOKEN) -> Workspace:
    return Workspace(workspace_id=ws, token=token, base_url=served[1].url + "/hub/v1/workspaces")


@pytest.fixture
def node(served: tuple[ContacthubSimulator, ServedApp], sim: ContacthubSimulator) -> Any:
    return workspace(served).get_node(NODE)


def load(served: tuple[Any, ServedApp], customers: list[dict[str, Any]]) -> list[str]:
    resp = httpx.post(served[1].url + "/_sandbox/load", json={"customers": customers})
    resp.raise_for_status()
    return [c["id"] for c in customers]


def person(i: int, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "nodeId": NODE,
        "externalId": f"E{i}",
        "base": {"firstName": f"P{i}", "contacts": {"email": f"p{i}@example.it"}},
        "tags": {"auto": [], "manual": []},
        "extended": {},
        "registeredAt": f"2020-01-{i % 28 + 1:02d}T10:00:00.000+0000",
        "updatedAt": f"2021-01-{i % 28 + 1:02d}T10:00:{i % 60:02d}.000+0000",
    }
    doc.update(extra)
    return doc


def every_page(first: Any) -> list[Any]:
    """All the elements of an SDK ``PaginatedList``, page by page."""
    items = list(first)
    while first.page_number < first.total_pages - 1:
        items += list(first.next_page())
    return items


def ids(items: Any) -> set[str]:
    return {item.id for item in items}


# -- paging ---------------------------------------------------------------------------------
def test_paging_default_size_next_previous_and_the_last_page(
    served: tuple[Any, ServedApp], node: Any
) -> None:
    loaded = load(served, [person(i) for i in range(25)])
    pages = node.get_customers()
    # the SDK reads each of these from the page object (KeyError when one is missing)
    assert (pages.size, pages.total_elements, pages.total_pages) == (10, 25, 3)
    assert pages.total_unfiltered_elements == 0 and len(pages) == 10
    first = ids(pages)
    second = ids(pages.next_page())
    third = ids(pages.next_page())
    assert pages.page_number == 2 and len(third) == 5
    assert first | second | third == set(loaded) and len(first | second | third) == 25
    with pytest.raises(OperationNotPermitted):
        pages.next_page()
    assert ids(pages.previous_page()) == second
    small = node.get_customers(size=4)
    assert (small.size, small.total_pages, len(small)) == (4, 7, 4)
    # newest updatedAt first (the API's default sort)
    stamps = [c.updatedAt for c in every_page(node.get_customers())]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) == 25


# -- get, externalId, create ------------------------------------------------------------------
def test_create_get_and_lookup_by_external_id(node: Any) -> None:
    created = node.add_customer(
        externalId="ext-1",
        base=Properties(firstName="Mario", contacts=Properties(email="mario@example.it")),
        tags={"auto": [], "manual": ["vip"]},
    )
    assert created.nodeId == NODE and created.version == 0
    assert REAL_DATE.match(created.registeredAt) and created.updatedAt == created.registeredAt
    # parsed the way the Go SDK parses it (layout with a numeric zone, milliseconds)
    parsed = datetime.strptime(created.registeredAt, "%Y-%m-%dT%H:%M:%S.%f%z")
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    got = node.get_customer(id=created.id)
    assert got.base.firstName == "Mario" and got.base.contacts.email == "mario@example.it"
    assert got.to_dict() == created.to_dict()
    assert node.get_customer(external_id="ext-1").id == created.id
    assert len(node.get_customer(external_id="nobody")) == 0  # an empty page, not an error
    # the model's own post
    Customer(
        node=node,
        externalId="ext-2",
        base=Properties(firstName="Anna", contacts=Properties(email="anna@example.it")),
    ).post()
    assert node.get_customer(external_id="ext-2").base.firstName == "Anna"


def test_create_with_force_update_patches_the_existing_customer_on_409(
    node: Any, sim: ContacthubSimulator
) -> None:
    sim.behaviour = ContacthubBehaviour(conflict_mode="409")  # the API the SDK was written for
    first = node.add_customer(externalId="dup", base={"firstName": "Old"})
    with pytest.raises(APIError, match=r"Status code: 409\. Message: Conflict with exiting"):
        node.add_customer(externalId="dup", base={"firstName": "New"})
    # force_update reads data.customer.id of the 409 body and PATCHes that customer
    patched = node.add_customer(force_update=True, externalId="dup", base={"firstName": "New"})
    assert patched.id == first.id and patched.base.firstName == "New" and patched.version == 1


# -- update (PUT), patch, delete ---------------------------------------------------------------
def test_update_put_patch_and_delete(node: Any) -> None:
    cid = node.add_customer(
        externalId="u1", base={"firstName": "Mario", "lastName": "Rossi"}, extended={"tier": "a"}
    ).id
    # PATCH from the model's mutation tracker: only what changed is sent
    fetched = node.get_customer(id=cid)
    fetched.base.firstName = "Maria"
    assert fetched.get_mutation_tracker() == {"base": {"firstName": "Maria"}}
    fetched.patch()
    after = node.get_customer(id=cid)
    assert (after.base.firstName, after.base.lastName, after.version) == ("Maria", "Rossi", 1)
    # PATCH through the node
    node.update_customer(cid, extended={"tier": "b"})
    assert node.get_customer(id=cid).extended.tier == "b"
    # PUT with the whole customer, as the SDK sends it (id, nodeId, dates and all)
    whole = node.get_customer(id=cid).to_dict()
    whole["base"]["lastName"] = "Verdi"
    put = node.update_customer(full_update=True, **whole)
    assert put.base.lastName == "Verdi" and put.version == 3
    assert REAL_DATE.match(put.updatedAt) and put.updatedAt >= put.registeredAt
    model = node.get_customer(id=cid)
    model.base.firstName = "Giulia"
    model.put()
    assert node.get_customer(id=cid).base.firstName == "Giulia"
    # DELETE: 200 and an empty body, which the model's delete reads as it is
    node.get_customer(id=cid).delete()
    with pytest.raises(APIError, match=rf"Status code: 404\. Message: customer not found {cid}"):
        node.get_customer(id=cid)


def test_node_delete_customer_meets_the_real_empty_body(node: Any) -> None:
    cid = node.add_customer(externalId="d1", base={"firstName": "X"}).id
    # Node.delete_customer builds a Customer from the answer: the real API's empty body
    # (Go SDK: "the API returns an empty body") is no mapping, so the SDK itself raises.
    with pytest.raises(TypeError, match="must be a mapping"):
        node.delete_customer(cid)
    with pytest.raises(APIError, match="Status code: 404"):
        node.get_customer(id=cid)  # it was deleted all the same


# -- the query builder ------------------------------------------------------------------------
def test_query_builder_filters(served: tuple[Any, ServedApp], node: Any) -> None:
    docs = [
        person(1, tags={"auto": [], "manual": ["vip"]}, extended={"tier": "gold", "points": 10}),
        person(2, tags={"auto": [], "manual": ["vip", "x"]}, extended={"tier": "silver"}),
        person(3, extended={"tier": "gold", "points": 500}),
        person(4, base={"firstName": "Mario", "contacts": {"email": None}}),
        person(5, base={"firstName": "Mario", "contacts": {"email": "m5@example.it"}}),
    ]
    docs[0]["registeredAt"] = "2019-06-01T00:00:00.000+0000"
    docs[1]["registeredAt"] = "2019-12-31T23:59:59.999+0000"
    load(served, docs)
    c1, c2, c3, c4, c5 = (d["id"] for d in docs)

    def found(query: Any) -> set[str]:
        return ids(every_page(query.all()))

    q = node.query(Customer)
    assert found(q.filter(Customer.base.firstName == "Mario")) == {c4, c5}
    assert found(q.filter(Customer.base.firstName != "Mario")) == {c1, c2, c3}
    # IN / NOT_IN with a scalar: the SDK's in_(value, list attribute)
    assert found(q.filter(in_("vip", Customer.tags.manual))) == {c1, c2}
    assert found(q.filter(not_in_("vip", Customer.tags.manual))) == {c3, c4, c5}
    assert found(q.filter(in_("gold", Customer.extended.tier))) == {c1, c3}
    assert found(q.filter(Customer.extended.points > 100)) == {c3}
    assert found(q.filter(Customer.extended.points <= 10)) == {c1}
    assert found(q.filter(Customer.base.contacts.email == None)) == {c4}  # noqa: E711 (IS_NULL)
    assert found(q.filter(Customer.extended.tier != None)) == {c1, c2, c3}  # noqa: E711
    # BETWEEN with datetimes: the SDK writes them as ...T..:..:..Z
    in_2019 = between_(Customer.registeredAt, datetime(2019, 1, 1), datetime(2020, 1, 1))
    assert found(q.filter(in_2019)) == {c1, c2}
    # composite conditions and chained filters (and), or
    gold_vip = (Customer.extended.tier == "gold") & in_("vip", Customer.tags.manual)
    assert found(q.filter(gold_vip)) == {c1}
    either = (Customer.extended.tier == "silver") | (Customer.extended.points > 100)
    assert found(q.filter(either)) == {c2, c3}
    chained = q.filter(Customer.extended.tier == "gold").filter(Customer.extended.points > 100)
    assert found(chained) == {c3}
    # combined queries: INTERSECT (&) and UNION (|)
    vip = q.filter(in_("vip", Customer.tags.manual))
    gold = q.filter(Customer.extended.tier == "gold")
    assert found(vip & gold) == {c1}
    assert found(vip | gold) == {c1, c2, c3}
    page = (vip | gold).all()
    assert (page.total_elements, page.total_unfiltered_elements) == (3, 0)


# -- events -----------------------------------------------------------------------------------
def test_events_add_get_and_filter(node: Any) -> None:
    customer = node.add_customer(externalId="ev", base={"firstName": "Eva"})
    node.add_event(
        customerId=customer.id,
        type="completedOrder",
        context="ECOMMERCE",
        properties={"orderId": "o-1"},
        date=datetime(2024, 1, 1, 10, 0, 0),
    )
    node.add_event(
        bringBackProperties={"type": "EXTERNAL_ID", "value": "ev", "nodeId": NODE},
        type="campaignSent",
        context="DIGITAL_CAMPAIGN",
        properties={},
        date=datetime(2024, 3, 1, 9, 30, 0),
    )
    events = node.get_events(customer_id=customer.id)
    assert (events.total_elements, events.size, events.total_unfiltered_elements) == (2, 10, 0)
    assert [e.type for e in events] == ["campaignSent", "completedOrder"]  # newest first
    assert [e.date for e in events] == [
        "2024-03-01T09:30:00.000+0000",
        "2024-01-01T10:00:00.000+0000",
    ]
    assert all(REAL_DATE.match(e.registeredAt) for e in events)
    one = node.get_event(events[1].id)
    assert (one.type, one.customerId, one.properties.orderId) == (
        "completedOrder",
        customer.id,
        "o-1",
    )
    assert [e.type for e in node.get_events(customer.id, event_type="campaignSent")] == [
        "campaignSent"
    ]
    assert [e.type for e in node.get_events(customer.id, event_mode="ACTIVE")] == ["completedOrder"]
    window = node.get_events(
        customer.id, date_from=datetime(2024, 2, 1), date_to=datetime(2024, 12, 31)
    )
    assert [e.type for e in window] == ["campaignSent"]
    assert [e.type for e in customer.get_events()] == ["campaignSent", "completedOrder"]


# -- errors -----------------------------------------------------------------------------------
def test_errors_reach_the_caller_as_api_errors(
    served: tuple[ContacthubSimulator, ServedApp], node: Any, sim: ContacthubSimulator
) -> None:
    # The SDK formats message, errors, data and logref of every error: a missing key would
    # be a KeyError (a crash) instead of the APIError below.
    with pytest.raises(APIError) as caught:
        workspace(served, token="wrong").get_node(NODE).get_customers()
    assert "Status code: 401. Message: The client is not authorized to access the API" in str(
        caught.value
    )
    assert "Data: None" in str(caught.value)
    with pytest.raises(APIError, match=r"Status code: 403\. Message: workspace not found: nope"):
        workspace(served, ws="nope").get_node(NODE).get_customers()
    with pytest.raises(APIError, match=r"Status code: 404\. Message: node not found n-x"):
        workspace(served).get_node("n-x").get_customers()
    with pytest.raises(APIError) as caught:
        node.add_customer(externalId="bad", base={"contacts": {"email": "not an email"}})
    text = str(caught.value)
    assert "Status code: 400. Message: customer is not valid" in text
    assert "'path': '/base/contacts/email'" in text and "'code': None" in text
    with pytest.raises(APIError, match=r"Status code: 400\. Message: event is not valid"):
        node.add_event(customerId="nobody", type="completedOrder", context="ECOMMERCE")
    with pytest.raises(APIError, match=r"Status code: 404\. Message: event not found e-x"):
        node.get_event("e-x")
    # jobs, likes, educations, subscriptions and sessions are not simulated: a 404 with the
    # standard body, which the SDK reports like any other error
    cid = node.add_customer(externalId="j", base={"firstName": "J"}).id
    with pytest.raises(APIError, match=r"Status code: 404\. Message: Not Found\. Errors: \[\]"):
        node.add_job(cid, id="job-1", companyName="Contactlab")
    # the search cap in its refusing reading: data carries the numbers
    sim.behaviour = ContacthubBehaviour(search_cap=2, search_cap_mode="error")
    load(served, [person(i) for i in range(3)])  # with "j": 4 customers
    with pytest.raises(APIError) as caught:
        node.get_customers()
    assert "Status code: 400" in str(caught.value)
    assert "Data: {'matchedElements': 4, 'maxElements': 2}" in str(caught.value)
