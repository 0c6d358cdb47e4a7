"""The record debugger's deliveries: a row that was delivered after failing keeps its last
error in the state (the engine keeps it for the history); the page shows it as an earlier
attempt's, never as a current error next to a "done" badge. Found by the browser test against
a running daemon (a retried Octopush row: "done" beside "gave up after 1 attempts: ... 503")."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from typing import Any

import httpx
from sqlalchemy import insert

from syncer.console import ConsoleSettings, console_app
from syncer.state.schema import deliveries, entities
from syncer.state.store import Store

from .test_console_security import config

GAVE_UP = "gave up after 1 attempts: Octopush POST /contact/create -> 503"


def row(rid: int, state: str, error: str | None) -> dict[str, Any]:
    now = time.time()
    return {
        "id": rid,
        "pipeline": "newsletter",
        "target": "nrs",
        "entity_type": "customer",
        "entity_id": "c0",
        "subject_id": "c0",
        "action": "upsert",
        "state": state,
        "attempts": 0,
        "due_at": now,
        "created_at": now,
        "updated_at": now,
        "last_error": error,
    }


def reason_cells(state_url: str) -> dict[int, str]:
    store = Store(state_url)
    try:
        with store.transaction() as conn:
            conn.execute(
                insert(entities),
                [
                    {
                        "entity_type": "customer",
                        "entity_id": "c0",
                        "payload": json.dumps({"id": "c0"}),
                        "version": 1,
                        "updated_at": "2026-01-01",
                        "deleted": False,
                    }
                ],
            )
            conn.execute(
                insert(deliveries),
                [
                    row(1, "done", GAVE_UP),  # retried, then delivered
                    row(2, "done", "superseded by a newer delivery"),  # closed by dlq retry
                    row(3, "dead", GAVE_UP),
                    row(4, "pending", GAVE_UP),  # retried, not sent yet
                    row(5, "discarded", GAVE_UP),
                    row(6, "done", None),
                ],
            )

        async def get() -> httpx.Response:
            app = console_app(store, config(state_url), ConsoleSettings())
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://c") as http:
                return await http.get("/records/c0")

        page = asyncio.run(get())
    finally:
        store.close()
    assert page.status_code == 200
    cells = dict(
        (int(m.group(1)), html.unescape(m.group(2)))
        for m in re.finditer(
            r'<tr id="delivery-(\d+)">.*?<td class="reason">(.*?)</td>', page.text, re.S
        )
    )
    assert sorted(cells) == [1, 2, 3, 4, 5, 6], page.text[:2000]
    return cells


def test_a_delivered_rows_last_error_shows_as_an_earlier_attempt(state_url: str) -> None:
    cells = reason_cells(state_url)
    earlier = f'<span class="muted earlier">earlier attempt: {GAVE_UP}</span>'
    assert cells[1] == earlier
    assert cells[5] == earlier
    # the closing reason of a superseded row, a dead row's reason and a queued retry's last
    # failure are current: shown as they are
    assert cells[2] == "superseded by a newer delivery"
    assert cells[3] == GAVE_UP
    assert cells[4] == GAVE_UP
    assert cells[6] == ""
