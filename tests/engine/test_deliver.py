"""The delivery engine against the 360NRS simulator over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
import structlog.testing
from deliver_helpers import (
    Feed,
    admin,
    config,
    emails,
    nrs_target,
    person,
    pipeline,
)
from sqlalchemy import select

from syncer.engine.deliver import Deliverer
from syncer.engine.planner import plan_pending
from syncer.state import delivery_ops as ops
from syncer.state import dlq_ops
from syncer.state.schema import claims, deliveries
from syncer.state.store import Store
from syncer.targets.base import Change, Outcome, TargetContext


def states(store: Store) -> dict[int, tuple[str, int]]:
    with store.transaction() as conn:
        return {r.id: (r.state, r.attempts) for r in conn.execute(select(deliveries))}


def test_a_target_in_outage_never_slows_another(nrs_a: str, nrs_b: str, store: Store) -> None:
    cfg = config(
        {"down": nrs_target(nrs_a, max_in_flight=8), "up": nrs_target(nrs_b, max_in_flight=8)},
        [pipeline("pa", "down"), pipeline("pb", "up")],
    )
    admin(nrs_b, "faults", latency_ms=50)
    feed = Feed(cfg, store)
    feed.put([("warm", person(999), {"pa", "pb"})])  # groups exist in both
    with Deliverer(cfg, store, run_id="t") as deliverer:
        deliverer.run_all_once()
        feed.put([(f"c{n}", person(n), {"pb"}) for n in range(160)])
        started = time.monotonic()
        assert deliverer.run_all_once()["up"].created == 160
        alone = time.monotonic() - started
        admin(nrs_a, "faults", outage=True)
        feed.put([(f"d{n}", person(1000 + n), {"pa", "pb"}) for n in range(160)])
        started = time.monotonic()
        stats = deliverer.run_all_once()
        beside_outage = time.monotonic() - started
        assert deliverer.worker("down").breaker.opened >= 1
    assert stats["up"].created == 160 and stats["up"].waiting == 0
    assert stats["down"].done == 0 and stats["down"].dead == 0 and stats["down"].waiting == 160
    # 160 contacts, 8 in flight, 50 ms each: ~1 s, the same with the other target down
    assert beside_outage < 1.3 * alone + 0.2, (alone, beside_outage)
    # the breaker stopped the calls: at most the first in-flight wave (+ 1 warm-up) went out
    assert admin(nrs_a, "requests")["total"] <= 2 * 8 + 3


def test_calls_per_contact_in_steady_state(nrs_a: str, store: Store) -> None:
    # the fast path: POST first (a duplicate is refused with 422, then looked up and updated).
    # Throughput against a bare loop is the benchmark's (bench nrs-latency): no assertion
    # here depends on how fast the machine is.
    target = nrs_target(nrs_a, max_in_flight=16, lookup_before_create=False)
    cfg = config({"t": target}, [pipeline("p", "t")])
    admin(nrs_a, "faults", latency_ms=50)
    feed = Feed(cfg, store)
    n = 480
    feed.put([(f"c{i}", person(i), {"p"}) for i in range(n)])
    with Deliverer(cfg, store, run_id="t") as deliverer:
        assert deliverer.run_all_once()["t"].created == n
        assert admin(nrs_a, "requests")["counts"]["POST /api/rest/contacts"] == n  # no lookup
        admin(nrs_a, "clear")
        feed.put([(f"c{i}", person(i, "Eva"), {"p"}) for i in range(200)])
        assert deliverer.run_all_once()["t"].updated == 200
        calls = admin(nrs_a, "requests")
        assert calls["total"] <= 1.05 * 200
        assert calls["counts"] == {"PUT /api/rest/contacts/{id}": 200}  # by id, no lookup
        admin(nrs_a, "clear")
        feed.put([(f"c{i}", person(i, "Eva"), {"p"}) for i in range(200)])
        assert deliverer.run_all_once()["t"].unchanged == 200
        assert admin(nrs_a, "requests")["total"] == 0


def test_rate_limit_is_reached_with_few_429s(nrs_a: str, store: Store) -> None:
    target = nrs_target(nrs_a, max_in_flight=8, rate_limit="20/s", lookup_before_create=False)
    cfg = config({"t": target}, [pipeline("p", "t")])
    feed = Feed(cfg, store)
    feed.put([(f"c{i}", person(i), {"p"}) for i in range(3)])
    with Deliverer(cfg, store, run_id="t") as deliverer:
        deliverer.run_all_once()  # groups created and cached
        admin(nrs_a, "faults", rate_limit=20.0)
        feed.put([(f"c{i}", person(i, "Eva"), {"p"}) for i in range(80)])
        stats = deliverer.run_all_once()["t"]
    assert stats.done == 80
    calls = admin(nrs_a, "requests")
    assert calls["statuses"].get("429", 0) <= 0.01 * calls["total"], calls["statuses"]
    # how close to the limit it runs: bench/scenarios/nrs_ratelimit.py (no wall clock here)


def test_crash_between_the_call_and_the_commit_creates_no_duplicate(
    nrs_a: str, store: Store
) -> None:
    cfg = config({"t": nrs_target(nrs_a)}, [pipeline("p", "t")])
    Feed(cfg, store).put([("c1", person(1), {"p"})])
    with Deliverer(cfg, store, run_id="crashed") as deliverer:
        worker = deliverer.worker("t")
        with store.transaction() as conn:  # a worker claims, sends, and dies before commit
            rows = ops.claim(conn, "t", "crashed", 10, time.time(), 0.05)
            known, hashes, touched = ops.load_known(conn, "t", ["c1"])
            found = ops.load_entities(conn, [("customer", "c1")])
        [planned] = deliverer.planner.plan(rows, found, known, hashes, touched)
        assert planned.change is not None
        [out] = worker.target.apply([planned.change], worker.ctx)
        assert out.detail == "created"
    time.sleep(0.1)  # the claim expires
    with Deliverer(cfg, store, run_id="next") as deliverer:
        stats = deliverer.run_all_once()["t"]
    assert stats.updated == 1 and stats.created == 0
    assert emails(nrs_a) == {"p1@example.com": 1}


def test_claims_of_a_dead_process_are_taken_over_at_once(nrs_a: str, store: Store) -> None:
    """Regression (chaos suite): a SIGKILLed process left its rows ``in_flight`` under a
    300 s claim, so the restarted one (and a final ``sync --once``) left them undelivered for
    five minutes. A claim whose worker is a process of this host that no longer runs is now
    taken over at once, and counts as a re-send (looked up, never created twice)."""
    cfg = config({"t": nrs_target(nrs_a)}, [pipeline("p", "t")])
    Feed(cfg, store).put([(f"c{i}", person(i), {"p"}) for i in range(3)])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with Deliverer(cfg, store, run_id="crashed") as deliverer:
        worker = deliverer.worker("t")
        dead_worker = worker.worker_id.replace(f":{os.getpid()}:", f":{gone.pid}:")
        with store.transaction() as conn:  # the dead process claimed all, sent the first
            rows = ops.claim(conn, "t", dead_worker, 10, time.time(), 300.0)
            known, hashes, touched = ops.load_known(conn, "t", ["c0"])
            found = ops.load_entities(conn, [("customer", "c0")])
        planned = deliverer.planner.plan(rows[:1], found, known, hashes, touched)
        assert planned[0].change is not None
        worker.target.apply([planned[0].change], worker.ctx)
    with Deliverer(cfg, store, run_id="restarted") as deliverer:
        stats = deliverer.run_all_once()["t"]
    assert (stats.done, stats.created, stats.updated, stats.waiting) == (3, 2, 1, 0)
    assert emails(nrs_a) == {f"p{i}@example.com": 1 for i in range(3)}


def test_a_leave_after_a_lost_create_answer_removes_the_contact(nrs_a: str, store: Store) -> None:
    """Regression (chaos suite): 360NRS created the contact but the answer was lost; before
    the retry the customer left the pipeline (the open row became a ``leave``). The leave
    knew no contact id and skipped, leaving the contact in its groups. A re-sent leave now
    looks the contact up first."""
    target = nrs_target(nrs_a, lookup_before_create=False)  # the POST is the first call
    cfg = config({"t": target}, [pipeline("p", "t")], backoff_base=1.0, backoff_max=1.0)
    feed = Feed(cfg, store)
    feed.put([("c0", person(0), {"p"})])
    with Deliverer(cfg, store, run_id="first") as deliverer:  # the group exists and is known
        assert deliverer.run_all_once()["t"].created == 1
    feed.put([("c1", person(1), {"p"})])
    admin(nrs_a, "faults", lost_response_rate=1.0)
    with Deliverer(cfg, store, run_id="second") as deliverer:
        assert deliverer.run_all_once()["t"].retry == 1
    assert emails(nrs_a)["p1@example.com"] == 1  # applied, answer lost
    feed.put([("c1", person(1), set())])  # leaves p: the failed row becomes a leave
    admin(nrs_a, "faults")
    with Deliverer(cfg, store, run_id="third") as deliverer:
        stats = deliverer.run_all_once(wait_for_retries=10)["t"]
    assert (stats.left, stats.waiting) == (1, 0)
    assert emails(nrs_a) == {"p0@example.com": 1}


def test_a_lost_create_then_an_email_change_updates_the_created_contact(
    nrs_a: str, store: Store
) -> None:
    """Regression (chaos suite): 360NRS created the contact but the answer was lost; before
    the retry the customer's email changed, the retry looked the contact up by the new email
    only, found nothing and created a second contact. The identity a write used is now kept
    with the "maybe written" id map row, and a re-send looks it up too."""
    target = nrs_target(nrs_a, lookup_before_create=False)  # the POST is the first call
    cfg = config({"t": target}, [pipeline("p", "t")], backoff_base=1.0, backoff_max=1.0)
    feed = Feed(cfg, store)
    feed.put([("c0", person(0), {"p"})])
    with Deliverer(cfg, store, run_id="first") as deliverer:  # the group exists and is known
        assert deliverer.run_all_once()["t"].created == 1
    feed.put([("c1", person(1), {"p"})])
    admin(nrs_a, "faults", lost_response_rate=1.0)
    with Deliverer(cfg, store, run_id="second") as deliverer:
        assert deliverer.run_all_once()["t"].retry == 1
    feed.put([("c1", {"email": "new1@example.com", "name": "Ana"}, {"p"})])
    admin(nrs_a, "faults")
    with Deliverer(cfg, store, run_id="third") as deliverer:
        stats = deliverer.run_all_once(wait_for_retries=10)["t"]
    assert (stats.updated, stats.created, stats.waiting) == (1, 0, 0)
    assert emails(nrs_a) == {"p0@example.com": 1, "new1@example.com": 1}


def test_a_crash_after_a_create_then_an_email_change_updates_the_created_contact(
    nrs_a: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (chaos suite): the process died after 360NRS created the contact and before
    the outcome was recorded; the customer's email changed meanwhile, and the re-send (mapped
    from the newest version) looked up the new email only and created a second contact. The
    engine now stores the identity a create uses before the call."""
    cfg = config({"t": nrs_target(nrs_a, lookup_before_create=False)}, [pipeline("p", "t")])
    feed = Feed(cfg, store)
    feed.put([("c1", person(1), {"p"})])
    real = ops.record_outcomes

    def crash(*args: Any, **kw: Any) -> None:
        raise RuntimeError("killed before the commit")

    monkeypatch.setattr(ops, "record_outcomes", crash)
    with Deliverer(cfg, store, run_id="killed") as deliverer:
        worker = deliverer.worker("t")
        with pytest.raises(RuntimeError):
            worker.drain(force_flush=True)
    monkeypatch.setattr(ops, "record_outcomes", real)
    assert emails(nrs_a) == {"p1@example.com": 1}  # created; syncer never heard of it
    with store.transaction() as conn:  # the dead process's claim ends
        ops.expire_claims(conn, "t", [worker.worker_id])
    feed.put([("c1", {"email": "new1@example.com", "name": "Ana"}, {"p"})])
    with Deliverer(cfg, store, run_id="restarted") as deliverer:
        stats = deliverer.run_all_once()["t"]
    assert (stats.created, stats.waiting) == (0, 0)  # both rows of c1 update the one contact
    assert emails(nrs_a) == {"new1@example.com": 1}


