"""Two ``syncer run`` replicas on one PostgreSQL database, SIGKILLed in turn while Contacthub
churns and the targets fail now and then (5% 5xx, 3% answers lost after the write): the
multi-replica promise (docs/operations.md, "Several replicas on PostgreSQL").

The four simulators run in this process (``tests/chaos/workload.py``); the replicas are real
subprocesses with one config (all three target types) and one state database. 360NRS is
switched to accept duplicate e-mails (``duplicate_email=accept``, docs/sandbox.md), so two
replicas creating the same customer would leave two contacts instead of a 422. While the
churn writes (creates, updates, consent and tag changes, deletes, orders), one replica or
the other is SIGKILLed and restarted, several times; both keep claiming and delivering, one
of them polls. After the churn stops, the two replicas drain the backlog on their own (no
final ``sync --once`` to tidy up), stop cleanly on SIGTERM, and every target must hold exactly
what :func:`~workload.expected_state` folds from the data set and the journal: each customer
once, with its latest data, the deleted ones absent.

Only counts and end states are asserted; the kill times (seeded) vary with the machine's
speed, the checks do not.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from syncer.state import db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))
from workload import (
    WS,
    Churn,
    Sims,
    build_dataset,
    churning,
    compare,
    expected_state,
    load_contacthub,
    seed,
    sigkill,
    start_daemon,
    write_config,
)

pytestmark = pytest.mark.postgres
KILLS = 4  # two each; every restart costs a start-up (seconds on a busy machine)
RUN_ID = re.compile(r"daemon-[0-9a-f]{12}")


class Replica:
    """One slot of the pair: the processes it ran, one log file each."""

    def __init__(self, name: str, config: Path, tmp_path: Path) -> None:
        self.name, self.config, self.tmp_path = name, config, tmp_path
        self.runs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> None:
        log = self.tmp_path / f"replica-{self.name}-{len(self.runs)}.log"
        self.runs.append((start_daemon(self.config, log), log))

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.runs[-1][0]

    def wait_started(self) -> None:
        """Until the current process has started its daemon (a hang guard, not a limit)."""
        proc, log = self.runs[-1]
        deadline = time.monotonic() + 60
        while "daemon started" not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"replica {self.name} ended ({proc.returncode}): {log}"
            assert time.monotonic() < deadline, f"replica {self.name} did not start: {log}"
            time.sleep(0.05)

    def run_ids(self) -> set[str]:
        return {m for _, log in self.runs for m in RUN_ID.findall(log.read_text(errors="replace"))}

    def kill_all(self) -> None:
        for proc, _ in self.runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _open_work(url: str, stream_end: int) -> dict[str, int]:
    """What is left to do: rows not done nor dead, open NP6 jobs, unread stream entries."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT count(*) FROM deliveries WHERE state NOT IN ('done', 'dead')")
            ).scalar_one()
            jobs = conn.execute(text("SELECT count(*) FROM target_jobs")).scalar_one()
            offset = conn.execute(text('SELECT max("offset") FROM checkpoints')).scalar()
    finally:
        engine.dispose()
    return {"rows": rows, "jobs": jobs, "unread": stream_end - int(offset or 0)}


def test_two_replicas_sigkilled_in_turn_end_in_the_exact_state(tmp_path: Path, pg_url: str) -> None:
    s = seed(95)
    rng = random.Random(s)
    data, evts = build_dataset(300, 600, s)
    with Sims(np6_processing=0.5, ch_latency_ms=10) as sims:
        nrs = sims.url("nrs360") + "/_sandbox/behaviour"
        httpx.put(nrs, json={"duplicate_email": "accept"}, timeout=10).raise_for_status()
        assert httpx.get(nrs, timeout=10).json()["duplicate_email"] == "accept"
        load_contacthub(sims.url("contacthub"), data, evts)
        # faults too: a lost answer to a create is where a careless re-send doubles a contact
        for i, name in enumerate(("nrs360", "octopush", "np6")):
            sims.faults(name, error_rate=0.05, lost_response_rate=0.03, seed=s + i)
        config, _ = write_config(tmp_path, sims, page_size=100, state_url=pg_url)
        engine = db.create_state_engine(pg_url)
        db.upgrade(engine)  # what `syncer db upgrade` does once before a rolling start
        engine.dispose()
        replicas = {n: Replica(n, config, tmp_path) for n in ("a", "b")}
        churn = Churn(sims.url("contacthub"), data, evts, s, rate=10.0)
        killed: list[str] = []
        try:
            for replica in replicas.values():
                replica.start()
            with churning(churn):
                for n in range(KILLS):
                    # one replica, then the other: each kill hits a running daemon while the
                    # one killed before is starting again
                    name = "ab"[n % 2]
                    replicas[name].wait_started()
                    time.sleep(rng.uniform(0.3, 1.5))
                    ended = sigkill(replicas[name].proc)
                    assert ended is None, f"replica {name} ended by itself ({ended}), kill {n}"
                    killed.append(name)
                    replicas[name].start()
            end = sims.contacthub.workspaces[WS].updates.last_offset(None, None)
            # the replicas drain on their own; the wait is a hang guard, not a speed limit
            deadline = time.monotonic() + 120
            left = _open_work(pg_url, end)
            while any(left.values()) and time.monotonic() < deadline:
                for name, replica in replicas.items():
                    assert replica.proc.poll() is None, f"replica {name} died: see its log"
                time.sleep(0.5)
                left = _open_work(pg_url, end)
            assert not any(left.values()), f"the replicas did not drain: {left}"
            for replica in replicas.values():
                replica.wait_started()  # a SIGTERM during start-up is not a clean stop
                replica.proc.send_signal(signal.SIGTERM)
            codes = {n: r.proc.wait(timeout=60) for n, r in replicas.items()}
        finally:
            for replica in replicas.values():
                replica.kill_all()
        want = expected_state(data, evts, churn.journal)
        problems = compare(sims, want)
        if problems:  # the evidence next to the logs
            for name in ("nrs360", "octopush", "np6"):
                (tmp_path / f"{name}.json").write_text(json.dumps(sims.state(name)))
            sims.dump_calls(tmp_path)
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        dead = conn.execute(text("SELECT count(*) FROM deliveries WHERE state = 'dead'")).scalar()
        delivered_by = set(
            conn.execute(
                text("SELECT DISTINCT run_id FROM delivery_log WHERE outcome != 'released'")
            ).scalars()
        )
    engine.dispose()
    print(f"kills: {killed}; {len(churn.journal)} churn writes")
    assert codes == {"a": 0, "b": 0}, "a replica did not stop cleanly on SIGTERM"
    assert problems == [], "\n".join(problems)
    assert dead == 0
    assert killed == ["a", "b"] * (KILLS // 2)
    # no live claim was ever taken from a running replica: an outcome is dropped as a lost
    # claim's only when the claim expired under a call outliving its lease (none here), so a
    # line saying so means two replicas held one customer at once
    dropped = [
        log.name
        for replica in replicas.values()
        for _, log in replica.runs
        if "outcomes of lost claims dropped" in log.read_text(errors="replace")
    ]
    assert dropped == [], f"claims taken from a live replica: see {dropped}"
    # both slots delivered: the end state is the work of two replicas, not one
    for name, replica in replicas.items():
        assert replica.run_ids() & delivered_by, f"replica {name} delivered nothing"
