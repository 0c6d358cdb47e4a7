"""The ``discarded`` state the console's Discard writes, as every other part sees it: counted
by state (status, metrics, the console) but never a dead letter, never claimed, coalesced into,
planned or retried, not a superseding row for ``dlq retry``, and an erasure left undone."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import insert, select

from syncer.cli import status_view
from syncer.console import actions, queries
from syncer.console.erasures import SuppressionLedger
from syncer.observability.metrics import StateCollector
from syncer.state import delivery_ops, dlq_ops, ingest_ops
from syncer.state.schema import deliveries, entities, suppression
from syncer.state.store import Store


def row(rid: int, cid: str, action: str = "upsert") -> dict[str, Any]:
    now = time.time()
    return {
        "id": rid,
        "pipeline": "newsletter",
        "target": "nrs",
        "entity_type": "customer",
        "entity_id": cid,
        "subject_id": cid,
        "action": action,
        "state": "dead",
        "attempts": 8,
        "due_at": now - 60,  # due long ago: a claimable state would be claimed
        "created_at": now,
        "updated_at": now,
        "last_error": "360NRS 503: Service unavailable",
    }


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    """c0: an older dead row (1) and a newer one (2, discarded); c1: one row (3, discarded);
    c2: a deleted customer whose delete delivery (4) is discarded."""
    s = Store(state_url)
    with s.transaction() as conn:
        conn.execute(
            insert(entities),
            [
                {
                    "entity_type": "customer",
                    "entity_id": cid,
                    "payload": json.dumps({"id": cid}),
                    "version": 1,
                    "updated_at": "2026-01-01",
                    "deleted": cid == "c2",
                }
                for cid in ("c0", "c1", "c2")
            ],
        )
        conn.execute(insert(deliveries), [row(1, "c0"), row(2, "c0"), row(3, "c1")])
        conn.execute(insert(deliveries), [row(4, "c2", action="delete")])
        conn.execute(
            insert(suppression),
            [{"entity_id": "c2", "reason": "deleted", "suppressed_at": time.time()}],
        )
        for rid in (2, 3, 4):
            assert actions.discard(conn, actions.Scope(id=rid), time.time()) == 1
    yield s
    s.close()


def states(store: Store) -> dict[int, str]:
    with store.reader() as conn:
        return {r.id: r.state for r in conn.execute(select(deliveries.c.id, deliveries.c.state))}


def test_every_state_list_knows_discarded() -> None:
    assert delivery_ops.DISCARDED in delivery_ops.STATES
    # status's queue splits dead into invalid (rejected before sending) and dead
    assert set(status_view.QUEUE_STATES) - {"invalid"} == set(queries.STATES)
    assert set(queries.STATES) == set(delivery_ops.STATES)
    assert delivery_ops.DISCARDED not in delivery_ops.OPEN_STATES
    assert delivery_ops.DISCARDED not in ingest_ops.OPEN_STATES


def test_discarded_is_counted_but_is_no_dead_letter(store: Store) -> None:
    assert states(store) == {1: "dead", 2: "discarded", 3: "discarded", 4: "discarded"}
    with store.reader() as conn:
        assert [r.id for r in dlq_ops.dlq_list(conn)] == [1]
        assert dlq_ops.counts_by_state(conn) == {"newsletter": {"dead": 1, "discarded": 3}}
        assert ingest_ops.count_dead(conn) == 1
        assert [g.count for g in queries.dead_groups(conn)] == [1]
        assert queries.counts_by_pipeline(conn, ["newsletter"])["newsletter"] == {
            "dead": 1,
            "discarded": 3,
        }
    samples = {
        (m.name, tuple(sorted(s.labels.items()))): s.value
        for m in StateCollector(store).collect()
        for s in m.samples
    }
    assert samples[("syncer_deliveries", (("pipeline", "newsletter"), ("state", "discarded")))] == 3
    assert samples[("syncer_dead_letters", (("pipeline", "newsletter"),))] == 1
    # syncer status in a terminal: a discarded column with the count
    out = io.StringIO()
    with store.reader() as conn:
        queue = status_view.queues(conn, time.time())
    src = {"stream": "s", "offset": 0, "last_offset": 0, "lag": 0, "lease_owner": None}
    src["backfill"] = {"state": None, "slices": {}}
    data = {"source": src, "queues": queue, "erasures_pending": 0, "runs": []}
    status_view.render_status(data, Console(file=out, width=200, color_system=None))
    table = out.getvalue()
    header = next(line for line in table.splitlines() if "pipeline" in line and "dead" in line)
    columns = [c.strip() for c in header.split("┃")[1:-1]]
    newsletter = next(line for line in table.splitlines() if "newsletter" in line)
    cells = [c.strip() for c in newsletter.split("│")[1:-1]]
    assert cells[columns.index("discarded")] == "3"
    assert cells[columns.index("dead")] == "1"


def test_discarded_is_never_claimed_coalesced_planned_or_retried(store: Store) -> None:
    now = time.time()
    with store.transaction() as conn:
        # c1 has only a discarded row: nothing to claim, to plan, or for ingest to rewrite
        claimed = delivery_ops.claim(conn, "nrs", "w", 100, now, 30.0)
        assert claimed == []
        assert dlq_ops.open_rows(conn) == []
        assert ingest_ops.open_customer_deliveries(conn, ["c0", "c1", "c2"]) == {}
        # dlq retry: c0's dead row 1 is retried, not closed as superseded by the newer
        # discarded row 2 (nothing was sent for it), and no discarded row comes back
        assert dlq_ops.dlq_retry(conn, now) == (1, 0)
    assert states(store) == {1: "pending", 2: "discarded", 3: "discarded", 4: "discarded"}


def test_a_discarded_delete_is_no_erasure_done(store: Store) -> None:
    with store.reader() as conn:
        ledger = SuppressionLedger()
        (erasure,) = ledger.page(conn, None, 50)
        assert ledger.pending(conn) == 0
    assert erasure.entity_id == "c2" and erasure.state == "discarded"
    assert [t.state for t in erasure.targets] == ["discarded"]
