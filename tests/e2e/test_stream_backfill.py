"""Backfill while customers churn, then stream: nothing changed before, during or after the
backfill is missing, and the pipelines' selections match the simulator's final state.

What "nothing missing" means for events: the backfill scans only the event types some pipeline
wants (``docs/operations.md``, "First backfill"), and the stream is read from the offset the
backfill recorded. So an event of an unwanted type written *before* that offset is, by design,
never fetched (no pipeline would ever deliver it); every event written after it arrives through
the stream, whatever its type."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import NODE, STREAM, WS, api, config, served_contacthub, source, write_config

from syncer.engine.apply import Applier, rules_from_config
from syncer.engine.backfill import Backfill
from syncer.engine.leader import Lease
from syncer.engine.runner import ingest_to_end
from syncer.sandbox.churn import Churn
from syncer.state.store import Store


def conn_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT entity_id FROM entities")).scalars())


def test_changes_during_and_after_a_backfill_all_arrive(sqlite_url: str, tmp_path: Path) -> None:
    with served_contacthub() as (sim, served):
        sim.load({"generate": {"customers": 3000, "events": 1500, "seed": 11}})
        store = Store(sqlite_url)
        cfg = config(write_config(tmp_path, served.url, sqlite_url))
        applier = Applier(rules_from_config(cfg))
        client = source(served)
        backfill = Backfill(
            store,
            client,
            applier,
            page_size=50,
            pipelines=frozenset({"everyone"}),
            event_types=["completedOrder"],
            scan_events=True,
        )
        churn = Churn(api(served), WS, NODE, seed=3)
        churn.known = list(sim.workspaces[WS].customers)
        # Writes before the backfill records its offset. Without this step whether any land
        # there is a race between the churn and Backfill._start (it made this test flaky).
        churn.step(30)
        errors: list[BaseException] = []

        def scan() -> None:
            try:
                backfill.run()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=scan)
        thread.start()
        while thread.is_alive():  # writes during the backfill
            churn.step(10)
        thread.join()
        assert not errors and backfill.result.finished
        lease = Lease(store, STREAM, "test", 60)
        ingest_to_end(store, client, applier, page_size=500, lease=lease)
        churn.step(300)  # and after it
        ingest_to_end(store, client, applier, page_size=500, lease=lease)

        ws = sim.workspaces[WS]
        with store.engine.connect() as conn:
            live = {
                r[0]: r[1]
                for r in conn.execute(
                    text(
                        "SELECT entity_id, version FROM entities "
                        "WHERE entity_type = 'customer' AND deleted = false"
                    )
                )
            }
            suppressed = set(conn.execute(text("SELECT entity_id FROM suppression")).scalars())
            events = set(
                conn.execute(
                    text("SELECT entity_id FROM entities WHERE entity_type = 'event'")
                ).scalars()
            )
            matched = set(
                conn.execute(
                    text(
                        "SELECT entity_id FROM entities WHERE entity_type = 'customer' "
                        "AND ' ' || pipelines || ' ' LIKE '% newsletter %'"
                    )
                ).scalars()
            )
            everyone = set(
                conn.execute(
                    text("SELECT entity_id FROM deliveries WHERE pipeline = 'everyone'")
                ).scalars()
            )
        deletes = [e for e in churn.journal if e.op == "delete" and e.ok]
        assert deletes and sum(e.op == "create" and e.ok for e in churn.journal) > 10
        assert live == {cid: c["version"] for cid, c in ws.customers.items()}
        known = set(conn_ids(store))
        # a customer deleted before the backfill recorded its offset was never seen at all
        assert {e.customer_id for e in deletes} & known <= suppressed
        before = backfill.result.recorded_offset  # updates written before the backfill began
        assert len({e.customer_id for e in deletes} & suppressed) >= len(deletes) - before
        assert suppressed.isdisjoint(ws.customers)
        orders = {eid for eid, e in ws.events.items() if e["type"] == "completedOrder"}
        assert orders <= events
        new_events = {e.response["id"] for e in churn.journal if e.op == "event" and e.ok}
        created_at = {
            data["id"]: offset
            for offset, (op, kind, _node, data) in enumerate(ws.updates.entries, 1)
            if op == "CREATE" and kind == "EVENT"
        }
        alive = new_events & set(ws.events)
        streamed = {eid for eid in alive if created_at[eid] > before}
        scanned = {eid for eid in alive - streamed if ws.events[eid]["type"] == "completedOrder"}
        unwanted = alive - streamed - scanned  # before the offset, of types no pipeline wants
        assert streamed and scanned and unwanted  # all three cases are exercised
        assert streamed | scanned <= events
        assert unwanted.isdisjoint(events)
        email = {
            cid
            for cid, c in ws.customers.items()
            if ((c.get("consents") or {}).get("marketing") or {})
            .get("automatic", {})
            .get("email", {})
            .get("status")
            is True
            and c["consents"]["marketing"]["automatic"]["email"].get("objection") is not True
        }
        assert matched == email
        assert set(ws.customers) <= everyone
        store.close()


def test_events_before_the_recorded_offset_come_from_the_scan_only_when_wanted(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The rule the test above relies on, without its race: before the offset the backfill
    records, only wanted event types are scanned; after it the stream brings every type."""
    with served_contacthub() as (sim, served):
        sim.load({"generate": {"customers": 20, "events": 0, "seed": 5}})
        http = api(served)
        cid = sorted(sim.workspaces[WS].customers)[0]

        def post(kind: str) -> str:
            body = {"customerId": cid, "type": kind, "context": "WEB", "properties": {}}
            resp = http.post(f"/hub/v1/workspaces/{WS}/events", json=body)
            assert resp.status_code == 202
            return str(resp.json()["id"])

        early_order, early_page = post("completedOrder"), post("viewedPage")
        store = Store(sqlite_url)
        cfg = config(write_config(tmp_path, served.url, sqlite_url))
        applier = Applier(rules_from_config(cfg))
        client = source(served)
        backfill = Backfill(
            store,
            client,
            applier,
            pipelines=frozenset({"everyone"}),
            event_types=["completedOrder"],
            scan_events=True,
        )
        assert backfill.run().finished and backfill.result.recorded_offset == 2
        late_order, late_page = post("completedOrder"), post("viewedPage")
        ingest_to_end(store, client, applier, page_size=500, lease=Lease(store, STREAM, "t", 60))
        with store.engine.connect() as conn:
            events = set(
                conn.execute(
                    text("SELECT entity_id FROM entities WHERE entity_type = 'event'")
                ).scalars()
            )
        assert events == {early_order, late_order, late_page}
        assert early_page in sim.workspaces[WS].events  # not fetched, by design
        store.close()
