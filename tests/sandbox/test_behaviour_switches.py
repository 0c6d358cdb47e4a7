"""The 360NRS and NP6 behaviour switches of issue 16 (table in docs/sandbox.md): each reading,
set through the admin API (``PUT /_sandbox/behaviour``) or ``syncer sandbox --behaviour``,
over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from syncer.cli.sandbox_cmd import apply_behaviours, sandbox
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.serve import ServedApp

NRS_AUTH = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
NP6_KEY = {"X-Key": "sandbox-np6-key"}


@pytest.fixture(scope="module")
def nrs() -> Iterator[tuple[Nrs360Simulator, str]]:
    sim = Nrs360Simulator(username="u", api_password="p")
    with ServedApp(sim.asgi()) as app:
        yield sim, app.url


@pytest.fixture(scope="module")
def np6() -> Iterator[tuple[Np6Simulator, str]]:
    sim = Np6Simulator()
    with ServedApp(sim.asgi()) as app:
        yield sim, app.url


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def fresh(http: httpx.Client, url: str, sim: Any, **switches: Any) -> None:
    """Reset the simulator, its faults and every switch to its default, then set ``switches``."""
    http.post(url + "/_sandbox/reset").raise_for_status()
    sim.apply_behaviour(type(sim.behaviour)())
    if switches:
        answer = http.put(url + "/_sandbox/behaviour", json=switches)
        assert answer.status_code == 200, answer.text


# -- the admin API -------------------------------------------------------------------------------
def test_admin_api_reads_and_changes_only_the_switches_sent(
    http: httpx.Client, nrs: tuple[Nrs360Simulator, str]
) -> None:
    sim, url = nrs
    fresh(http, url, sim, put_groups="add")
    current = http.get(url + "/_sandbox/behaviour").json()
    assert current["put_groups"] == "add" and current["duplicate_email"] == "refuse"
    answer = http.put(url + "/_sandbox/behaviour", json={"duplicate_email": "accept"})
    assert answer.json()["duplicate_email"] == "accept" and answer.json()["put_groups"] == "add"
    assert sim.ctx.behaviour.duplicate_email == "accept"  # what the handlers read


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"nope": 1}, "unknown switch 'nope'"),
        ({"put_groups": "merge"}, "switch 'put_groups' takes replace or add, not 'merge'"),
        ({"validate_phone_numbers": "yes"}, "switch 'validate_phone_numbers' takes a bool"),
        (["put_groups"], "the body must be a JSON object"),
    ],
)
def test_admin_api_refuses_a_bad_switch_and_changes_nothing(
    http: httpx.Client, nrs: tuple[Nrs360Simulator, str], body: Any, message: str
) -> None:
    sim, url = nrs
    fresh(http, url, sim)
    answer = http.put(url + "/_sandbox/behaviour", json=body)
    assert answer.status_code == 400 and message in answer.json()["error"]
    current = http.get(url + "/_sandbox/behaviour").json()
    assert (current["put_groups"], current["validate_phone_numbers"]) == ("replace", True)


def test_the_old_duplicates_name_still_sets_duplicate_email() -> None:
    assert Nrs360Behaviour(duplicates="allow").duplicate_email == "accept"
    assert Nrs360Behaviour().duplicate_email == "refuse"


# -- 360NRS ------------------------------------------------------------------------------------
def nrs_call(http: httpx.Client, url: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return http.request(method, url + "/api/rest" + path, headers=NRS_AUTH, **kw)


def group(http: httpx.Client, url: str, name: str) -> int:
    gid: int = nrs_call(http, url, "POST", "/groups", json={"name": name}).json()["data"]["id"]
    return gid


@pytest.mark.parametrize("reading", ["refuse", "accept"])
def test_nrs360_duplicate_email(
    http: httpx.Client, nrs: tuple[Nrs360Simulator, str], reading: str
) -> None:
    sim, url = nrs
    fresh(http, url, sim, duplicate_email=reading)
    body = {"email": "a@example.com", "groupsIds": [group(http, url, "G")]}
    assert nrs_call(http, url, "POST", "/contacts", json=body).status_code == 201
    second = nrs_call(http, url, "POST", "/contacts", json={**body, "email": "A@example.com"})
    found = nrs_call(http, url, "GET", "/contacts", params={"email": "a@example.com"}).json()
    if reading == "refuse":
        assert second.status_code == 422
        assert second.json()["error"]["description"] == "The email has already been taken."
        assert len(found["data"]) == 1
    else:
        assert second.status_code == 201 and len(found["data"]) == 2


@pytest.mark.parametrize(("reading", "expected"), [("replace", ["B"]), ("add", ["A", "B"])])
def test_nrs360_put_groups(
    http: httpx.Client, nrs: tuple[Nrs360Simulator, str], reading: str, expected: list[str]
) -> None:
    sim, url = nrs
    fresh(http, url, sim, put_groups=reading)
    a, b = group(http, url, "A"), group(http, url, "B")
    created = nrs_call(
        http, url, "POST", "/contacts", json={"email": "x@example.com", "groupsIds": [a]}
    ).json()["data"]
    body = {"email": "x@example.com", "groupsIds": [b]}
    put = nrs_call(http, url, "PUT", f"/contacts/{created['id']}", json=body)
    assert put.status_code == 200
    shown = nrs_call(http, url, "GET", f"/contacts/{created['id']}", params={"include": "groups"})
    assert sorted(g["name"] for g in shown.json()["data"]["groups"]["data"]) == expected


RATE_HEADERS = {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"}


def throttled(http: httpx.Client, url: str, call: Any) -> httpx.Response:
    """A 429 from the frame's token bucket (one request per 1000 s)."""
    http.put(url + "/_sandbox/faults", json={"rate_limit": 0.001}).raise_for_status()
    for _ in range(3):
        answer: httpx.Response = call()
        if answer.status_code == 429:
            return answer
    raise AssertionError("no 429")


