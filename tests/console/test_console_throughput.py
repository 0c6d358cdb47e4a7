"""The overview's per-target activity from ``delivery_log``: "done, last hour" counts the
deliveries only (a dead or invalid record is not done; found by the browser test against a
running daemon, where a 503 dead letter showed as done), and the chart counts finished records
(done or dead) but no row still waiting for another attempt (a retry, a 429, a pending job)."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
from sqlalchemy import insert

from syncer.console import ConsoleSettings, console_app, queries
from syncer.state.schema import delivery_log
from syncer.state.store import Store

from .test_console_security import config

# every outcome the engine logs (syncer.engine.outcomes.to_result): a done row's outcome is
# the target's detail ("created", "updated", ...) or "unchanged" / "superseded"
DONE = ["created", "updated", "updated", "unchanged", "superseded", "deleted"]
DEAD = ["dead", "invalid", "invalid"]
WAITING = ["retry", "retry", "released", "rate_limited", "job_pending"]


def test_done_last_hour_counts_deliveries_and_the_chart_finished_rows(state_url: str) -> None:
    store = Store(state_url)
    now = time.time()
    try:
        with store.transaction() as conn:
            conn.execute(
                insert(delivery_log),
                [
                    {
                        "at": now - 60,
                        "run_id": "r",
                        "delivery_id": i,
                        "pipeline": "newsletter",
                        "target": "nrs",
                        "entity_id": f"c{i}",
                        "outcome": outcome,
                        "detail": None,
                    }
                    for i, outcome in enumerate(DONE + DEAD + WAITING)
                ],
            )
        with store.reader() as conn:
            t = queries.throughput(conn, ["nrs"], now)["nrs"]

        async def get() -> httpx.Response:
            app = console_app(store, config(state_url), ConsoleSettings())
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://c") as http:
                return await http.get("/")

        page = asyncio.run(get())
    finally:
        store.close()
    assert t.done_last_hour == len(DONE)
    assert sum(t.last_hour.values()) == len(DONE + DEAD + WAITING)  # every line is counted
    assert sum(t.series) == len(DONE + DEAD)  # finished: delivered or dead
    assert page.status_code == 200
    cells = re.findall(r'<td class="num done-last-hour">(\d+)</td>', page.text)
    assert cells == [str(len(DONE)), "0"], cells  # the config's targets: nrs, octo (nothing)
