"""Faults: the crash suite's workload against targets that fail the way real APIs do.

Every target answers 10% of its calls with a 5xx, applies 5% and then loses the answer (the
connection drops mid-body), and enforces a request rate with 429 + ``Retry-After`` (syncer's own
limit is set at twice that, so it meets the 429s). In the middle of the run 360NRS goes
into a full outage (503 on everything) for 20 s in CI, two minutes in the slow variant.

``syncer run`` runs as a subprocess the whole time while the churn writes to Contacthub at a
steady pace. The test samples the state DB every half second (rows ``done`` per target) and
checks, measured:

* while 360NRS is down, Octopush and NP6 keep delivering and 360NRS does not (in the slow
  variant, `make chaos`, at least half of the rate measured just before the outage: a rate
  comparison has no place in `make test`, which a loaded machine must pass);
* after the outage 360NRS catches up (its open rows drain);
* the daemon stops cleanly on SIGTERM, a final ``sync --once`` exits 0, and every target holds
  exactly the state :func:`~workload.expected_state` computes.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from workload import (
    Churn,
    Sims,
    build_dataset,
    compare,
    expected_state,
    load_contacthub,
    seed,
    start_daemon,
    sync_once,
    write_config,
)

TARGETS = ("nrs", "octo", "np6")
LIMITS = {"nrs": 100.0, "octo": 2.0, "np6": 4.0}  # requests/s each simulator allows
SIM = {"nrs": "nrs360", "octo": "octopush", "np6": "np6"}


def _counts(db: Path) -> dict[str, dict[str, int]]:
    """Rows per target: ``done`` and ``open`` (pending, failed, in flight)."""
    out = {t: {"done": 0, "open": 0} for t in TARGETS}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT target, state = 'done', count(*) FROM deliveries "
            "WHERE state != 'dead' GROUP BY target, state = 'done'"
        ).fetchall()
    for target, done, n in rows:
        out[target]["done" if done else "open"] += n
    return out


class Sampler:
    """``(t, counts)`` every ``every`` seconds while :meth:`run_for` waits."""

    def __init__(self, db: Path, every: float = 0.5) -> None:
        self.db, self.every = db, every
        self.t0 = time.monotonic()
        self.wall0 = time.time()  # delivery_log times are the database's (wall) clock
        self.samples: list[tuple[float, dict[str, dict[str, int]]]] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def sample(self) -> dict[str, dict[str, int]]:
        counts = _counts(self.db)
        self.samples.append((self.now(), counts))
        return counts

    def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sample()
            time.sleep(self.every)

    def run_until(self, ok: object, limit: float) -> float:
        """Sample until ``ok(counts)`` or ``limit`` seconds; the time it took."""
        start = time.monotonic()
        while time.monotonic() - start < limit:
            if ok(self.sample()):  # type: ignore[operator]
                break
            time.sleep(self.every)
        return time.monotonic() - start

    def done_between(self, target: str, start: float, end: float) -> int:
        inside = [c for t, c in self.samples if start <= t <= end]
        return inside[-1][target]["done"] - inside[0][target]["done"]

    def writes_between(self, target: str, start: float, end: float) -> int:
        """Outcomes that say the target took a write (rows done without a call, such as the
        changes a delete superseded or unchanged records, do not count)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM delivery_log WHERE target = ? AND at BETWEEN ? AND ? "
                    "AND outcome IN ('created', 'updated', 'left', 'deleted')",
                    (target, self.wall0 + start, self.wall0 + end),
                ).fetchone()[0]
            )