def test_a_newer_change_never_overtakes_an_older_one_waiting_for_its_retry(
    nrs_a: str, store: Store
) -> None:
    """Regression (chaos suite): a change ingested while the customer's previous row was in
    flight got a row of its own; the old row then failed and waited for its retry while the
    new one (a leave) was sent first, so the retried create came last and the customer who
    had left ended in the group. A row now waits while an older row of the same customer
    waits for its retry."""
    cfg = config({"t": nrs_target(nrs_a)}, [pipeline("p", "t")])
    feed = Feed(cfg, store)
    feed.put([("c1", person(1), {"p"})])
    with store.transaction() as conn:  # a worker has the create in flight...
        [old] = ops.claim(conn, "t", "elsewhere:1:run:t", 10, time.time(), 300.0)
    feed.put([("c1", person(1), set())])  # ...when the customer leaves: a new row
    with store.transaction() as conn:  # the create failed: retried in a second
        conn.execute(
            deliveries.update()
            .where(deliveries.c.id == old.id)
            .values(state="failed", attempts=1, due_at=time.time() + 1.0, claim_expires_at=None)
        )
        conn.execute(claims.delete())  # ...and its worker released the customer
    with Deliverer(cfg, store, run_id="next") as deliverer:
        stats = deliverer.run_all_once(wait_for_retries=10)["t"]
    assert stats.waiting == 0
    assert emails(nrs_a) == {}  # created, then left: no contact