@pytest.mark.parametrize(
    ("reading", "retry_after", "rate_headers"),
    [("retry_after", True, False), ("x_ratelimit", False, True), ("bare", False, False)],
)
def test_nrs360_rate_limit(
    http: httpx.Client,
    nrs: tuple[Nrs360Simulator, str],
    reading: str,
    retry_after: bool,
    rate_headers: bool,
) -> None:
    sim, url = nrs
    fresh(http, url, sim, rate_limit=reading)
    answer = throttled(http, url, lambda: nrs_call(http, url, "GET", "/groups"))
    assert ("retry-after" in answer.headers) is retry_after
    assert (set(answer.headers) >= RATE_HEADERS) is rate_headers
    assert bool(RATE_HEADERS & set(answer.headers)) is rate_headers
    assert answer.json()["error"]["code"] == 429


# -- NP6 ---------------------------------------------------------------------------------------
def np6_target(http: httpx.Client, url: str, email: str) -> None:
    answer = http.put(
        url + "/targets", params={"unicity": email}, json={"1001": email}, headers=NP6_KEY
    )
    assert answer.status_code == 200


@pytest.mark.parametrize("reading", ["empty_200", "not_found_404"])
def test_np6_unknown_delete(
    http: httpx.Client, np6: tuple[Np6Simulator, str], reading: str
) -> None:
    sim, url = np6
    fresh(http, url, sim, unknown_delete=reading)
    np6_target(http, url, "known@example.com")
    only_unknown = {"type": "unicity", "value": [["ghost@example.com"]]}
    mixed = {"type": "unicity", "value": [["known@example.com"], ["ghost@example.com"]]}
    first = http.request("DELETE", url + "/targets", json=only_unknown, headers=NP6_KEY)
    second = http.request("DELETE", url + "/targets", json=mixed, headers=NP6_KEY)
    left = http.get(url + "/targets/count", headers=NP6_KEY).json()["targetsCount"]
    if reading == "empty_200":
        assert (first.status_code, first.json()) == (200, [])
        assert second.status_code == 200 and [d["unicity"] for d in second.json()] == [
            ["known@example.com"]
        ]
        assert left == 0
    else:
        assert (first.status_code, first.content) == (404, b"")
        assert (second.status_code, left) == (404, 1)  # nothing deleted


@pytest.mark.parametrize(
    ("reading", "retry_after", "rate_headers"),
    [("retry_after", True, True), ("x_ratelimit", False, True), ("bare", False, False)],
)
def test_np6_rate_limit(
    http: httpx.Client,
    np6: tuple[Np6Simulator, str],
    reading: str,
    retry_after: bool,
    rate_headers: bool,
) -> None:
    sim, url = np6
    fresh(http, url, sim, rate_limit=reading)
    answer = throttled(http, url, lambda: http.get(url + "/fields", headers=NP6_KEY))
    assert ("retry-after" in answer.headers) is retry_after
    assert bool(RATE_HEADERS & set(answer.headers)) is rate_headers
    assert (set(answer.headers) >= RATE_HEADERS) is rate_headers
    http.put(url + "/_sandbox/faults", json={"rate_limit": 1000}).raise_for_status()
    ok = http.get(url + "/fields", headers=NP6_KEY)
    assert ok.status_code == 200 and bool(RATE_HEADERS & set(ok.headers)) is rate_headers


# -- syncer sandbox --behaviour ------------------------------------------------------------------
def test_cli_settings_reach_the_simulators() -> None:
    sims: dict[str, Any] = {"nrs360": Nrs360Simulator(), "np6": Np6Simulator()}
    apply_behaviours(
        sims,
        [
            "nrs360.duplicate_email=accept",
            "nrs360.put_groups=add",
            "np6.unknown_delete=not_found_404",
            "np6.rate_limit=bare",
            "np6.processing_seconds=0.5",
            "np6.require_import_accept=false",
        ],
    )
    assert sims["nrs360"].ctx.behaviour.duplicate_email == "accept"
    assert sims["nrs360"].behaviour.put_groups == "add"
    np6b = sims["np6"].behaviour
    assert (np6b.unknown_delete, np6b.rate_limit) == ("not_found_404", "bare")
    assert (np6b.processing_seconds, np6b.require_import_accept) == (0.5, False)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("nrs360.duplicate_email", "expected SIM.SWITCH=VALUE"),
        ("mailchimp.x=1", "unknown simulator"),
        ("np6.rate_limit=sometimes", "takes retry_after or x_ratelimit or bare"),
        ("np6.processing_seconds=soon", "takes a number"),
        ("nrs360.nope=1", "unknown switch 'nope'"),
    ],
)
def test_cli_refuses_a_bad_setting_in_one_line_and_applies_none(setting: str, message: str) -> None:
    sims: dict[str, Any] = {"nrs360": Nrs360Simulator(), "np6": Np6Simulator()}
    with pytest.raises(ValueError, match=message) as caught:
        apply_behaviours(sims, ["nrs360.put_groups=add", setting])
    assert "\n" not in str(caught.value)
    assert sims["nrs360"].behaviour.put_groups == "replace"


def test_the_command_reports_a_bad_behaviour_without_a_traceback(tmp_path: Any) -> None:
    import typer

    app = typer.Typer()
    app.command()(sandbox)
    result = CliRunner().invoke(
        app, ["--customers", "0", "--events", "0", "--behaviour", "np6.rate_limit=never"]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "Invalid value for --behaviour: np6: switch 'rate_limit' takes" in result.output
