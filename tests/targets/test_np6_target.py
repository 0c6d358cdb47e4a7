"""The NP6 target against the NP6 simulator over real HTTP: imports, bisection, deletes,
unsubscribes, upsert mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from octopush_np6_fakes import MemoryContext, admin, by_id, change, settle

from syncer.errors import AuthError
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.serve import ServedApp
from syncer.targets.base import FlushPolicy, Known
from syncer.targets.np6 import JOB_KIND, ImportRunner, Np6Client, Np6Target

KEY = "sandbox-np6-key"


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    with ServedApp(Np6Simulator().asgi()) as app:
        yield app


@pytest.fixture
def http(served: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        client.post(served.url + "/_sandbox/reset").raise_for_status()
        load(client, served, {"behaviour": {"processing_seconds": 0.02}})
        yield client


def load(http: httpx.Client, served: ServedApp, data: dict[str, Any]) -> None:
    http.post(served.url + "/_sandbox/load", json=data).raise_for_status()


def make_target(served: ServedApp, http: httpx.Client, **kw: Any) -> Np6Target:
    client = Np6Client(http, served.url, KEY)
    # first poll 30 ms after the start: longer than the 20 ms the simulator processes here,
    # as the default first wait is longer than its default 0.2 s
    runner = ImportRunner(
        client, first_poll_base=0.03, poll_base=0.01, poll_cap=0.1, poll_timeout=30
    )
    kw.setdefault("binding", 1234)
    return Np6Target("np6", client, runner=runner, **kw)


def state(served: ServedApp, http: httpx.Client) -> dict[str, Any]:
    return admin(http, served.url + "/_sandbox/state")


def counts(served: ServedApp, http: httpx.Client) -> dict[str, int]:
    data: dict[str, int] = admin(http, served.url + "/_sandbox/requests")["counts"]
    return data


def targets(served: ServedApp, http: httpx.Client) -> dict[str, dict[str, Any]]:
    return {t["fields"]["1001"]: t["fields"] for t in state(served, http)["targets"]}


def order(i: int, amount: Any = None, **kw: Any) -> Any:
    fields = {"1001": f"u{i}@example.com", "1002": f"o{i}", "1003": amount or f"{i}.5"}
    return change(f"e{i}", fields, pipeline="orders", **kw)


def test_flush_is_one_import_and_the_definition_is_reused(
    served: ServedApp, http: httpx.Client
) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    outcomes = settle(target, [order(i) for i in range(5)], ctx)
    assert {o.status for o in outcomes} == {"done"} and outcomes[0].detail == "created"
    assert outcomes[0].target_key == "u0@example.com"
    assert targets(served, http)["u3@example.com"] == {
        "1001": "u3@example.com",
        "1002": "o3",
        "1003": 3.5,
    }
    settle(target, [order(i, amount="9") for i in range(5, 8)], ctx)
    calls = counts(served, http)
    assert calls["POST /imports"] == 1
    assert calls["PUT /imports/{id}/source"] == 2
    assert calls["POST /imports/{id}/executions"] == 2
    assert calls["GET /imports/{id}/executions"] == 2  # one poll per import: the first wait
    assert calls["GET /fields"] == 1 and calls["GET /importFormats/{id}"] == 1
    assert ctx.jobs == {} and len(ctx.finished) == 2
    assert state(served, http)["executionCount"] == 2


def test_definition_found_again_by_name_when_kv_is_lost(
    served: ServedApp, http: httpx.Client
) -> None:
    settle(make_target(served, http), [order(1)], MemoryContext())
    settle(make_target(served, http), [order(2)], MemoryContext())
    assert counts(served, http)["POST /imports"] == 1


def test_csv_follows_the_binding(served: ServedApp, http: httpx.Client) -> None:
    fmt = {
        "identifier": {"guid": 77},
        "name": "reordered",
        "separator": 44,
        "startAt": 2,
        "binds": [
            {"columnIndex": 0, "fieldId": 1010},
            {"columnIndex": 1, "fieldId": -10},
            {"columnIndex": 3, "fieldId": 1001},
        ],
    }
    load(http, served, {"formats": [fmt]})
    target, ctx = make_target(served, http, binding=77), MemoryContext()
    rows = [
        change("c1", {"1001": "a@x.com", "1010": 'Zoé, "la" grande'}),
        change("c2", {"1001": "b@x.com"}),
        change("c3", {"1001": "c@x.com", "1002": "not bound"}),
        change("c4", {"1010": "no unicity"}),
    ]
    out = settle(target, rows, ctx)
    assert [o.status for o in out] == ["done", "done", "invalid", "invalid"]
    assert "not bound" in (out[2].error or "") and "unicity" in (out[3].error or "")
    assert targets(served, http)["a@x.com"]["1010"] == 'Zoé, "la" grande'
    assert set(targets(served, http)) == {"a@x.com", "b@x.com"}


def test_failed_import_is_bisected_to_the_bad_rows(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    changes = [order(i, amount="abc" if i in (2, 13) else None) for i in range(16)]
    out = by_id(settle(target, changes, ctx))
    dead = sorted(c.entity_id for c in changes if out[c.delivery_id].status == "dead")
    assert dead == ["e13", "e2"]
    assert "state 2" in (out[changes[2].delivery_id].error or "")
    assert len(targets(served, http)) == 14
    # 1 + 2 * (depth 4 halves containing a bad row) + siblings: well under one per row
    assert state(served, http)["executionCount"] <= 1 + 2 * 2 * 4


def test_fifty_thousand_rows_are_one_import(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    assert target.flush_policy() == FlushPolicy(50_000, 60.0)
    outcomes = settle(target, [order(i) for i in range(50_000)], ctx)
    assert all(o.status == "done" for o in outcomes)
    st = state(served, http)
    assert st["executionCount"] == 1 and len(st["targets"]) == 50_000


def test_max_rows_splits_a_bigger_batch(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http, max_rows=4), MemoryContext()
    settle(target, [order(i) for i in range(10)], ctx)
    assert state(served, http)["executionCount"] == 3


def test_retry_leaves_the_job_open_and_the_next_delivery_resumes_it(
    served: ServedApp, http: httpx.Client
) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    settle(target, [order(0)], ctx)  # fields, format and definition cached
    load(http, served, {"behaviour": {"processing_seconds": 0.5}})
    target.runner.poll_timeout = 0.05
    changes = [order(i) for i in range(1, 4)]
    first = settle(target, changes, ctx)
    assert {o.status for o in first} == {"retry"}
    [job] = ctx.jobs_open(JOB_KIND)
    assert job.phase == "running" and job.data["ids"] == [c.delivery_id for c in changes]
    target.runner.poll_timeout = 30
    second = settle(target, changes, ctx)
    assert {o.status for o in second} == {"done"}
    assert state(served, http)["executionCount"] == 2 and ctx.jobs == {}


def test_newer_rows_wait_while_an_older_import_cannot_be_finished(
    served: ServedApp, http: httpx.Client
) -> None:
    """Regression (chaos suite): an older job of the pipeline could not be finished (its
    poll got a 5xx) and the newer rows of the batch were imported anyway: before the older
    rows (the older order of a customer won) and while NP6 still processed the older
    execution (409, and the rows went dead). They now wait for the older job."""
    target, ctx = make_target(served, http), MemoryContext()
    settle(target, [order(0)], ctx)  # fields, format and definition cached
    load(http, served, {"behaviour": {"processing_seconds": 0.5}})
    target.runner.poll_timeout = 0.05
    older = [order(1), order(2)]
    assert {o.status for o in settle(target, older, ctx)} == {"retry"}  # still processing
    newer = order(3)
    out = by_id(settle(target, [newer], ctx))  # the older job is still processing
    assert out[newer.delivery_id].status == "retry"
    assert state(served, http)["executionCount"] == 2
    target.runner.poll_timeout = 30
    out = by_id(settle(target, [*older, newer], ctx))
    assert {o.status for o in out.values()} == {"done"}
    assert state(served, http)["executionCount"] == 3 and ctx.jobs == {}


def test_a_start_refused_while_an_execution_processes_is_retried_not_dead(
    served: ServedApp, http: httpx.Client
) -> None:
    """Regression (chaos suite): 409 on ``POST /imports/{id}/executions`` (an execution of
    the definition is still processing) made every row of the import dead."""
    target, ctx = make_target(served, http), MemoryContext()
    settle(target, [order(0)], ctx)
    load(http, served, {"behaviour": {"processing_seconds": 0.5}})
    [definition] = state(served, http)["imports"]
    client = Np6Client(http, served.url, KEY)
    client.upload_source(definition["id"], b"email;orderId\nx@example.com;o\n", "other.csv")
    client.start_execution(definition["id"], 1234)  # someone else's execution is processing
    out = settle(target, [order(1)], ctx)
    assert [o.status for o in out] == ["retry"]
    assert "still processing" in (out[0].error or "")


class Crash(Exception):
    """Stands for the process dying at a chosen point."""


def test_crash_between_start_and_its_record_never_starts_twice(
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
    assert [j.phase for j in ctx.jobs_open(JOB_KIND)] == ["uploaded"]
    ctx.job_update = real_update  # type: ignore[method-assign]
    out = settle(make_target(served, http), changes, ctx)  # a new process, same state
    assert {o.status for o in out} == {"done"}
    assert state(served, http)["executionCount"] == 1


def test_crash_before_upload_uploads_again(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    real_upload = target.client.upload_source

    def dying_upload(*args: Any) -> Any:
        raise Crash

    target.client.upload_source = dying_upload  # type: ignore[method-assign]
    changes = [order(i) for i in range(3)]
    with pytest.raises(Crash):
        settle(target, changes, ctx)
    target.client.upload_source = real_upload  # type: ignore[method-assign]
    newer = order(9)
    out = by_id(settle(make_target(served, http), [*changes, newer], ctx))
    assert {o.status for o in out.values()} == {"done"}
    assert state(served, http)["executionCount"] == 2  # the crashed job's file, then the new
    assert len(targets(served, http)) == 4


def test_deletes_unsubscribes_and_leaves(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    out = settle(target, [order(i) for i in range(4)], ctx)
    known = [Known(target_key=o.target_key) for o in out]
    delete = [
        change(f"e{i}", None, action="delete", on_delete="delete", known=known[i]) for i in (0, 1)
    ]
    unsub = change("e2", None, action="delete", on_delete="unsubscribe", known=known[2])
    leave = change("e3", None, action="leave", known=known[3])
    never = change("e9", None, action="delete", on_delete="delete")
    http.delete(served.url + "/_sandbox/requests")
    result = by_id(settle(target, [*delete, unsub, leave, never], ctx))
    assert [result[c.delivery_id].detail for c in delete] == ["deleted", "deleted"]
    assert result[delete[0].delivery_id].forget
    assert result[unsub.delivery_id].detail == "unsubscribed"
    assert result[leave.delivery_id].detail == "left" and result[never.delivery_id].forget
    assert set(targets(served, http)) == {"u2@example.com", "u3@example.com"}
    redlist = state(served, http)["redlist"]
    assert sorted(e["channel"] for e in redlist) == ["mail", "sms"]
    calls = counts(served, http)
    assert calls["DELETE /targets"] == 1 and calls["GET /targets"] == 1


def test_upsert_mode(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http, mode="upsert"), MemoryContext()
    assert target.per_record and target.flush_policy() is None
    [created] = settle(target, [order(1)], ctx)
    assert created.status == "done" and created.target_id and created.detail == "created"
    [bad] = settle(target, [order(2, amount="abc")], ctx)
    assert bad.status == "dead" and "400" in (bad.error or "")
    assert counts(served, http).get("POST /imports") is None


def test_rate_limit_and_auth(served: ServedApp, http: httpx.Client) -> None:
    target, ctx = make_target(served, http), MemoryContext()
    http.put(served.url + "/_sandbox/faults", json={"outage": True}).raise_for_status()
    [down] = settle(target, [order(1)], ctx)
    assert down.status == "retry"
    http.put(served.url + "/_sandbox/faults", json={}).raise_for_status()
    bad = Np6Target("np6", Np6Client(http, served.url, "wrong"), binding=1234)
    with pytest.raises(AuthError):
        bad.check()
