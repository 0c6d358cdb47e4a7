"""The Contacthub client: status-to-action table, retries, clear stops, no token in errors."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from syncer.errors import AuthError, PermanentError, RetryableError
from syncer.source.contacthub import (
    SEARCH_CAP,
    ContacthubClient,
    SearchTooBroad,
    instant_key,
    parse_instant,
)

TOKEN = "secret-token-value"
WS, NODE = "ws-1", "node-1"
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, sleeps: list[float] | None = None, **kw: int) -> ContacthubClient:
    http = httpx.Client(
        base_url="http://ch.test/hub/v1",
        transport=httpx.MockTransport(handler),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    waits = sleeps if sleeps is not None else []
    return ContacthubClient(http, WS, NODE, sleep=waits.append, **kw)


def sequence(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def page(next_offset: int = 3) -> httpx.Response:
    update = {"operation": "CREATE", "entity": {"type": "CUSTOMER", "data": {"id": "c1"}}}
    return httpx.Response(200, json={"nextOffset": next_offset, "updates": [update]})


def test_updates_sends_offset_size_node_and_bearer() -> None:
    handler, seen = sequence(page(7))
    result = client(handler).updates(5, 4000)
    assert result.next_offset == 7 and result.updates[0]["entity"]["data"]["id"] == "c1"
    req = seen[0]
    assert req.url.path == f"/hub/v1/workspaces/{WS}/updates"
    assert dict(req.url.params) == {"offset": "5", "size": "4000", "nodeId": NODE}
    assert req.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, json={"message": "down"}),
        httpx.Response(500),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, text="<html>proxy error</html>"),
        httpx.Response(200, text='{"nextOffset": 3, "upd'),
    ],
    ids=["503", "500", "connect", "timeout", "html", "truncated"],
)
def test_transient_failures_are_retried_with_backoff(failure: httpx.Response | Exception) -> None:
    sleeps: list[float] = []
    handler, seen = sequence(failure, failure, page())
    assert client(handler, sleeps).updates(0, 10).next_offset == 3
    assert len(seen) == 3 and len(sleeps) == 2 and all(s > 0 for s in sleeps)


def test_retries_are_bounded_and_the_message_is_clear() -> None:
    handler, seen = sequence(httpx.Response(200, text="<html>Bad gateway</html>"))
    with pytest.raises(RetryableError, match="not JSON") as info:
        client(handler, max_attempts=4).updates(0, 10)
    assert len(seen) == 4
    assert "gave up after 4 attempts" in str(info.value)
    assert TOKEN not in str(info.value)


def test_429_waits_retry_after_without_spending_attempts() -> None:
    sleeps: list[float] = []
    throttled = httpx.Response(429, headers={"Retry-After": "7"})
    handler, _ = sequence(throttled, throttled, throttled, page())
    assert client(handler, sleeps, max_attempts=2).updates(0, 10).next_offset == 3
    assert sleeps == [7.0, 7.0, 7.0]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "The client is not authorized to access the API"),
        (403, f"workspace not found: {WS}"),
        (404, f"node not found {NODE}"),
    ],
)
def test_auth_failures_stop_naming_workspace_and_node(status: int, message: str) -> None:
    handler, seen = sequence(httpx.Response(status, json={"message": message, "logref": "x"}))
    with pytest.raises(AuthError) as info:
        client(handler).last_offset()
    text = str(info.value)
    assert WS in text and NODE in text and message in text and TOKEN not in text
    assert len(seen) == 1


def test_get_customer_answers_none_when_the_customer_is_gone() -> None:
    handler, _ = sequence(httpx.Response(404, json={"message": "customer not found c9"}))
    assert client(handler).get_customer("c9") is None


def test_search_sends_the_query_and_reads_the_page() -> None:
    body = {"elements": [{"id": "a"}], "page": {"totalElements": 1, "maxElements": 10000}}
    handler, seen = sequence(httpx.Response(200, json=body))
    query = {"name": "query", "query": {"type": "simple"}}
    result = client(handler).search_customers(query, 2, 50, "registeredAt,asc")
    assert (result.total, result.max_elements, len(result.elements)) == (1, 10000, 1)
    params = seen[0].url.params
    assert params["query"] == '{"name":"query","query":{"type":"simple"}}'
    assert (params["page"], params["size"], params["sort"]) == ("2", "50", "registeredAt,asc")


@pytest.mark.parametrize(
    ("page_object", "cap"),
    [
        # the SDK fixtures' vintage: totalUnfilteredElements, no maxElements/maxPages
        ({"size": 10, "totalElements": 2, "totalUnfilteredElements": 0, "totalPages": 1}, None),
        # the 1.299.1 reference: maxElements/maxPages, no totalUnfilteredElements
        ({"size": 10, "totalElements": 2, "maxElements": 500, "maxPages": 50}, 500),
        # the simulator: both
        (
            {"totalElements": 2, "totalUnfilteredElements": 0, "maxElements": 500, "maxPages": 50},
            500,
        ),
    ],
)
def test_a_page_of_either_vintage_reads_the_same(
    page_object: dict[str, int], cap: int | None
) -> None:
    body = {"elements": [{"id": "a"}, {"id": "b"}], "page": page_object}
    result = client(sequence(httpx.Response(200, json=body))[0]).search_customers(None, 0, 10)
    assert [e["id"] for e in result.elements] == ["a", "b"] and result.total == 2
    assert result.max_elements == (cap or SEARCH_CAP)  # no maxElements: the documented cap


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("2017-06-29T20:23:09.215+0000", "2017-06-29T20:23:09.215+0000"),  # the API's spelling
        ("2017-06-29T20:23:09.215Z", "2017-06-29T20:23:09.215+0000"),
        ("2017-06-29T22:23:09.215+02:00", "2017-06-29T20:23:09.215+0000"),
        ("2017-06-29T20:23:09Z", "2017-06-29T20:23:09.000+0000"),
        ("2017-06-29T20:23:09", "2017-06-29T20:23:09.000+0000"),  # no offset: UTC
        ("0001-01-01T00:00:00.00+0000", "0001-01-01T00:00:00.000+0000"),  # four-digit year
        ("2017-02-30T20:23:09.215+0000", ""),  # the API's spelling of no date
        ("2017-06-29 20:23:09.215+0000", "2017-06-29T20:23:09.215+0000"),  # a space for T
        ("2017-06-29T20:23:09,215+0000", "2017-06-29T20:23:09.215+0000"),  # a decimal comma
        ("yesterday", ""),
        (None, ""),
        (17, ""),
    ],
)
def test_instant_key_is_the_instant_not_the_spelling(text: object, key: str) -> None:
    assert instant_key(text) == key
    assert (parse_instant(text) is None) == (key == "")


def test_instant_keys_sort_as_their_instants() -> None:
    spellings = [
        "2024-01-01T10:00:00.000+0000",
        "2024-01-01T10:00:00.001Z",  # later, though "Z" > "+" as text
        "2024-01-01T12:00:01+02:00",  # later still, though its hour is 12
        "2024-01-01T10:00:02.5Z",
    ]
    keys = [instant_key(s) for s in spellings]
    assert keys == sorted(keys) and len(set(keys)) == 4
    moments = [parse_instant(s) for s in spellings]
    assert moments == sorted(m for m in moments if m is not None)


def test_a_search_over_the_cap_is_its_own_error_and_other_400s_are_permanent() -> None:
    over = httpx.Response(400, json={"message": "The maximum number of matched elements is 10000"})
    with pytest.raises(SearchTooBroad):
        client(sequence(over)[0]).search_customers(None, 0, 50)
    bad = httpx.Response(400, json={"message": "bad sort"})
    with pytest.raises(PermanentError, match="bad sort"):
        client(sequence(bad)[0]).search_customers(None, 0, 50)


def test_event_search_filters() -> None:
    body = {"elements": [], "page": {"totalElements": 0}}
    handler, seen = sequence(httpx.Response(200, json=body))
    client(handler).search_events(0, 50, types=["a", "b"], date_from="x", date_to="y")
    params = seen[0].url.params
    assert (params["type"], params["dateFrom"], params["dateTo"]) == ("a,b", "x", "y")
