"""The console in a real headless Chromium (Debian's ``chromium`` through Playwright, as in
``test_console_browser.py``), served by a real ``syncer run`` daemon against the sandbox
simulators on 127.0.0.1: every state the browser sees is one the running daemon produced.

The story: the daemon syncs six customers; Octopush is then down (its fault plan's
``outage``) while one VIP customer changes, so that customer's Octopush row dies with the 503
(``max_attempts: 1``). The operator logs in with the operator token, follows the dead letter
from the overview to the record debugger, reads the reason and the record syncer sends, lifts
the outage, retries (confirming) and sees the daemon deliver it; searches the customer by
e-mail and sees the timeline and the target ids; pauses 360NRS, changes customers in
Contacthub, sees 360NRS's queue grow while Octopush keeps delivering, resumes, and sees the
queue drain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from syncer.sandbox.cluster import SandboxCluster
from syncer.sandbox.contacthub import DEFAULT_NODE_ID

from .statebuild import patch_customer, set_outage
from .test_console_browser import CHROMIUM
from .test_console_daemon import SYNCER, write_config

playwright = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) missing")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)

READ, OPERATOR = "read-token-browser-9c2a", "operator-token-browser-47f1"
HANG_GUARD = 30.0  # seconds: a hang guard, never a speed check
T = TypeVar("T")

VIP = "0a1b2c3d-0000-4000-8000-000000000001"
VIP_EMAIL = "vip.rossi@example.it"
VIP_PHONE = "+39 320 301 2676"  # valid Italian mobile: Octopush stores it as +393203012676
VIP_E164 = "+393203012676"
NEWS = [f"0a1b2c3d-0000-4000-8000-00000000001{i}" for i in range(5)]


def customer(cid: str, n: int, email: str, phone: str, *, vip: bool) -> dict[str, Any]:
    """A Contacthub customer (the shape of ``syncer.sandbox.datagen``) with e-mail consent;
    ``vip``: the ``vip`` tag and SMS consent too, so ``sms-vip`` (Octopush) selects it."""
    consent = {"status": True, "limitation": False, "objection": False}
    return {
        "id": cid,
        "externalId": f"CRM-B-{n:04d}",
        "nodeId": DEFAULT_NODE_ID,
        "base": {
            "firstName": f"Name{n}",
            "lastName": "Rossi",
            "contacts": {"email": email, "mobilePhone": phone},
            "address": {"city": "Torino", "zip": "10121", "country": "IT"},
        },
        "consents": {
            "marketing": {
                "automatic": {
                    "email": dict(consent),
                    "sms": dict(consent) if vip else {**consent, "status": False},
                }
            }
        },
        "extended": {"loyaltyTier": "silver"},
        "tags": {"auto": ["web"], "manual": ["vip"] if vip else []},
        "enabled": True,
        "registeredAt": "2026-01-01T09:00:00.000+0000",
        "updatedAt": "2026-01-01T09:00:00.000+0000",
        "version": 0,
        "deleted": 0,
    }


def wait_for(check: Callable[[], T | None], what: str) -> T:
    """Poll ``check`` until it returns a value (a hang guard only, no speed assertion)."""
    deadline = time.monotonic() + HANG_GUARD
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {HANG_GUARD:.0f} s: {what}")
        time.sleep(0.2)


class Daemon:
    """``syncer run`` as a subprocess, its stderr in a file (a full pipe never blocks it)."""

    def __init__(self, root: Path, cluster: SandboxCluster) -> None:
        ws = write_config(root, cluster, {"token": "${SYNCER_T}", "operator_token": "${SYNCER_O}"})
        doc = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
        doc["source"]["poll_interval"] = "300ms"
        # a target that answers 503 dead-letters at once (the story needs no retry wait)
        doc["targets"]["octo"]["max_attempts"] = 1
        doc["engine"] = {"backoff_base": "100ms", "backoff_max": "500ms"}
        ws.config_path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        self.base = "http://" + doc["metrics"]["address"]
        self.err_path = root / "run.err"
        env = {**os.environ, **ws.env, "SYNCER_T": READ, "SYNCER_O": OPERATOR}
        with self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [SYNCER, "run", "--config", str(ws.config_path)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
            )

    def ready(self) -> bool | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"syncer run exited {self.proc.returncode}: {self.stderr}")
        try:
            return httpx.get(self.base + "/readyz", timeout=5).status_code == 200 or None
        except httpx.TransportError:
            return None

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture
def sandbox() -> Iterator[SandboxCluster]:
    with SandboxCluster() as cluster:
        docs = [customer(VIP, 0, VIP_EMAIL, VIP_PHONE, vip=True)]
        docs += [
            customer(cid, i + 1, f"news{i}@example.it", f"+39 347 000 10{i:02d}", vip=False)
            for i, cid in enumerate(NEWS)
        ]
        cluster.contacthub.load({"customers": docs, "events": [], "append_updates": True})
        yield cluster


@pytest.fixture
def daemon(tmp_path: Path, sandbox: SandboxCluster) -> Iterator[Daemon]:
    running = Daemon(tmp_path, sandbox)
    try:
        wait_for(running.ready, "syncer run ready")
        yield running
    finally:
        code = running.stop()
    err = running.stderr
    assert code == 0, err[-3000:]
    assert READ not in err and OPERATOR not in err  # no token ever reaches the log


def sim_state(cluster: SandboxCluster, name: str) -> Any:
    response = httpx.get(cluster.urls[name] + "/_sandbox/state", timeout=30)
    response.raise_for_status()
    return response.json()


def nrs_contact(cluster: SandboxCluster, email: str) -> dict[str, Any] | None:
    found = [c for c in sim_state(cluster, "nrs360")["contacts"] if c.get("email") == email]
    assert len(found) <= 1, found
    return found[0] if found else None


def octo_contact(cluster: SandboxCluster, e164: str) -> dict[str, Any] | None:
    contact: dict[str, Any] | None = sim_state(cluster, "octopush")["contacts"].get(e164)
    return contact


def count(page: Any, selector: str) -> int:
    return int(page.locator(selector).inner_text().replace(",", ""))


def pending_of(page: Any, target: str) -> int:
    """The pending count of ``target`` on the Targets page."""
    return count(page, f"#target-{target} td.state-pending")


def idle(page: Any, target: str) -> bool:
    """Nothing of ``target`` queued, in flight or waiting for a retry (Targets page)."""
    return all(
        count(page, f"#target-{target} td.state-{s}") == 0
        for s in ("pending", "in_flight", "failed")
    )


def reload_until(page: Any, check: Callable[[], T | None], what: str) -> T:
    def again() -> T | None:
        page.reload()
        return check()

    return wait_for(again, what)


def test_operator_story_against_a_running_daemon(
    daemon: Daemon, sandbox: SandboxCluster, tmp_path: Path
) -> None:
    cluster = sandbox
    # the daemon's first sync: every customer reaches 360NRS, the VIP reaches Octopush too
    emails = [VIP_EMAIL] + [f"news{i}@example.it" for i in range(5)]

    def first_sync() -> bool | None:
        in_nrs = all(nrs_contact(cluster, e) is not None for e in emails)
        return (in_nrs and octo_contact(cluster, VIP_E164) is not None) or None

    wait_for(first_sync, "the first sync delivered")
    # Octopush goes down, then the VIP changes: only its Octopush row can fail
    set_outage(cluster, "octopush", True)
    patch_customer(cluster, VIP, {"base": {"firstName": "Vittoria"}})

    errors: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            # a CSP violation or a script error shows up here: none may happen
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            base = daemon.base

            # a token is configured: even loopback gets the login page first
            first = page.goto(base + "/")
            assert first is not None and first.status == 401
            assert page.locator("input[name=token]").count() == 1
            errors.clear()  # the 401 itself is logged as a failed resource load
            page.fill("input[name=token]", OPERATOR)
            page.click("button:has-text('Log in')")
            assert page.url == base + "/"
            assert page.locator(".badge.op").inner_text() == "operator_token"

            # overview: the daemon dead-lettered the VIP's Octopush row (exactly that one)
            reload_until(page, lambda: count(page, "#dead-count") == 1 or None, "one dead letter")
            # Octopush delivered the VIP once; its dead letter is not counted as done
            assert count(page, "#overview-octo td.done-last-hour") == 1
            assert count(page, "#overview-octo td.state-dead") == 1
            # a dead count is red only when there is one
            red = "rgb(179, 38, 30)"  # --bad in console.css
            dead_nrs = page.locator("#overview-nrs td.state-dead")
            assert dead_nrs.inner_text() == "0"
            assert dead_nrs.evaluate("e => getComputedStyle(e).color") != red
            assert (
                page.locator("#overview-octo td.state-dead").evaluate(
                    "e => getComputedStyle(e).color"
                )
                == red
            )
            page.click("a.card[href='/dead-letters']")
            group = page.locator("table.groups a", has_text="503")
            assert group.count() == 1
            group.first.click()
            rows = page.locator("table.rows tbody tr")
            assert rows.count() == 1
            row = rows.first
            delivery_id = int(row.locator("td").first.inner_text())
            assert "octo" in row.inner_text() and "503" in row.inner_text()
            row.locator("a.record-link").click()
            assert page.url == f"{base}/records/{VIP}"
            record_url = page.url

            # the record: its reason, and the record syncer sends to Octopush
            dead = page.locator(f"#delivery-{delivery_id}")
            assert "dead" in dead.inner_text() and "503" in dead.inner_text()
            sms = page.locator("table.decisions tr", has_text="sms-vip")
            assert "selected" in sms.inner_text()
            sent = sms.locator("pre.payload").inner_text()
            assert f'"phone_number": "{VIP_E164}"' in sent and '"first_name": "Vittoria"' in sent
            assert '"list": "VIP IT"' in sent
            assert "503" in page.locator("table.log").inner_text()  # Octopush's answer
            assert octo_contact(cluster, VIP_E164)["first_name"] == "Name0"  # nothing arrived

            # Octopush is back; retry: the confirmation first, then the action
            set_outage(cluster, "octopush", False)
            dead.locator("button[data-op=retry]").click()
            assert (
                f"Retry dead letter {delivery_id}: 1 row(s)?"
                in page.locator(".question").inner_text()
            )
            page.click("#confirm")
            assert "1 queued again, 0 closed as superseded" in page.locator(".flash").inner_text()
            assert page.url.startswith(record_url)
            reload_until(
                page,
                lambda: "done" in page.locator(f"#delivery-{delivery_id}").inner_text() or None,
                "the retried row delivered",
            )
            assert page.locator(f"#delivery-{delivery_id} button[data-op=retry]").count() == 0
            # the 503 it died with is now history, not a current error
            reason = page.locator(f"#delivery-{delivery_id} td.reason").inner_text()
            assert reason.startswith("earlier attempt: gave up after 1 attempts")
            assert "503" in reason
            assert octo_contact(cluster, VIP_E164)["first_name"] == "Vittoria"
            # each delivery's log lines: what was sent (the 503 attempt and the retry sent
            # the same record) and the record the retry landed on
            lines = page.locator("table.log tbody tr").filter(
                has=page.locator("td.num", has_text=str(delivery_id))
            )
            answers = [tr.inner_text() for tr in lines.all()]
            assert len(answers) == 2
            assert any("503" in a for a in answers) and any("updated" in a for a in answers)
            for tr in lines.all():
                tr.locator("details.sent summary").click()
                sent = tr.locator("details.sent pre").inner_text()
                assert '"first_name": "Vittoria"' in sent and '"list": "VIP IT"' in sent
                assert '"action": "upsert"' in sent
            landed = lines.filter(has_text="updated").first
            assert VIP_E164 in landed.locator("td.mono").inner_text()

            # the record debugger's search by e-mail (the search ignores case)
            page.click("nav a[href='/records']")
            page.fill("input[name=q]", VIP_EMAIL.upper())
            page.click("button:has-text('Search')")
            hits = page.locator("table.hits a.hit")
            assert hits.count() == 1 and hits.first.inner_text() == VIP
            hits.first.click()
            timeline = page.locator("table.timeline tbody tr")
            assert timeline.count() == 2  # the load and the change, newest first
            # the target ids: 360NRS's contact id as the simulator has it, Octopush's number
            ids = {
                tr.locator("td").nth(0).inner_text(): tr.locator("td").nth(1).inner_text()
                for tr in page.locator("table.idmap tbody tr").all()
            }
            nrs_vip = nrs_contact(cluster, VIP_EMAIL)
            assert nrs_vip is not None
            assert ids["nrs"] == str(nrs_vip["id"])
            assert VIP_E164 in ids["octo"]
            page.screenshot(path=str(tmp_path / "record.png"), full_page=True)

            # pause 360NRS from the Targets page (confirming)
            page.click("nav a[href='/targets']")
            reload_until(page, lambda: idle(page, "nrs") or None, "nrs idle")
            done_before = count(page, "#target-nrs td.state-done")
            page.click("#target-nrs button[data-op=pause]")
            assert "Pause target nrs?" in page.locator(".question").inner_text()
            page.click("#confirm")
            assert "nrs: paused" in page.locator(".flash").inner_text()
            assert page.locator("#target-nrs .badge.warn").inner_text() == "paused"

            # three newsletter customers change, and the VIP (both targets): 360NRS's queue
            # grows while it is paused; Octopush delivers the VIP's change meanwhile
            for cid in NEWS[:3]:
                patch_customer(cluster, cid, {"base": {"firstName": "Paused"}})
            patch_customer(cluster, VIP, {"base": {"lastName": "Bianchi"}})
            reload_until(page, lambda: pending_of(page, "nrs") == 4 or None, "nrs queue of 4")
            wait_for(
                lambda: octo_contact(cluster, VIP_E164)["last_name"] == "Bianchi" or None,
                "Octopush got the VIP's change",
            )
            page.reload()
            assert pending_of(page, "nrs") == 4  # the daemon kept delivering, not to 360NRS
            assert [nrs_contact(cluster, f"news{i}@example.it")["name"] for i in range(3)] == [
                "Name1",
                "Name2",
                "Name3",
            ]
            page.screenshot(path=str(tmp_path / "targets.png"), full_page=True)

            # resume: the queue drains, the changes reach 360NRS
            page.click("#target-nrs button[data-op=resume]")
            page.click("#confirm")
            assert "nrs: resumed" in page.locator(".flash").inner_text()
            reload_until(page, lambda: idle(page, "nrs") or None, "nrs queue drained")
            assert count(page, "#target-nrs td.state-done") == done_before + 4
            assert page.locator("#target-nrs .badge.ok").inner_text() == "running"
            assert [nrs_contact(cluster, f"news{i}@example.it")["name"] for i in range(3)] == [
                "Paused"
            ] * 3
            assert nrs_contact(cluster, VIP_EMAIL)["surname"] == "Bianchi"
            page.goto(base + "/")
            assert count(page, "#dead-count") == 0
        finally:
            browser.close()
    assert errors == []
    # syncer run off a TTY logs JSON lines, the console's among them (stderr is line-buffered:
    # the lines so far are whole); its audit trail names who did what
    lines = daemon.stderr.splitlines()
    assert lines and [line for line in lines if not line.startswith("{")] == []
    audit = [r for r in map(json.loads, lines) if r["event"] == "console action"]
    assert [(r["who"], r["action"]) for r in audit] == [
        ("operator_token", "dlq_retry"),
        ("operator_token", "target_pause"),
        ("operator_token", "target_resume"),
    ], audit
