"""Backfill keyset paging over customers (and events) that share an instant: every one is
applied exactly once, however many share it, with or without slice splits."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from test_backfill import make

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import NODE, WS, served_contacthub

from syncer.sandbox.datagen import generate_customers, generate_events
from syncer.state.store import Store

# instant index -> how many customers share it: fewer than, exactly, and several pages' worth
CROWDS = {100: 3, 300: 50, 500: 49, 700: 51, 900: 175}


def crowded(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` customers sorted by registeredAt, crowds sharing one instant; events likewise."""
    customers = sorted(generate_customers(n, seed=9, node_id=NODE), key=lambda c: c["registeredAt"])
    for start, size in CROWDS.items():
        for doc in customers[start : start + size]:
            doc["registeredAt"] = customers[start]["registeredAt"]
    events = list(generate_events(customers, 600, seed=9))
    for i, event in enumerate(events):
        event["type"] = "completedOrder"
        if i < 130:  # one crowd of events, more than two pages of 50
            event["date"] = events[0]["date"]
    return customers, events


def inbox_counts(store: Store, kind: str) -> tuple[int, int]:
    """(rows the backfill put in the inbox, distinct entities among them)."""
    with store.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT COUNT(*), COUNT(DISTINCT entity_id) FROM inbox "
                "WHERE origin = 'backfill' AND entity_type = :k"
            ),
            {"k": kind},
        ).one()
    return int(row[0]), int(row[1])


@pytest.mark.parametrize(
    ("behaviour", "batch"),
    [
        ({}, 1000),
        ({}, 50),
        ({"search_cap": 300}, 120),
        ({"search_cap": 300, "search_cap_mode": "error"}, 1000),
    ],
)
def test_every_customer_sharing_an_instant_is_applied_once(
    sqlite_url: str, tmp_path: Path, behaviour: dict[str, Any], batch: int
) -> None:
    customers, events = crowded(1_500)
    with served_contacthub(**behaviour) as (sim, served):
        sim.load({"customers": customers, "events": events})
        store = Store(sqlite_url)
        result = make(served, store, tmp_path, page_size=50, batch_size=batch).run()
        assert result.finished
        assert inbox_counts(store, "customer") == (1_500, 1_500)
        assert inbox_counts(store, "event") == (600, 600)
        assert result.customers == 1_500 and result.events == 600
        if behaviour:
            assert result.splits > 0
        store.close()
    assert len(sim.workspaces[WS].customers) == 1_500
