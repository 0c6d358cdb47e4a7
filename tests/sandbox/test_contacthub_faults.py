"""Fault injection on the Contacthub simulator: latency, 429, 5xx, lost responses, outage."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from syncer.sandbox.contacthub import DEFAULT_NODE_ID as NODE
from syncer.sandbox.contacthub import DEFAULT_TOKEN as TOKEN
from syncer.sandbox.contacthub import DEFAULT_WORKSPACE_ID as WS
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.serve import ServedApp


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ContacthubSimulator, ServedApp]]:
    sim = ContacthubSimulator()
    with ServedApp(sim.asgi()) as app:
        yield sim, app


@pytest.fixture
def admin(served: tuple[ContacthubSimulator, ServedApp]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[1].url + "/_sandbox", timeout=10) as c:
        c.post("/reset").raise_for_status()
        yield c


@pytest.fixture
def client(
    served: tuple[ContacthubSimulator, ServedApp], admin: httpx.Client
) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{served[1].url}/hub/v1/workspaces/{WS}"
    with httpx.Client(base_url=url, headers=headers, timeout=10) as c:
        yield c


def set_faults(admin: httpx.Client, **plan: object) -> None:
    admin.put("/faults", json=plan).raise_for_status()


def test_latency(admin: httpx.Client, client: httpx.Client) -> None:
    set_faults(admin, latency_ms=120)
    start = time.perf_counter()
    assert client.get("/updates/last-offset").status_code == 200
    assert time.perf_counter() - start >= 0.12
    # the admin API is never delayed: with a 10 s latency on the API, an admin call ends
    # before it would (the delay itself is the bound, not this machine's speed)
    set_faults(admin, latency_ms=10_000)
    start = time.perf_counter()
    admin.get("/state", params={"summary": "1"}).raise_for_status()
    assert time.perf_counter() - start < 10.0


def test_rate_limit_429_with_retry_after(admin: httpx.Client, client: httpx.Client) -> None:
    set_faults(admin, rate_limit=5)
    statuses = [client.get("/updates/last-offset") for _ in range(12)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and sum(r.status_code == 200 for r in statuses) >= 5
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["message"] == "Too Many Requests" and limited[0].json()["logref"]


def _error_pattern(admin: httpx.Client, client: httpx.Client, seed: int) -> list[int]:
    set_faults(admin, error_rate=0.3, seed=seed)
    return [client.get("/updates/last-offset").status_code for _ in range(40)]


def test_5xx_rate_is_reproducible_from_the_seed(admin: httpx.Client, client: httpx.Client) -> None:
    first = _error_pattern(admin, client, seed=42)
    again = _error_pattern(admin, client, seed=42)
    other = _error_pattern(admin, client, seed=43)
    assert first == again and first != other
    assert {s for s in first if s != 200} <= {500, 502, 503} and 3 <= first.count(200) <= 37


def test_5xx_is_not_applied(admin: httpx.Client, client: httpx.Client) -> None:
    set_faults(admin, error_rate=1.0)
    body = {"nodeId": NODE, "externalId": "E", "base": {"firstName": "A"}}
    assert client.post("/customers", json=body).status_code in (500, 502, 503)
    set_faults(admin)
    assert client.get("/updates/last-offset").json() == {"lastOffset": 0}


def test_lost_response_is_applied(admin: httpx.Client, client: httpx.Client) -> None:
    set_faults(admin, lost_response_rate=1.0)
    body = {"nodeId": NODE, "externalId": "LOST", "base": {"firstName": "A"}}
    with pytest.raises(httpx.HTTPError):
        client.post("/customers", json=body)
    set_faults(admin)
    found = client.get("/customers", params={"nodeId": NODE, "externalId": "LOST"}).json()
    assert found["page"]["totalElements"] == 1
    assert client.get("/updates/last-offset").json() == {"lastOffset": 1}
    retry = client.post("/customers", json=body)  # the retry MERGEs instead of duplicating
    assert retry.status_code == 200 and retry.json()["id"] == found["elements"][0]["id"]


def test_outage(admin: httpx.Client, client: httpx.Client) -> None:
    set_faults(admin, outage=True)
    resp = client.get("/customers", params={"nodeId": NODE})
    assert resp.status_code == 503 and resp.json()["message"] == "Service unavailable"
    assert admin.get("/state", params={"summary": "1"}).status_code == 200
    set_faults(admin)
    assert client.get("/customers", params={"nodeId": NODE}).status_code == 200
    counts = admin.get("/requests").json()["counts"]
    assert counts["GET /hub/v1/workspaces/{id}/customers"] == 2
