"""A SIGKILL during an NP6 import never leads to a second import after the restart.

A child process applies a flush with the real state store (SQLite) as its ``TargetContext``
and is killed with SIGKILL while NP6 processes the import. A new process (here: this one, with
a new target over the same database) gets the same deliveries again, as the engine does when
their claim expires, finds the open job and resumes polling: one execution in NP6, all rows
done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from octopush_np6_fakes import change, settle

from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.serve import ServedApp
from syncer.targets.base import Change
from syncer.targets.np6 import JOB_KIND, ImportRunner, Np6Client, Np6Target

pytest.importorskip("syncer.engine.context", reason="needs the engine's StoreContext")
from syncer.engine.context import StoreContext
from syncer.state.store import Store

ROWS = 200

CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import httpx
    from octopush_np6_fakes import change, settle
    from syncer.engine.context import StoreContext
    from syncer.state.store import Store
    from syncer.targets.np6 import ImportRunner, Np6Client, Np6Target

    store = Store({db!r})
    http = httpx.Client(timeout=30)
    client = Np6Client(http, {url!r}, "sandbox-np6-key")
    runner = ImportRunner(client, poll_base=0.05, poll_cap=0.2, poll_timeout=120)
    target = Np6Target("np6", client, binding=1234, runner=runner)
    changes = [change(f"e{{i}}", {{"1001": f"u{{i}}@example.com", "1002": f"o{{i}}"}},
                      pipeline="orders", delivery_id=i + 1) for i in range({rows})]
    print("applying", flush=True)
    settle(target, changes, StoreContext(store, "np6"))
    print("finished", flush=True)
    """
)


def rows() -> list[Change]:
    return [
        change(
            f"e{i}",
            {"1001": f"u{i}@example.com", "1002": f"o{i}"},
            pipeline="orders",
            delivery_id=i + 1,
        )
        for i in range(ROWS)
    ]


@pytest.fixture
def served() -> Iterator[ServedApp]:
    with ServedApp(Np6Simulator().asgi()) as app:
        yield app


def sim_state(url: str) -> dict[str, object]:
    data: dict[str, object] = httpx.get(url + "/_sandbox/state", timeout=10).json()
    return data


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_during_import_then_restart_imports_once(served: ServedApp, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'state.db'}"
    Store(db).close()  # migrate once, before the child starts
    httpx.post(
        served.url + "/_sandbox/load", json={"behaviour": {"processing_seconds": 2.0}}
    ).raise_for_status()
    script = CHILD.format(tests=str(Path(__file__).parent), db=db, url=served.url, rows=ROWS)
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while sim_state(served.url)["executionCount"] == 0:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never started the import"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    store = Store(db)
    try:
        ctx = StoreContext(store, "np6")
        [job] = ctx.jobs_open(JOB_KIND)
        assert job.phase in ("uploaded", "running")
        with httpx.Client(timeout=30) as http:
            client = Np6Client(http, served.url, "sandbox-np6-key")
            runner = ImportRunner(client, poll_base=0.05, poll_cap=0.2, poll_timeout=60)
            target = Np6Target("np6", client, binding=1234, runner=runner)
            outcomes = settle(target, rows(), ctx)
        assert {o.status for o in outcomes} == {"done"}
        assert ctx.jobs_open(JOB_KIND) == []
    finally:
        store.close()
    final = sim_state(served.url)
    assert final["executionCount"] == 1
    assert len(final["targets"]) == ROWS  # type: ignore[arg-type]
