"""Crash anywhere: ``syncer run`` SIGKILLed at random moments while the workload churns.

The four simulators run in this process (each behind a :class:`~workload.Tap`); syncer runs as
a real subprocess (``syncer run``, SQLite state) with one config holding all three target
types. While :class:`~workload.Churn` keeps writing to Contacthub (creates, updates, deletes,
consent and tag changes that move customers between groups and lists, moves to new countries
that make new groups and lists appear, orders), the daemon is started and SIGKILLed again and
again. Most kills come after a random delay; some are aimed, so every phase is hit:

* ``group``: 360NRS applied a ``POST /groups`` (or Octopush a ``contact-list/create``) and its
  answer is held back: the kill lands between the target's write and syncer hearing of it;
* ``np6``: an NP6 import execution was started and is processing (1.5 s): the kill lands while
  syncer polls it.

Where each kill landed is classified from the calls in flight at the kill (the taps), and from
the state DB afterwards (an open NP6 job in phase ``running``); the test asserts the kills
covered ingest, delivery, NP6 import polling and group creation. After the loop the churn
stops, ``syncer sync --once`` drains, and every target must hold exactly the state
:func:`~workload.expected_state` folds from the data set and the churn journal.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from workload import (
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
    sync_once,
    write_config,
)

PHASES = ("ingest", "delivery", "np6_polling", "group_creation")
RECENT = 0.25  # a call answered this many seconds before the kill still counts as "in it"


def _where(sims: Sims) -> set[str]:
    """The phases the daemon is in right now, from the calls the simulators see."""
    taps = sims.taps
    found = set()
    if taps["contacthub"].in_flight("/updates", within=RECENT):
        found.add("ingest")
    if (
        taps["nrs360"].in_flight("/api/rest/", within=RECENT)
        or taps["octopush"].in_flight("/v1/public/", within=RECENT)
        or taps["np6"].in_flight("/imports/", within=RECENT)
        or taps["np6"].in_flight("/targets", within=RECENT)
    ):
        found.add("delivery")
    if taps["nrs360"].in_flight("POST /api/rest/groups") or taps["octopush"].in_flight(
        "POST /v1/public/contact-list/create"
    ):
        found.add("group_creation")
    return found


def _open_np6_jobs(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        try:
            rows = conn.execute("SELECT phase FROM target_jobs WHERE target = 'np6'").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []
    return [r[0] for r in rows]


def _aim(sims: Sims, mode: str, rng: random.Random, started: float) -> str:
    """Wait for the moment to kill; returns what was actually waited for."""
    if mode == "group":
        sims.taps["nrs360"].hold("POST /api/rest/groups", 5.0)
        sims.taps["octopush"].hold("POST /v1/public/contact-list/create", 5.0)
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            if sims.taps["nrs360"].held.is_set() or sims.taps["octopush"].held.is_set():
                time.sleep(0.05)  # the answer is held: the process waits for it
                return "group"
            time.sleep(0.01)
        return "random"
    if mode == "np6":
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            if [c for c in sims.taps["np6"].in_flight("POST /imports/") if c.started > started]:
                time.sleep(rng.uniform(0.3, 1.0))  # the import processes for 1.5 s
                return "np6"
            if [
                c
                for c in sims.taps["np6"].calls[-50:]
                if c.method == "POST" and c.path.endswith("/executions") and c.started > started
            ]:
                time.sleep(rng.uniform(0.3, 1.0))
                return "np6"
            time.sleep(0.01)
        return "random"
    time.sleep(rng.uniform(0.7, 2.4))  # start-up is ~0.8 s
    return "random"


def run_crash_loop(
    tmp_path: Path,
    *,
    customers: int,
    events: int,
    kills: int,
    churn_rate: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    data, evts = build_dataset(customers, events, seed)
    modes = ["group" if n % 6 == 0 else "np6" if n % 6 == 3 else "random" for n in range(kills)]
    with Sims(np6_processing=1.5, ch_latency_ms=15) as sims:
        load_contacthub(sims.url("contacthub"), data, evts)
        config, _ = write_config(tmp_path, sims, page_size=100)
        db = tmp_path / "state.db"
        log = tmp_path / "syncer.log"
        landed: list[dict[str, Any]] = []
        churn = Churn(sims.url("contacthub"), data, evts, seed, rate=churn_rate)
        t0 = time.monotonic()
        with churning(churn):
            for n in range(kills):
                started = time.monotonic()
                proc = start_daemon(config, log)
                aimed = _aim(sims, modes[n], rng, started)
                phases = _where(sims)
                ended = sigkill(proc)
                for tap in sims.taps.values():
                    tap.disarm()
                assert ended is None, f"syncer run ended by itself ({ended}) before kill {n}"
                jobs = _open_np6_jobs(db)
                if "running" in jobs or (aimed == "np6" and "uploaded" in jobs):
                    phases.add("np6_polling")
                landed.append(
                    {"kill": n, "aimed": aimed, "after": round(time.monotonic() - started, 2)}
                    | {"phases": sorted(phases), "np6_jobs": jobs}
                )
        loop_seconds = time.monotonic() - t0
        (tmp_path / "kills.json").write_text(json.dumps(landed, indent=1))
        done = sync_once(config)
        want = expected_state(data, evts, churn.journal)
        problems = compare(sims, want)
        if problems:  # keep the evidence next to the state DB and the log
            for name in ("nrs360", "octopush", "np6"):
                (tmp_path / f"{name}.json").write_text(json.dumps(sims.state(name)))
            sims.dump_calls(tmp_path)
    covered = Counter(p for k in landed for p in k["phases"])
    print(  # shown with -s / on failure: where the kills landed
        f"{kills} kills in {loop_seconds:.0f} s, {len(churn.journal)} churn writes; "
        f"phases hit: {dict(covered)}"
    )
    for kill in landed:
        print(kill)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert problems == [], "\n".join(problems)
    assert all(covered[p] for p in PHASES), f"kills missed a phase: {dict(covered)}"


def test_thirty_kills_anywhere_end_in_the_exact_state(tmp_path: Path) -> None:
    run_crash_loop(tmp_path, customers=800, events=1_500, kills=30, churn_rate=12.0, seed=seed(91))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_forty_kills_5000_customers_10000_events(tmp_path: Path) -> None:
    run_crash_loop(
        tmp_path, customers=5_000, events=10_000, kills=40, churn_rate=25.0, seed=seed(92)
    )