class FlakyFirstTry:
    """A per-record target that fails the first upsert it sees and records every call."""

    name = "t"
    per_record = True

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def flush_policy(self) -> None:
        return None

    def check(self) -> None: ...

    def close(self) -> None: ...

    def apply(self, changes: Sequence[Change], ctx: TargetContext) -> list[Outcome]:
        out = []
        for change in changes:
            self.calls.append((change.delivery_id, change.action))
            if len(self.calls) == 1:
                out.append(Outcome.retry(change, "503"))
            else:
                out.append(Outcome.done(change, change.action, target_id="1"))
        return out


def test_in_one_batch_a_change_waits_behind_the_retry_of_the_one_before(store: Store) -> None:
    """Regression (chaos suite): a customer's upsert and, in the same batch, its delete; the
    upsert failed (5xx) and the delete was sent right after, before the upsert's retry, which
    then re-created the deleted customer. A later change of a customer in the batch is now
    released unsent when an earlier one is to be retried."""
    cfg = config({"t": nrs_target("http://nrs.invalid")}, [pipeline("p", "t")])
    feed = Feed(cfg, store)
    feed.put([("c1", person(1), {"p"})])
    with store.transaction() as conn:  # the upsert is in flight when the delete comes
        assert len(ops.claim(conn, "t", "elsewhere:1:run:t", 10, time.time(), 300.0)) == 1
    feed.delete("c1")
    with store.transaction() as conn:  # ...and its claim ends without an answer
        ops.expire_claims(conn, "t", ["elsewhere:1:run:t"])
    target = FlakyFirstTry()
    with Deliverer(cfg, store, run_id="next", targets={"t": target}) as deliverer:
        stats = deliverer.run_all_once(wait_for_retries=5)["t"]
    assert stats.waiting == 0
    # once the delete is known only the delete goes out (the upsert is superseded): the
    # first try of the delete fails (503) and is retried
    assert [action for _, action in target.calls] == ["delete", "delete"]


