"""The switches added for issue 16's remaining open readings (docs/sandbox.md table):
Contacthub ``rate_limit`` and ``page_object``, Octopush ``rate_limit``, NP6 ``no_execution``;
each reading over real HTTP, and ``syncer sandbox --behaviour`` reaches them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.cli.sandbox_cmd import apply_behaviours
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.contacthub.behaviour import DEFAULT_NODE_ID, DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp

RATE_HEADERS = {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"}
CH = f"/hub/v1/workspaces/{DEFAULT_WORKSPACE_ID}/customers"
CH_AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
OCTO_AUTH = {"api-login": "sandbox@example.com", "api-key": "sandbox-octopush-key"}
NP6 = {"X-Key": "sandbox-np6-key", "Accept": "application/vnd.mperf.v8.import.v1+json"}


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, str]]:
    apps = {"ch": ContacthubSimulator(), "octo": OctopushSimulator(), "np6": Np6Simulator()}
    running = {name: ServedApp(sim.asgi()).start() for name, sim in apps.items()}
    try:
        yield {name: app.url for name, app in running.items()}
    finally:
        for app in running.values():
            app.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def throttled(http: httpx.Client, url: str, call: Any) -> httpx.Response:
    http.put(url + "/_sandbox/faults", json={"rate_limit": 0.001}).raise_for_status()
    try:
        for _ in range(3):
            answer: httpx.Response = call()
            if answer.status_code == 429:
                return answer
        raise AssertionError("no 429")
    finally:
        http.put(url + "/_sandbox/faults", json={}).raise_for_status()


@pytest.mark.parametrize(
    ("reading", "retry_after", "rate_headers"),
    [("retry_after", True, False), ("x_ratelimit", False, True), ("bare", False, False)],
)
@pytest.mark.parametrize("sim", ["ch", "octo"])
def test_rate_limit_headers(
    http: httpx.Client,
    served: dict[str, str],
    sim: str,
    reading: str,
    retry_after: bool,
    rate_headers: bool,
) -> None:
    url = served[sim]
    http.put(url + "/_sandbox/behaviour", json={"rate_limit": reading}).raise_for_status()
    if sim == "ch":
        answer = throttled(
            http,
            url,
            lambda: http.get(url + CH, params={"nodeId": DEFAULT_NODE_ID}, headers=CH_AUTH),
        )
        assert answer.json()["message"] == "Too Many Requests"  # the standard error body
    else:
        body = {"list_name": "x"}
        answer = throttled(
            http,
            url,
            lambda: http.post(url + "/v1/public/contact-list/create", json=body, headers=OCTO_AUTH),
        )
        assert answer.json()["code"] == 900
    assert ("retry-after" in answer.headers) is retry_after
    assert bool(RATE_HEADERS & set(answer.headers)) is rate_headers
    assert (set(answer.headers) >= RATE_HEADERS) is rate_headers
    http.put(url + "/_sandbox/behaviour", json={"rate_limit": "retry_after"}).raise_for_status()


@pytest.mark.parametrize(
    ("reading", "legacy", "current"),
    [("union", True, True), ("legacy", True, False), ("current", False, True)],
)
def test_contacthub_page_object(
    http: httpx.Client, served: dict[str, str], reading: str, legacy: bool, current: bool
) -> None:
    url = served["ch"]
    http.put(url + "/_sandbox/behaviour", json={"page_object": reading}).raise_for_status()
    page = http.get(url + CH, params={"nodeId": DEFAULT_NODE_ID}, headers=CH_AUTH).json()["page"]
    assert ("totalUnfilteredElements" in page) is legacy
    assert ("maxElements" in page and "maxPages" in page) is current
    assert {"size", "totalElements", "totalPages", "number"} <= set(page)
    http.put(url + "/_sandbox/behaviour", json={"page_object": "union"}).raise_for_status()


def test_contacthub_refuses_an_unknown_reading(http: httpx.Client, served: dict[str, str]) -> None:
    answer = http.put(served["ch"] + "/_sandbox/behaviour", json={"page_object": "old"})
    assert answer.status_code == 400 and "page_object" in answer.json()["error"]


@pytest.mark.parametrize(
    ("reading", "status", "body"), [("not_found_404", 404, b""), ("empty_200", 200, b"{}")]
)
def test_np6_no_execution(
    http: httpx.Client, served: dict[str, str], reading: str, status: int, body: bytes
) -> None:
    url = served["np6"]
    http.put(url + "/_sandbox/behaviour", json={"no_execution": reading}).raise_for_status()
    made = http.post(
        url + "/imports",
        json={"name": "never started", "binding": 1234, "features": []},
        headers={**NP6, "Content-Type": "application/json"},
    )
    assert made.status_code == 200, made.text
    answer = http.get(url + f"/imports/{made.json()['id']}/executions", headers=NP6)
    assert (answer.status_code, answer.content) == (status, body)
    http.put(url + "/_sandbox/behaviour", json={"no_execution": "not_found_404"}).raise_for_status()


def test_cli_settings_reach_the_new_switches() -> None:
    sims: dict[str, Any] = {
        "contacthub": ContacthubSimulator(),
        "octopush": OctopushSimulator(),
        "np6": Np6Simulator(),
    }
    apply_behaviours(
        sims,
        [
            "contacthub.rate_limit=bare",
            "contacthub.page_object=legacy",
            "octopush.rate_limit=x_ratelimit",
            "np6.no_execution=empty_200",
        ],
    )
    assert (sims["contacthub"].behaviour.rate_limit, sims["contacthub"].behaviour.page_object) == (
        "bare",
        "legacy",
    )
    assert sims["octopush"].behaviour.rate_limit == "x_ratelimit"
    assert sims["np6"].behaviour.no_execution == "empty_200"
    with pytest.raises(ValueError, match="page_object"):
        apply_behaviours(sims, ["contacthub.page_object=old"])
