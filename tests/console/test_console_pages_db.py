"""Every console page on SQLite and on PostgreSQL (``tools/with-postgres.sh``): the same rows
give the same answers, the customer search's JSON paths included (``#>>`` on PostgreSQL,
``json_extract`` on SQLite), and on PostgreSQL the queries can use migration 0007's indexes
(the expressions match: checked with sequential scans turned off, as the tables are tiny)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, event, insert, text

from syncer.console import ConsoleSettings, console_app, debugger, queries
from syncer.console.erasures import SuppressionLedger
from syncer.state import erasure_ops
from syncer.state.schema import deliveries, delivery_log, entities, inbox, runs, suppression
from syncer.state.store import Store

from .test_console_security import config


def fill(store: Store) -> None:
    now = time.time()
    docs = [
        {
            "id": f"c{i}",
            "externalId": f"CRM-{i}",
            "base": {
                "firstName": f"Name{i}",
                "contacts": {"email": f"Person{i}@Example.com", "mobilePhone": f"+3934700000{i}"},
            },
        }
        for i in range(4)
    ]
    with store.transaction() as conn:
        conn.execute(
            insert(entities),
            [
                {
                    "entity_type": "customer",
                    "entity_id": d["id"],
                    "payload": json.dumps(d),
                    "version": 1,
                    "updated_at": "2026-01-01",
                    "deleted": False,
                }
                for d in docs
            ],
        )
        conn.execute(
            insert(inbox),
            [
                {
                    "stream": "s",
                    "page_offset": i,
                    "position": 0,
                    "origin": "stream",
                    "entity_type": "customer",
                    "entity_id": d["id"],
                    "operation": "UPDATE",
                    "payload": json.dumps(d),
                    "received_at": now,
                }
                for i, d in enumerate(docs)
            ],
        )

        def row(i: int, state: str, action: str = "upsert", error: str | None = None) -> Any:
            return {
                "pipeline": "newsletter",
                "target": "nrs",
                "entity_type": "customer",
                "entity_id": f"c{i}",
                "subject_id": f"c{i}",
                "action": action,
                "state": state,
                "attempts": 1,
                "due_at": now - 60,
                "created_at": now,
                "updated_at": now,
                "last_error": error,
            }

        conn.execute(
            insert(deliveries),
            [
                row(0, "done"),
                row(1, "dead", error="360NRS 503: Service unavailable"),
                row(2, "dead", error="360NRS 503: Service unavailable"),
                row(3, "pending", action="delete"),
            ],
        )
        conn.execute(
            insert(delivery_log),
            [
                {
                    "at": now - 30,
                    "run_id": "run-a",
                    "delivery_id": 1,
                    "pipeline": "newsletter",
                    "target": "nrs",
                    "entity_id": "c0",
                    "outcome": "created",
                    "detail": "id 77",
                }
            ],
        )
        conn.execute(
            insert(suppression), [{"entity_id": "c3", "reason": "deleted", "suppressed_at": now}]
        )
        erasure_ops.open_erasures(conn, ["c3"], "deleted", now)  # as ingest does with it
        conn.execute(
            insert(runs),
            [
                {
                    "run_id": "sync-0123456789ab",
                    "kind": "sync",
                    "started_at": now - 10,
                    "finished_at": now - 5,
                    "status": "ok",
                    "counts": "{}",
                }
            ],
        )


@pytest.fixture
def filled(state_url: str) -> Iterator[tuple[Store, Any]]:
    store = Store(state_url)
    fill(store)
    yield store, config(state_url)
    store.close()


def get_all(app: Any, paths: list[str]) -> dict[str, httpx.Response]:
    async def main() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
            return {p: await http.get(p) for p in paths}

    return asyncio.run(main())


def test_every_page_answers_the_same_on_both_databases(filled: tuple[Store, Any]) -> None:
    store, cfg = filled
    app = console_app(store, cfg, ConsoleSettings())
    pages = get_all(
        app,
        [
            "/",
            "/pipelines",
            "/dead-letters",
            "/dead-letters?reason=360NRS%20503%3A%20Service%20unavailable",
            "/runs",
            "/records?q=person2%40EXAMPLE.com",
            "/records?q=%2B39347000001",
            "/records?q=CRM-0",
            "/records/c0",
            "/erasures",
            "/targets",
        ],
    )
    assert {p: r.status_code for p, r in pages.items()} == {p: 200 for p in pages}
    dead = pages["/dead-letters"].text
    assert "360NRS 503: Service unavailable" in dead and ">2<" in dead
    assert "sync-0123456789ab" in pages["/runs"].text
    # the search: e-mail whatever its case, mobile, externalId (each its JSON path)
    assert 'href="/records/c2"' in pages["/records?q=person2%40EXAMPLE.com"].text
    assert 'href="/records/c1"' in pages["/records?q=%2B39347000001"].text
    assert 'href="/records/c0"' in pages["/records?q=CRM-0"].text
    record = pages["/records/c0"].text
    assert "id 77" in record and "created" in record  # the target's answer, from the log
    assert "c3" in pages["/erasures"].text
    with store.reader() as conn:
        assert queries.counts_by_pipeline(conn, ["newsletter"])["newsletter"] == {
            "done": 1,
            "dead": 2,
            "pending": 1,
        }
        assert SuppressionLedger().pending(conn) == 1
        # the throughput chart: the one "created" line, 30 s ago, in the newest bucket
        series = queries.throughput(conn, ["nrs"], time.time())["nrs"].series
        assert len(series) == queries.LOG_WINDOW // queries.BUCKET
        assert series[-1] == 1 and sum(series) == 1
        assert [g.count for g in queries.dead_groups(conn)] == [2]


def pg_plans(conn: Connection, run: Any) -> list[str]:
    """PostgreSQL's plans of the statements ``run`` executes, sequential scans off."""
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(conn, "before_cursor_execute", capture)
    run(conn)
    event.remove(conn, "before_cursor_execute", capture)
    raw = conn.connection.driver_connection
    assert raw is not None
    plans = []
    with raw.cursor() as cur:
        for sql, params in seen:
            cur.execute(f"EXPLAIN {sql}", params)
            plans.append(" | ".join(str(r[0]) for r in cur.fetchall()))
    return plans


@pytest.mark.postgres
def test_postgresql_queries_match_the_console_indexes(pg_url: str) -> None:
    store = Store(pg_url)
    fill(store)
    cases = [
        (lambda c: debugger.search(c, "person2@example.com"), "search_keys_pkey"),
        (lambda c: debugger.search(c, "CRM-1"), "inbox_pkey"),  # the tail not read yet
        (lambda c: queries.dead_groups(c), "ix_deliveries_dead"),
        (lambda c: SuppressionLedger().pending(c), "ix_deliveries_deletes"),
        (lambda c: queries.counts_by_pipeline(c, ["newsletter"]), "ix_deliveries_pipeline_state"),
    ]
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))
            found = {index: any(index in p for p in pg_plans(conn, run)) for run, index in cases}
    finally:
        store.close()
    assert found == {index: True for _, index in cases}