def test_stop_finishes_in_flight_work_and_releases_the_rest(nrs_a: str, store: Store) -> None:
    cfg = config({"t": nrs_target(nrs_a, max_in_flight=4)}, [pipeline("p", "t")])
    admin(nrs_a, "faults", latency_ms=100)
    Feed(cfg, store).put([(f"c{i}", person(i), {"p"}) for i in range(60)])
    with Deliverer(cfg, store, run_id="t") as deliverer:
        result: dict[str, object] = {}
        thread = threading.Thread(target=lambda: result.update(deliverer.run_all_once()))
        thread.start()
        time.sleep(0.5)
        deliverer.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()
    rows = states(store)
    done = [i for i, (s, _) in rows.items() if s == "done"]
    assert 0 < len(done) < 60
    assert all(s in ("done", "pending") and a == 0 for s, a in rows.values())  # nothing lost
    assert sum(emails(nrs_a).values()) == len(done)  # every call made was recorded


def test_retries_survive_a_restart_and_end_dead_after_max_attempts(
    nrs_a: str, store: Store
) -> None:
    cfg = config({"t": nrs_target(nrs_a, max_attempts=3)}, [pipeline("p", "t")])
    admin(nrs_a, "faults", error_rate=1.0)
    Feed(cfg, store).put([("c1", person(1), {"p"})])
    with Deliverer(cfg, store, run_id="first") as deliverer:
        assert deliverer.run_all_once()["t"].retry == 1
    [(state, attempts)] = states(store).values()
    assert (state, attempts) == ("failed", 1)
    with Deliverer(cfg, store, run_id="second") as deliverer:  # a new process
        stats = deliverer.run_all_once(wait_for_retries=5)["t"]
    assert stats.dead == 1
    with store.transaction() as conn:
        [dead] = dlq_ops.dlq_list(conn)
    assert dead.attempts == 3 and "gave up after 3 attempts" in (dead.last_error or "")