def run_faults(
    tmp_path: Path,
    *,
    customers: int,
    events: int,
    outage: float,
    churn_rate: float,
    compare_rates: bool = False,
    seed: int,
) -> None:
    data, evts = build_dataset(customers, events, seed)
    with Sims(np6_processing=0.5) as sims:
        load_contacthub(sims.url("contacthub"), data, evts)
        for i, (target, sim) in enumerate(SIM.items()):
            sims.faults(
                sim, error_rate=0.1, lost_response_rate=0.05, rate_limit=LIMITS[target], seed=i
            )
        config, _ = write_config(
            tmp_path,
            sims,
            page_size=500,
            rate_limits={t: LIMITS[t] * 2 for t in TARGETS},
            max_attempts=100,
        )
        db = tmp_path / "state.db"
        log = tmp_path / "syncer.log"
        churn = Churn(sims.url("contacthub"), data, evts, seed, rate=churn_rate)
        daemon = start_daemon(config, log)
        sampler = Sampler(db)
        try:
            while not db.exists() or sampler.now() < 2:
                time.sleep(0.2)
            churn.start()
            # warm-up: the initial backlog drains
            warm_up = sampler.run_until(
                lambda c: all(c[t]["open"] < 40 for t in TARGETS), limit=max(60.0, customers / 25)
            )
            base_start = sampler.now()
            sampler.run_for(min(max(10.0, outage / 4), 30.0))  # NP6 delivers in bursts
            base_end = sampler.now()
            sims.faults("nrs360", outage=True)
            out_start = sampler.now()
            sampler.run_for(outage)
            out_end = sampler.now()
            sims.faults(
                "nrs360", error_rate=0.1, lost_response_rate=0.05, rate_limit=LIMITS["nrs"], seed=9
            )
            # NP6 makes ~3 calls per import (its first poll waits for the file), which stays
            # under the 4/s bucket: a tighter one while the others catch up makes it meet 429s
            sims.faults("np6", error_rate=0.1, lost_response_rate=0.05, rate_limit=1.0, seed=10)
            catch_up = sampler.run_until(lambda c: c["nrs"]["open"] < 40, limit=90 + outage)
            churn.stop()
            drain = sampler.run_until(lambda c: all(c[t]["open"] == 0 for t in TARGETS), limit=60)
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            churn.stop()
        done = sync_once(config)
        want = expected_state(data, evts, churn.journal)
        problems = compare(sims, want)
        statuses = {
            sim: sims.taps[sim].calls
            and {
                s: sum(1 for c in sims.taps[sim].calls if c.status == s)
                for s in {c.status for c in sims.taps[sim].calls}
            }
            for sim in SIM.values()
        }
        if problems:
            for name in SIM.values():
                (tmp_path / f"{name}.json").write_text(json.dumps(sims.state(name)))
            sims.dump_calls(tmp_path)
    (tmp_path / "samples.json").write_text(json.dumps(sampler.samples))
    base = base_end - base_start
    settle = min(3.0, outage / 4)  # calls in flight when the outage began
    rates = {
        t: (
            sampler.done_between(t, base_start, base_end) / base,
            sampler.done_between(t, out_start + settle, out_end) / (out_end - out_start - settle),
        )
        for t in TARGETS
    }
    print(
        f"rows done per second before / during the 360NRS outage: "
        f"{ {t: (round(a, 1), round(b, 1)) for t, (a, b) in rates.items()} }; "
        f"warm-up {warm_up:.1f} s, 360NRS caught up in {catch_up:.1f} s, drained in "
        f"{drain:.1f} s; {len(churn.journal)} churn writes; "
        f"answers by status: {statuses}"
    )
    assert code == 0, "syncer run did not stop cleanly on SIGTERM"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert problems == [], "\n".join(problems)
    half = out_start + (out_end - out_start) / 2
    for target in ("octo", "np6"):
        before, during = rates[target]
        # counts, not speeds, in `make test` (a loaded machine must pass): the other targets
        # keep delivering during the outage; the rate comparison is for `make chaos`
        assert sampler.done_between(target, out_start + settle, out_end) > 0, rates
        if compare_rates:
            assert before > 0, f"{target}: nothing delivered before the outage"
            assert during >= 0.5 * before, f"{target} slowed down during the outage: {rates}"
    assert sampler.writes_between("nrs", half, out_end) == 0, (
        f"360NRS delivered while down: {rates}"
    )
    if compare_rates:
        before, during = rates["nrs"]
        assert during <= 0.1 * before, f"360NRS delivered during its outage: {rates}"
    for sim in SIM.values():  # every kind of fault was met
        seen = statuses[sim] or {}
        assert seen.get(429) and any(s in seen for s in (500, 502, 503)), (sim, seen)


def test_faults_and_a_20s_outage_end_in_the_exact_state(tmp_path: Path) -> None:
    run_faults(tmp_path, customers=800, events=1_500, outage=20.0, churn_rate=15.0, seed=seed(93))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_faults_and_a_2_minute_outage_5000_customers(tmp_path: Path) -> None:
    run_faults(
        tmp_path,
        customers=5_000,
        events=10_000,
        outage=120.0,
        churn_rate=25.0,
        seed=seed(94),
        compare_rates=True,
    )
