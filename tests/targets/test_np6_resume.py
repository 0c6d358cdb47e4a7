"""A resumed NP6 import job found in phase ``uploaded`` (the upload was recorded, the start
may or may not have happened) starts its execution again unless NP6 proves the last execution
is ours: its ``source`` is our upload, or it started after our upload (instants compared, not
strings). A second start of an upsert import is harmless; a skipped one loses the rows.

Against the NP6 simulator over real HTTP, in both readings of the execution object: the full
one (``source``, ``startDate``) and the 8.1.0 reference's ``{"state": n}`` only
(``np6-imports.txt``, "Get the last execution state of an import").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from octopush_np6_fakes import MemoryContext, admin, change, settle

from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.serve import ServedApp
from syncer.targets.np6 import JOB_KIND, ImportRunner, Np6Client, Np6Target
from syncer.targets.np6.importjob import ImportRunner as Runner

KEY = "sandbox-np6-key"


class Crash(Exception):
    """Stands for the process dying at a chosen point."""


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    with ServedApp(Np6Simulator().asgi()) as app:
        yield app


def http_for(served: ServedApp, body: str) -> httpx.Client:
    client = httpx.Client(timeout=10)
    client.post(served.url + "/_sandbox/reset").raise_for_status()
    behaviour = {"processing_seconds": 0.01, "execution_body": body}
    client.post(served.url + "/_sandbox/load", json={"behaviour": behaviour}).raise_for_status()
    return client


@pytest.fixture(params=["full", "state"])
def http(request: pytest.FixtureRequest, served: ServedApp) -> Iterator[httpx.Client]:
    client = http_for(served, request.param)
    try:
        yield client
    finally:
        client.close()


def make_target(served: ServedApp, http: httpx.Client) -> Np6Target:
    client = Np6Client(http, served.url, KEY)
    runner = ImportRunner(client, first_poll_base=0.03, poll_base=0.01, poll_cap=0.1)
    return Np6Target("np6", client, runner=runner, binding=1234)


def order(i: int, amount: str = "1.5") -> Any:
    return change(f"e{i}", {"1001": f"u{i}@example.com", "1002": f"o{i}", "1003": amount})


def np6_targets(served: ServedApp, http: httpx.Client) -> dict[str, Any]:
    state = admin(http, served.url + "/_sandbox/state")
    return {t["fields"]["1001"]: t["fields"] for t in state["targets"]}


def execution_count(served: ServedApp, http: httpx.Client) -> int:
    return int(admin(http, served.url + "/_sandbox/state")["executionCount"])


def test_the_simulator_answers_the_execution_as_switched(
    served: ServedApp, http: httpx.Client
) -> None:
    settle(make_target(served, http), [order(0)], MemoryContext())
    [definition] = admin(http, served.url + "/_sandbox/state")["imports"]
    last = Np6Client(http, served.url, KEY).last_execution(definition["id"])
    assert last is not None and last["state"] == 1
    body = admin(http, served.url + "/_sandbox/state")["behaviour"]["execution_body"]
    if body == "state":
        assert last == {"state": 1}
    else:
        assert {"startDate", "source", "content", "endDate"} <= set(last)


def test_a_job_resumed_between_upload_and_start_really_imports_its_rows(
    served: ServedApp, http: httpx.Client
) -> None:
    ctx = MemoryContext()
    settle(make_target(served, http), [order(0)], ctx)  # an older execution of the definition
    target = make_target(served, http)

    def dying_start(*args: Any) -> Any:
        raise Crash

    target.client.start_execution = dying_start  # type: ignore[method-assign]
    changes = [order(i, amount="7") for i in range(1, 4)]
    with pytest.raises(Crash):
        settle(target, changes, ctx)
    assert [j.phase for j in ctx.jobs_open(JOB_KIND)] == ["uploaded"]
    out = settle(make_target(served, http), changes, ctx)  # a new process, same state
    assert {o.status for o in out} == {"done"}
    found = np6_targets(served, http)
    assert {k: found.get(k, {}).get("1003") for k in ("u1@example.com", "u3@example.com")} == {
        "u1@example.com": 7,
        "u3@example.com": 7,
    }
    assert execution_count(served, http) == 2 and ctx.jobs == {}


def test_a_crash_between_start_and_its_record_starts_again_only_when_unproven(
    served: ServedApp, http: httpx.Client
) -> None:
    ctx = MemoryContext()
    real_update = ctx.job_update

    def dying_update(job_id: int, phase: str, data: dict[str, Any]) -> None:
        if phase == "running":
            raise Crash
        real_update(job_id, phase, data)

    ctx.job_update = dying_update  # type: ignore[method-assign]
    changes = [order(i) for i in range(3)]
    with pytest.raises(Crash):
        settle(make_target(served, http), changes, ctx)
    ctx.job_update = real_update  # type: ignore[method-assign]
    out = settle(make_target(served, http), changes, ctx)
    for _ in range(100):  # a restart met the first execution still processing (409): the
        if {o.status for o in out} != {"retry"}:  # engine re-queues it, as this loop does
            break
        assert all("still processing" in (o.error or "") for o in out), out
        time.sleep(0.05)
        out = settle(make_target(served, http), changes, ctx)
    assert {o.status for o in out} == {"done"}, [o.error for o in out]
    assert len(np6_targets(served, http)) == 3
    body = admin(http, served.url + "/_sandbox/state")["behaviour"]["execution_body"]
    # the source proves the execution ours: no second start; with the state alone: a second,
    # harmless start of the same upsert file
    assert execution_count(served, http) == (1 if body == "full" else 2)


UPLOAD = {"id": 5, "filename": "ab_f.csv", "updateDate": "2026-03-01T10:00:00Z"}


@pytest.mark.parametrize(
    ("execution", "ours"),
    [
        (None, False),
        ({"state": 1}, False),  # nothing to prove it: start again
        ({"state": 1, "source": {"id": 5, "filename": "ab_f.csv"}}, True),
        ({"state": 1, "source": {"id": 4, "filename": "zz_f.csv"}}, False),
        ({"state": 1, "source": {"id": 5}}, True),  # what it has, matches
        ({"state": 1, "source": {"filename": "zz_f.csv"}}, False),
        ({"state": 1, "startDate": "2026-03-01T10:00:01Z"}, True),
        ({"state": 1, "startDate": "2026-03-01T10:00:00Z"}, False),  # same second: unproven
        ({"state": 1, "startDate": "2026-03-01T09:59:59Z"}, False),
        # as strings "2026-03-01T11:30:00+02:00" >= "2026-03-01T10:00:00Z": but it is 09:30 UTC
        ({"state": 1, "startDate": "2026-03-01T11:30:00+02:00"}, False),
        ({"state": 1, "startDate": "2026-03-01T10:30:00+02:00"}, False),
        ({"state": 1, "startDate": "2026-03-01T12:00:01+02:00"}, True),
        # as strings "2026-03-01T10:00:00.5Z" < "2026-03-01T10:00:00Z": but it is later
        ({"state": 1, "startDate": "2026-03-01T10:00:00.5Z"}, True),
        ({"state": 1, "startDate": "not a date"}, False),
        ({"state": 1, "startDate": 1772359201}, False),
    ],
)
def test_ours_needs_proof(execution: dict[str, Any] | None, ours: bool) -> None:
    assert Runner._ours(execution, UPLOAD) is ours


def test_an_upload_without_a_date_proves_nothing() -> None:
    execution = {"state": 1, "startDate": "2026-03-01T10:00:01Z"}
    assert Runner._ours(execution, {"id": None, "filename": None, "updateDate": None}) is False
