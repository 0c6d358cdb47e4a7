"""``syncer run`` as a real process: SIGTERM, the SQLite single-process rule, health, and the
single polling leader on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import ENV, NEVER, STREAM, served_contacthub, write_config

SYNCER = str(Path(sys.executable).with_name("syncer"))


def start(cfg: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **ENV, "SYNCER_CONFIG": str(cfg)}
    return subprocess.Popen(
        [SYNCER, "--log-json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "SYNCER_CONFIG": str(cfg)}
    return subprocess.run([SYNCER, *args], env=env, capture_output=True, text=True, timeout=60)


def offset(url: str) -> int:
    """The committed offset (0 before the daemon created the tables)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                text('SELECT "offset" FROM checkpoints WHERE stream = :s'), {"s": STREAM}
            ).scalar()
    except DBAPIError:
        value = 0
    finally:
        engine.dispose()
    return int(value or 0)


def wait_for(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_sigterm_exits_0_with_work_committed_and_health_follows(
    sqlite_url: str, tmp_path: Path
) -> None:
    with served_contacthub() as (sim, served):
        sim.load({"generate": {"customers": 3000, "events": 0, "seed": 2}})
        docs = sim.dump_state()["customers"]
        sim.reset()
        sim.load({"customers": docs, "append_updates": True})
        sim.faults.set_plan(type(sim.faults.plan)(latency_ms=30))
        cfg = write_config(tmp_path, served.url, sqlite_url, pipelines=NEVER, page_size=100)
        assert run_cli(cfg, "health").returncode == 3  # no state database: health creates none
        assert run_cli(cfg, "db", "upgrade").returncode == 0
        assert run_cli(cfg, "health").returncode == 1  # nothing ran yet
        proc = start(cfg, "run")
        wait_for(lambda: offset(sqlite_url) > 0)
        # a second process on the same SQLite database is refused with a clear message
        second = run_cli(cfg, "run")
        assert second.returncode == 3 and "SQLite supports one syncer process" in second.stderr
        wait_for(lambda: run_cli(cfg, "health").returncode == 0, timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)  # a hang guard
        assert proc.returncode == 0, err[-2000:]
        committed = offset(sqlite_url)
        engine = create_engine(sqlite_url)
        with engine.connect() as conn:
            inbox = conn.execute(text("SELECT COUNT(*) FROM inbox")).scalar_one()
            lease = conn.execute(text("SELECT lease_owner FROM checkpoints")).scalar()
            run = conn.execute(text("SELECT status FROM runs WHERE kind = 'daemon'")).scalar()
        engine.dispose()
        assert inbox == committed  # every committed page is in the inbox, nothing half-done
        assert lease is None and run == "ok"
        status = run_cli(cfg, "status", "--json")
        data = json.loads(status.stdout)
        assert data["source"]["offset"] == committed
        assert data["source"]["lag"] == 3000 - committed


def _poll_windows(err: str) -> list[tuple[float, float]]:
    windows = []
    for line in err.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event_kind") == "poll_end":
            windows.append((event["started"], event["at"]))
    return windows


@pytest.mark.postgres
def test_two_daemons_on_postgresql_never_both_poll(pg_url: str, tmp_path: Path) -> None:
    with served_contacthub() as (sim, served):
        sim.load({"generate": {"customers": 2000, "events": 0, "seed": 3}})  # 20 pages
        docs = sim.dump_state()["customers"]
        sim.reset()
        sim.load({"customers": docs, "append_updates": True})
        sim.faults.set_plan(type(sim.faults.plan)(latency_ms=150))
        cfg = write_config(tmp_path, served.url, pg_url, pipelines=NEVER, page_size=100)
        first = start(cfg, "run")
        wait_for(lambda: offset(pg_url) > 0)
        second = start(cfg, "run")
        time.sleep(2.0)  # both run; the first still polls (20 pages at >= 150 ms)
        first.send_signal(signal.SIGTERM)  # the follower takes over once the lease is free
        _, err_first = first.communicate(timeout=40)
        more = sim.dump_state()["customers"][:50]
        sim.load({"customers": [{**c, "version": 7} for c in more], "append_updates": True})
        wait_for(lambda: offset(pg_url) == 2050, timeout=60)  # only the follower is left
        second.send_signal(signal.SIGTERM)
        _, err_second = second.communicate(timeout=40)
        assert first.returncode == 0 and second.returncode == 0, err_second[-2000:]
        a, b = _poll_windows(err_first), _poll_windows(err_second)
        assert a and b, "both processes must have polled, one after the other"
        for s1, e1 in a:
            for s2, e2 in b:
                assert e1 <= s2 or e2 <= s1, "two processes polled at the same time"
