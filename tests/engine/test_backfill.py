"""Backfill against the Contacthub simulator over real HTTP: the search cap, resuming, and
never overwriting newer versions."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import NODE, STREAM, WS, api, config, served_contacthub, source, write_config

from syncer.engine.apply import Applier, rules_from_config
from syncer.engine.backfill import Backfill, BackfillProgress
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.state.store import Store


def make(served: Any, store: Store, tmp_path: Path, page_size: int, **kw: Any) -> Backfill:
    cfg = config(write_config(tmp_path, served.url, store.url))
    names = frozenset(p.name for p in cfg.pipelines)
    return Backfill(
        store,
        source(served),
        Applier(rules_from_config(cfg)),
        page_size=page_size,
        pipelines=names,
        event_types=["completedOrder"],
        scan_events=True,
        **kw,
    )


def stored(store: Store, kind: str = "customer") -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT entity_id, version FROM entities WHERE entity_type = :k"), {"k": kind}
        )
        return {r[0]: r[1] for r in rows}


def load(sim: ContacthubSimulator, customers: int, events: int = 0, seed: int = 1) -> None:
    sim.load({"generate": {"customers": customers, "events": events, "seed": seed}})


def test_25000_customers_are_all_reached_through_the_10000_match_cap(
    sqlite_url: str, tmp_path: Path
) -> None:
    with served_contacthub(max_page_size=1000) as (sim, served):
        load(sim, 25_000, 300)
        store = Store(sqlite_url)
        result = make(served, store, tmp_path, page_size=1000).run()
        customers = sim.workspaces[WS].customers
        assert result.finished and result.splits >= 2
        assert stored(store) == {cid: c["version"] for cid, c in customers.items()}
        wanted = {
            e["id"] for e in sim.workspaces[WS].events.values() if e["type"] == "completedOrder"
        }
        assert set(stored(store, "event")) == wanted
        with store.engine.connect() as conn:
            n = conn.execute(text("SELECT COUNT(*) FROM deliveries WHERE pipeline = 'everyone'"))
            assert n.scalar_one() == 25_000
        store.close()


def test_slices_halve_until_under_a_cap_the_api_enforces(state_url: str, tmp_path: Path) -> None:
    with served_contacthub(search_cap=400, search_cap_mode="error", max_page_size=200) as (
        sim,
        served,
    ):
        load(sim, 2_000)
        store = Store(state_url)
        result = make(served, store, tmp_path, page_size=200).run()
        assert result.splits >= 3
        assert set(stored(store)) == set(sim.workspaces[WS].customers)
        store.close()


def test_an_interrupted_backfill_resumes_from_its_last_page(state_url: str, tmp_path: Path) -> None:
    with served_contacthub(max_page_size=100) as (sim, served):
        load(sim, 1_500)
        api(served).post(
            f"/hub/v1/workspaces/{WS}/customers",
            json={"nodeId": NODE, "externalId": "late", "base": {"firstName": "L"}},
        )
        store = Store(state_url)
        stop = threading.Event()
        seen: list[BackfillProgress] = []

        def progress(p: BackfillProgress) -> None:  # one call per batch (transaction)
            seen.append(p)
            if len(seen) == 4:
                stop.set()

        first = make(
            served, store, tmp_path, 100, batch_size=100, stop=stop, progress=progress
        ).run()
        # pages of 100; each page after the first starts with the previous page's last
        # customer (the cursor's instant), skipped
        assert not first.finished and first.queries >= 4
        assert first.customers == 100 + 99 * (first.queries - 1)
        cp = store.checkpoint(STREAM)
        assert cp is not None and (cp.backfill_state, cp.offset) == ("running", 0)
        second = make(served, store, tmp_path, 100).run()
        assert second.resumed and second.finished and second.recorded_offset == 1
        # only the customer at the committed cursor's instant is scanned again
        assert second.customers == 1_501 - first.customers + 1
        assert set(stored(store)) == set(sim.workspaces[WS].customers)
        cp = store.checkpoint(STREAM)
        assert cp is not None and (cp.backfill_state, cp.offset) == ("done", 1)
        store.close()


def test_a_scanned_customer_never_overwrites_a_newer_stored_version(
    sqlite_url: str, tmp_path: Path
) -> None:
    with served_contacthub() as (sim, served):
        load(sim, 30)
        cid, doc = next(iter(sim.workspaces[WS].customers.items()))
        store = Store(sqlite_url)
        with store.transaction() as conn:
            conn.execute(
                text(
                    "INSERT INTO entities (entity_type, entity_id, payload, version, updated_at,"
                    " deleted) VALUES ('customer', :i, '{\"newer\": true}', :v, :u, false)"
                ),
                {"i": cid, "v": doc["version"] + 5, "u": "2099-01-01T00:00:00.000Z"},
            )
        result = make(served, store, tmp_path, page_size=50).run()
        assert result.stats.stale == 1
        with store.engine.connect() as conn:
            payload = conn.execute(
                text("SELECT payload FROM entities WHERE entity_id = :i"), {"i": cid}
            ).scalar_one()
        assert payload == '{"newer": true}'
        store.close()


@pytest.mark.parametrize("pipeline", ["everyone"])
def test_a_backfill_for_one_pipeline_resends_known_customers_to_it_only(
    sqlite_url: str, tmp_path: Path, pipeline: str
) -> None:
    with served_contacthub() as (sim, served):
        load(sim, 40)
        store = Store(sqlite_url)
        make(served, store, tmp_path, 50).run()
        with store.transaction() as conn:
            conn.execute(text("UPDATE deliveries SET state = 'done'"))
        again = make(served, store, tmp_path, 50)
        again.resend = frozenset({pipeline})
        again.run()
        with store.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pipeline, COUNT(*) FROM deliveries WHERE state = 'pending' "
                    "GROUP BY pipeline"
                )
            ).all()
        assert [tuple(r) for r in rows] == [(pipeline, 40)]
        store.close()


def test_since_scans_only_customers_updated_since_the_date(sqlite_url: str, tmp_path: Path) -> None:
    with served_contacthub(max_page_size=1000) as (sim, served):
        load(sim, 2_000)
        customers = sim.workspaces[WS].customers
        dates = sorted(c["updatedAt"] for c in customers.values())
        since = dates[len(dates) // 2]
        store = Store(sqlite_url)
        result = make(served, store, tmp_path, page_size=1000, since=since).run()
        expected = {cid for cid, c in customers.items() if c["updatedAt"] >= since}
        assert result.finished and 0 < len(expected) < len(customers)
        assert set(stored(store)) == expected
        store.close()


def test_a_failed_write_stops_the_scan_and_a_rerun_completes(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Batches are written on a second thread: its error surfaces in ``run`` and nothing after
    the last committed batch counts as done."""
    with served_contacthub() as (sim, served):
        load(sim, 1_000)
        store = Store(sqlite_url)
        failing = make(served, store, tmp_path, 50, batch_size=100)
        real_apply = failing.applier.apply
        calls: list[int] = []

        def apply(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("disk full")
            return real_apply(*args, **kwargs)

        failing.applier.apply = apply  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="disk full"):
            failing.run()
        # the two batches written before the failure, nothing after it
        assert len(calls) == 3
        assert len(stored(store)) == failing.result.customers >= 200
        again = make(served, store, tmp_path, 50).run()
        assert again.resumed and again.finished
        assert set(stored(store)) == set(sim.workspaces[WS].customers)
        store.close()
