"""A stop ends the waits of the source's retries at once (issue 13, defect 6: "sleeps ignore
stop"). NP6's import polls no longer wait in the target at all: a job in progress answers
``JobPending`` and its rows wait in the database (tests/targets: no ``sleep(`` in a target).

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "targets"))
from chub_kit import api, served_contacthub, source

from syncer.errors import RetryableError

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
