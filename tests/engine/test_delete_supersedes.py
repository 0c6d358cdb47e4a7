"""A failed or interrupted upsert and a later delete both open: only the delete is sent
(issue 14, defect 4). Against the 360NRS simulator over real sockets; the request log shows
that no contact is written (POST/PUT) once the delete is known."""

from __future__ import annotations

import time

from deliver_helpers import Feed, admin, config, emails, nrs_target, person, pipeline
from sqlalchemy import select

from syncer.engine.deliver import Deliverer
from syncer.state import delivery_ops as ops
from syncer.state.schema import deliveries
from syncer.state.store import Store


def _rows(store: Store) -> list[tuple[str, str, str]]:
    with store.transaction() as conn:
        rows = conn.execute(select(deliveries).order_by(deliveries.c.id)).all()
    return [(r.action, r.state, r.last_error or "") for r in rows]


def _writes(url: str) -> dict[str, int]:
    counts = admin(url, "requests")["counts"]
    return {k: n for k, n in counts.items() if k.split()[0] in ("POST", "PUT")}


def test_an_upsert_in_flight_when_the_delete_arrives_is_not_sent(nrs_a: str, store: Store) -> None:
    cfg = config({"t": nrs_target(nrs_a)}, [pipeline("a", "t")])
    feed = Feed(cfg, store)
    feed.put([("c1", person(1), {"a"})])
    with store.transaction() as conn:  # a worker claims the upsert for 10 ms and dies
        assert len(ops.claim(conn, "t", "gone", 10, time.time(), 0.01)) == 1
    feed.delete("c1")  # the in-flight row is not rewritten: the delete is a row of its own
    assert [(a, s) for a, s, _ in _rows(store)] == [("upsert", "in_flight"), ("delete", "pending")]
    time.sleep(0.05)
    admin(nrs_a, "clear")
    with Deliverer(cfg, store, run_id="t") as deliverer:
        stats = deliverer.run_all_once()["t"]
    assert (stats.done, stats.created, stats.deleted, stats.waiting) == (2, 0, 1, 0), stats
    assert _writes(nrs_a) == {}, admin(nrs_a, "requests")["counts"]
    assert emails(nrs_a) == {}
    assert [(a, s) for a, s, _ in _rows(store)] == [("upsert", "done"), ("delete", "done")]


def test_a_failed_upsert_then_a_delete_sends_only_the_delete(nrs_a: str, store: Store) -> None:
    cfg = config(
        {"t": nrs_target(nrs_a, max_attempts=5)},
        [pipeline("a", "t"), pipeline("b", "t", on_delete="unsubscribe")],
        backoff_base=30.0,
        backoff_max=30.0,
    )
    feed = Feed(cfg, store)
    feed.put([("c1", person(1), {"a", "b"})])
    admin(nrs_a, "faults", error_rate=1.0)
    with Deliverer(cfg, store, run_id="t") as deliverer:
        failed = deliverer.run_all_once()["t"]
        assert failed.retry >= 1 and failed.done == 0, failed
        # a's upsert failed (due in 30 s); b's waits behind it (a customer's rows go in order)
        assert sorted((a, s) for a, s, _ in _rows(store)) == [
            ("upsert", "failed"),
            ("upsert", "pending"),
        ]
        admin(nrs_a, "faults")
        feed.delete("c1")
        # each pipeline's open row now says delete, due at once (coalesced, not queued behind
        # the failed upsert's 30 s backoff)
        assert sorted((a, s) for a, s, _ in _rows(store)) == [
            ("delete", "pending"),
            ("delete", "pending"),
        ]
        admin(nrs_a, "clear")
        stats = deliverer.run_all_once()["t"]
    assert (stats.deleted, stats.unsubscribed, stats.created, stats.waiting) == (1, 1, 0, 0), stats
    # b's unsubscribe is the only write: no contact POST/PUT
    assert set(_writes(nrs_a)) == {"PUT /api/rest/v2/blacklist/mailing"}, _writes(nrs_a)
    assert emails(nrs_a) == {}


def test_an_upsert_whose_customer_left_the_pipeline_since_is_not_dead(
    nrs_a: str, store: Store
) -> None:
    """An upsert in flight when the customer stops matching (a churn removed the key field):
    the newer version is the leave's to send; the upsert used to be mapped from it and end dead
    ("no key field"), failing a run that lost nothing (crash suite, fresh clone)."""
    cfg = config({"t": nrs_target(nrs_a)}, [pipeline("a", "t")])
    feed = Feed(cfg, store)
    feed.put([("c1", person(1), {"a"})])
    with Deliverer(cfg, store, run_id="t") as deliverer:
        assert deliverer.run_all_once()["t"].created == 1
    feed.put([("c1", person(1, "Bea"), {"a"})])
    with store.transaction() as conn:  # a worker claims the update for 10 ms and dies
        assert len(ops.claim(conn, "t", "gone", 10, time.time(), 0.01)) == 1
    feed.put([("c1", {"name": "Bea"}, set())])  # no e-mail, no tag: it left the pipeline
    assert [(a, s) for a, s, _ in _rows(store)][1:] == [
        ("upsert", "in_flight"),
        ("leave", "pending"),
    ]
    time.sleep(0.05)
    with Deliverer(cfg, store, run_id="t") as deliverer:
        stats = deliverer.run_all_once()["t"]
    assert (stats.dead, stats.invalid) == (0, 0), stats
    assert [(a, s) for a, s, _ in _rows(store)][1:] == [("upsert", "done"), ("leave", "done")]
    assert emails(nrs_a) == {}  # syncer's contact in no group any more: deleted
