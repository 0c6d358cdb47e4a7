"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright with
``executable_path``: no browser download), against a state database built by real syncs of
the sandbox.

The story: 360NRS is down during the first sync, so its rows die with its 503; two customers are
deleted before the second sync (erasures). The operator opens the overview, follows a dead
letter of the 503 group to the record debugger, logs in with the operator token, retries it,
and after the next delivery pass sees it delivered; searches a customer by e-mail; pauses a
target and, while it is paused, sees its queue grow with new changes. Screenshots of each
step go to docs/console/ (docs/console.md shows them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncer.console import ConsoleSettings, console_app
from syncer.console.pause import is_paused
from syncer.sandbox.cluster import SandboxCluster
from syncer.sandbox.serve import ServedApp
from syncer.state import dlq_ops

from .statebuild import (
    BuiltState,
    build_state,
    delete_customer,
    deliver,
    ingest,
    patch_customer,
    set_outage,
    sync_once,
)

CHROMIUM = Path("/usr/bin/chromium")
# The docs' screenshots are refreshed on demand (SYNCER_UPDATE_SCREENSHOTS=1): a plain test run
# leaves the checkout as it was (the pictures differ in every run's ids and times)
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
OPERATOR = "operator-browser-token-5d1e"

playwright = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) missing")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture
def built(tmp_path: Path) -> Iterator[BuiltState]:
    with SandboxCluster() as cluster:
        state = build_state(tmp_path, cluster, customers=40)
        try:
            set_outage(cluster, "nrs360", True)
            sync_once(state.cfg, state.store)
            set_outage(cluster, "nrs360", False)
            for doc in state.customers[-2:]:
                delete_customer(cluster, doc["id"])
            sync_once(state.cfg, state.store)
            yield state
        finally:
            state.store.close()


def states_of(state: BuiltState, delivery_id: int) -> str:
    with state.store.reader() as conn:
        rows = dlq_ops.counts_by_state(conn)
        assert rows  # the syncs wrote deliveries
        from sqlalchemy import select

        from syncer.state.schema import deliveries

        return str(
            conn.execute(
                select(deliveries.c.state).where(deliveries.c.id == delivery_id)
            ).scalar_one()
        )


def queue_of(page: Any, target: str) -> int:
    """The pending count of ``target`` on the Targets page."""
    cell = page.locator(f"#target-{target} td.state-pending")
    return int(cell.inner_text().replace(",", ""))


def test_operator_story_in_chromium(built: BuiltState, tmp_path: Path) -> None:
    SHOTS = DOCS_SHOTS if os.environ.get("SYNCER_UPDATE_SCREENSHOTS") == "1" else tmp_path
    SHOTS.mkdir(parents=True, exist_ok=True)
    app = console_app(built.store, built.cfg, ConsoleSettings(operator_token=OPERATOR))
    errors: list[str] = []
    with ServedApp(app) as served, playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            # any CSP violation or script error shows up in the console: none may happen
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            base = served.url

            # overview: loopback, no token needed to read
            page.goto(base + "/")
            dead = int(page.locator("#dead-count").inner_text().replace(",", ""))
            assert dead > 0
            assert page.locator("text=loopback · read-only").count() == 1
            page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

            # follow the dead letters to the 503 group, then a row to the record debugger
            page.click("a.card[href='/dead-letters']")
            group = page.locator("table.groups a", has_text="503")
            assert group.count() == 1
            group.first.click()
            assert "reason=" in page.url
            page.screenshot(path=str(SHOTS / "dead-letters.png"), full_page=True)
            first = page.locator("table.rows tbody tr").first
            delivery_id = int(first.locator("td").first.inner_text())
            assert states_of(built, delivery_id) == "dead"
            first.locator("a.record-link").click()
            assert "/records/" in page.url
            row = page.locator(f"#delivery-{delivery_id}")
            assert "dead" in row.inner_text() and "503" in row.inner_text()
            assert page.locator("table.decisions").inner_text().count("selected") >= 1

            # a read-only caller is refused: log in with the operator token first
            record_url = page.url
            row.locator("button[data-op=retry]").click()
            assert page.locator("text=read-only").count() >= 1
            assert states_of(built, delivery_id) == "dead"
            assert errors == [
                "Failed to load resource: the server responded with a status of 403 (Forbidden)"
            ]
            errors.clear()  # that refusal was the point; nothing else may fail
            page.goto(base + "/login?next=" + record_url.removeprefix(base))
            page.fill("input[name=token]", OPERATOR)
            page.click("button:has-text('Log in')")
            assert page.url == record_url
            assert page.locator(".badge.op").inner_text() == "operator_token"

            # retry: the confirmation first, then the action
            page.locator(f"#delivery-{delivery_id} button[data-op=retry]").click()
            assert "Retry dead letter" in page.locator(".question").inner_text()
            assert states_of(built, delivery_id) == "dead"  # asking changed nothing
            page.click("#confirm")
            assert "1 queued again" in page.locator(".flash").inner_text()
            assert states_of(built, delivery_id) == "pending"
            deliver(built.cfg, built.store)  # the daemon's next delivery pass
            page.reload()
            assert states_of(built, delivery_id) == "done"
            assert "done" in page.locator(f"#delivery-{delivery_id}").inner_text()
            assert page.locator("table.idmap td.mono").first.inner_text() not in ("", "—")
            page.screenshot(path=str(SHOTS / "record.png"), full_page=True)

            # search a customer by e-mail (upper-cased: the search ignores case)
            doc = next(
                d for d in built.customers[:-2] if (d["base"]["contacts"] or {}).get("email")
            )
            email = doc["base"]["contacts"]["email"]
            page.click("nav a[href='/records']")
            page.fill("input[name=q]", email.upper())
            page.click("button:has-text('Search')")
            hits = page.locator("table.hits a.hit")
            assert hits.count() == 1 and hits.first.inner_text() == doc["id"]
            page.screenshot(path=str(SHOTS / "search.png"), full_page=True)

            # pause 360NRS, then changes pile up in its queue
            page.click("nav a[href='/targets']")
            before = queue_of(page, "nrs")
            page.click("#target-nrs button[data-op=pause]")
            page.click("#confirm")
            assert "nrs: paused" in page.locator(".flash").inner_text()
            assert is_paused(built.store, "nrs")
            changed = [
                d["id"] for d in built.customers[:-2] if (d["base"]["contacts"] or {}).get("email")
            ][:5]
            for cid in changed:
                patch_customer(built.cluster, cid, {"base": {"firstName": "Changed"}})
            ingest(built.cfg, built.store)  # a paused target's rows are not claimed
            page.reload()
            assert queue_of(page, "nrs") > before
            assert page.locator("#target-nrs .badge.warn").inner_text() == "paused"
            page.screenshot(path=str(SHOTS / "targets.png"), full_page=True)

            # the erasures of the two deleted customers
            page.click("nav a[href='/erasures']")
            text = page.locator("table.erasures").inner_text()
            assert all(d["id"] in text for d in built.customers[-2:])
            page.screenshot(path=str(SHOTS / "erasures.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