def test_invalid_records_are_dead_at_once_and_the_batch_carries_on(
    nrs_a: str, store: Store
) -> None:
    cfg = config({"t": nrs_target(nrs_a)}, [pipeline("p", "t")])
    feed = Feed(cfg, store)
    feed.put(
        [
            ("c1", {"name": "no key"}, {"p"}),
            ("c2", {"email": "x@example.com", "phone": "34610000001"}, {"p"}),
            ("c3", person(3), {"p"}),
        ]
    )
    with structlog.testing.capture_logs() as logged, Deliverer(cfg, store, run_id="t") as deliverer:
        stats = deliverer.run_all_once()["t"]
    assert (stats.invalid, stats.created, stats.dead) == (2, 1, 0)
    # one line per reason (two reasons here), with the count and an example id
    # rejected before sending: "invalid", the word the summary and `dlq list` use
    dead_lines = [line for line in logged if line["event"] == "records invalid"]
    assert not [line for line in logged if line["event"] == "records dead"]
    assert sorted(line["example_contacthub_id"] for line in dead_lines) == ["c1", "c2"]
    assert all(
        (line["pipeline"], line["target"], line["run_id"], line["count"]) == ("p", "t", "t", 1)
        and line["reason"]
        for line in dead_lines
    )
    with store.transaction() as conn:
        reasons = sorted(d.last_error or "" for d in dlq_ops.dlq_list(conn))
    assert any("no key field" in r for r in reasons) and any("countryIso" in r for r in reasons)


def test_plan_classifies_with_the_real_code_and_writes_nothing(nrs_a: str, store: Store) -> None:
    cfg = config({"t": nrs_target(nrs_a)}, [pipeline("p", "t"), pipeline("q", "t")])
    feed = Feed(cfg, store)
    feed.put([(f"c{i}", person(i), {"p"}) for i in range(5)])
    with Deliverer(cfg, store, run_id="t") as deliverer:
        deliverer.run_all_once()
    feed.put(
        [
            ("c0", person(0, "Eva"), {"p"}),
            ("c1", person(1), {"p"}),
            ("c2", person(2), {"q"}),
            ("c9", person(9), {"p"}),
            ("c8", {"name": "x"}, {"p"}),
        ]
    )
    feed.delete("c3")
    before = states(store)
    kinds = sorted((p.row.pipeline, p.row.entity_id, p.kind) for p in plan_pending(store, cfg))
    assert kinds == [
        ("p", "c0", "update"),
        ("p", "c1", "unchanged"),
        ("p", "c2", "leave"),
        ("p", "c3", "delete"),
        ("p", "c8", "invalid"),
        ("p", "c9", "create"),
        ("q", "c2", "update"),
    ]  # c2 exists (from p): it joins q's group
    assert states(store) == before
    joins = {p.row.entity_id: p.joins for p in plan_pending(store, cfg, "q")}
    assert joins == {"c2": frozenset({"G-q"})}


def test_a_worker_with_a_clock_an_hour_ahead_does_not_steal_a_live_claim(store: Store) -> None:
    """Issue 13, defect 5: claim expiry compared the host's clock with the one of the host
    that claimed, so a host an hour ahead took over every live claim. Claims now compare with
    the database's clock."""
    cfg = config({"t": nrs_target("http://nrs.invalid")}, [pipeline("p", "t")])
    feed = Feed(cfg, store)
    feed.put([("c1", person(1), {"p"})])
    with store.transaction() as conn:  # a live worker on another host holds c1
        assert len(ops.claim(conn, "t", "elsewhere:1:run:t", 10, ops.db_now(conn), 300.0)) == 1
    target = FlakyFirstTry()
    with Deliverer(cfg, store, run_id="skewed", targets={"t": target}) as deliverer:
        stats = deliverer.worker("t").drain(force_flush=True, clock=lambda: time.time() + 3600)
    assert stats.claimed == 0 and target.calls == []


