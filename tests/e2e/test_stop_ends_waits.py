"""A stop ends the waits of the source's retries and of NP6's import polls at once (issue 13,
defect 6: "sleeps ignore stop").

Real simulators over HTTP; the stop event records when a wait begins on it, so the stop is set
*during* the wait, never before it, and the checks are on what happened (calls made, what was
raised, the job left open), not on how long anything took.

Sources: Contacthub answering 503 is the sandbox's outage fault (docs/sandbox.md, "Faults");
NP6 keeps an execution ``running`` (state 0) until it is processed (DIGEST 4, executions;
the simulator's ``processing_seconds``, a choice).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "targets"))
from chub_kit import api, served_contacthub, source
from octopush_np6_fakes import MemoryContext, change

from syncer.engine.context import CallContext
from syncer.errors import RetryableError
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.serve import ServedApp
from syncer.targets.np6 import JOB_KIND, ImportRunner, Np6Client, Np6Target

NP6_KEY = "sandbox-np6-key"


class WatchedStop(threading.Event):
    """A stop event that tells when somebody starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self.waiting.set()
        return super().wait(timeout)


def _in_thread(work: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = work()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _stop_during_the_wait(stop: WatchedStop, thread: threading.Thread) -> None:
    assert stop.waiting.wait(30), "no wait began"  # hang guards, not speed limits
    stop.set()
    thread.join(30)
    assert not thread.is_alive(), "the wait ignored the stop"


def test_a_stop_during_a_contacthub_retry_wait_ends_the_call_without_another_attempt() -> None:
    requests: list[httpx.Request] = []
    with served_contacthub() as (_sim, served):
        api(served).put("/_sandbox/faults", json={"outage": True}).raise_for_status()
        stop = WatchedStop()
        client = source(served, stop=stop, backoff_base=600.0, backoff_cap=600.0)
        client.http.event_hooks["request"].append(requests.append)
        thread, out = _in_thread(lambda: client.updates(0, 10))
        _stop_during_the_wait(stop, thread)
        client.http.close()
    assert isinstance(out.get("error"), RetryableError), out
    assert "503" in str(out["error"])
    assert stop.waits and stop.waits[0] is not None and stop.waits[0] >= 300  # a long backoff
    assert len(requests) == 1  # woken by the stop: no second attempt


@pytest.fixture
def np6() -> Any:
    with ServedApp(Np6Simulator(api_key=NP6_KEY).asgi()) as app, httpx.Client(timeout=10) as http:
        # an execution stays running for 10 minutes: only the stop can end the poll wait
        load = {"behaviour": {"processing_seconds": 600}}
        http.post(app.url + "/_sandbox/load", json=load).raise_for_status()
        yield app, http


def test_a_stop_during_an_np6_poll_wait_ends_the_call_and_leaves_the_job_open(np6: Any) -> None:
    served, http = np6
    client = Np6Client(http, served.url, NP6_KEY)
    # poll waits of the real clock (no injected sleep): the longest first wait there is
    runner = ImportRunner(client, first_poll_base=60.0, first_poll_per_row=0.0, poll_cap=60.0)
    target = Np6Target("np6", client, runner=runner, binding=1234)
    memory, stop = MemoryContext(), WatchedStop()
    call = CallContext(memory, [], stop)
    fields = {"1001": "u1@example.com", "1002": "o1"}
    thread, out = _in_thread(lambda: target.apply([change("e1", fields, pipeline="orders")], call))
    _stop_during_the_wait(stop, thread)
    assert "error" not in out, out
    [outcome] = out["value"]
    assert outcome.status == "retry" and "still processing at stop" in (outcome.error or "")
    [job] = memory.jobs_open(JOB_KIND)
    assert job.phase == "running"  # resumed by the next delivery of its rows, not re-imported
    assert stop.waits[0] == pytest.approx(runner.first_wait(1)) and runner.first_wait(1) >= 5