def test_rows_ingested_on_a_host_an_hour_ahead_are_due_at_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest stamped new rows' due time with the host's clock while claims compare with the
    database's: a host an hour ahead made its rows wait an hour (and one a millisecond ahead
    made a claim right after ingest find nothing: a flaky test). Due times are now on the
    database's clock too."""
    cfg = config({"t": nrs_target("http://nrs.invalid")}, [pipeline("p", "t")])
    feed = Feed(cfg, store)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    feed.put([("c1", person(1), {"p"})])
    monkeypatch.setattr(time, "time", real)
    with store.transaction() as conn:
        assert len(ops.claim(conn, "t", "w", 10, ops.db_now(conn), 300.0)) == 1


class RecordingBatch:
    """A batch target (one call carries many customers) that records each call's changes."""

    name = "t"
    per_record = False

    def __init__(self) -> None:
        self.calls: list[list[Change]] = []

    def flush_policy(self) -> None:
        return None

    def check(self) -> None: ...

    def close(self) -> None: ...

    def apply(self, changes: Sequence[Change], ctx: TargetContext) -> list[Outcome]:
        self.calls.append(list(changes))
        return [
            Outcome.done(c, "updated", target_id=c.entity_id, memberships=frozenset({c.pipeline}))
            for c in changes
        ]


def test_a_batch_target_gets_one_change_per_customer_per_call(store: Store) -> None:
    """The engine orders a customer's changes (the Octopush target used to do it again
    itself): a call never holds two changes of one customer, and each later change knows
    what the earlier call left (the memberships of the customer's other pipeline)."""
    cfg = config({"t": nrs_target("http://nrs.invalid")}, [pipeline("a", "t"), pipeline("b", "t")])
    Feed(cfg, store).put([("c1", person(1), {"a", "b"}), ("c2", person(2), {"a"})])
    target = RecordingBatch()
    with Deliverer(cfg, store, run_id="t", targets={"t": target}) as deliverer:
        stats = deliverer.run_all_once()["t"]
    assert stats.done == 3 and stats.waiting == 0, stats
    for call in target.calls:
        subjects = [c.entity_id for c in call]
        assert len(subjects) == len(set(subjects)), subjects
    c1 = [c for call in target.calls for c in call if c.entity_id == "c1"]
    assert len(target.calls) == 2 and len(c1) == 2
    assert c1[1].known.memberships == {c1[0].pipeline: frozenset({c1[0].pipeline})}


def test_a_rejoin_queued_behind_a_leave_in_flight_is_sent(nrs_a: str, store: Store) -> None:
    """Regression (crash suite): a customer left its only pipeline and the leave was in flight
    when a SIGKILL came; the customer joined again meanwhile, so ingest queued an upsert behind
    the leave with the very data of the first create. The next process claimed both: the
    upsert was judged "unchanged" against the hash from before the leave, and the leave then
    deleted the contact. The customer ended in no group and no contact."""
    cfg = config({"t": nrs_target(nrs_a)}, [pipeline("p", "t")])
    feed = Feed(cfg, store)
    feed.put([("c1", person(1), {"p"})])
    with Deliverer(cfg, store, run_id="first") as deliverer:
        assert deliverer.run_all_once()["t"].created == 1
    feed.put([("c1", person(1), set())])  # leaves
    with store.transaction() as conn:  # the leave is in flight when the process dies
        assert len(ops.claim(conn, "t", "elsewhere:1:run:t", 10, time.time(), 300.0)) == 1
    feed.put([("c1", person(1), {"p"})])  # joins again, as it was
    with store.transaction() as conn:
        ops.expire_claims(conn, "t", ["elsewhere:1:run:t"])
    with Deliverer(cfg, store, run_id="next") as deliverer:
        stats = deliverer.run_all_once(wait_for_retries=5)["t"]
    assert stats.dead == 0 and stats.waiting == 0, stats
    [contact] = admin(nrs_a, "state")["contacts"]
    assert contact["email"] == "p1@example.com"
    assert {g["name"] for g in contact["groups"]} == {"G-p"}
