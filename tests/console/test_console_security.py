"""The console's access rules, CSRF, headers and secrets, over the ASGI app itself.

A non-loopback client is simulated with httpx's ASGI transport, which hands the app the
client address we choose (``scope["client"]``), exactly what uvicorn passes from the socket.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from syncer.config.models import SyncerConfig
from syncer.console import ConsoleSettings, console_app
from syncer.console.pause import is_paused
from syncer.state import search_ops
from syncer.state.schema import deliveries, entities
from syncer.state.store import Store

LOOPBACK = ("127.0.0.1", 40000)
REMOTE = ("203.0.113.9", 40000)
READ, OPERATOR = "read-token-7f3a", "operator-token-91c2"
NRS_PASSWORD = "nrs-secret-pw-5521"
OCTO_KEY = "octo-secret-key-8810"


def config(state: str) -> SyncerConfig:
    return SyncerConfig.model_validate(
        {
            "version": 1,
            "state": {"url": state},
            "source": {
                "type": "contacthub",
                "base_url": "http://127.0.0.1:1/hub/v1",
                "workspace_id": "w",
                "node_id": "n",
                "token": "ch-secret-token-1234",
            },
            "targets": {
                "nrs": {
                    "type": "360nrs",
                    "base_url": "http://user:pw-in-url@127.0.0.1:1/api/rest",
                    "username": "u",
                    "api_password": NRS_PASSWORD,
                },
                "octo": {
                    "type": "octopush",
                    "base_url": "http://127.0.0.1:1/v1/public",
                    "api_login": "a@example.com",
                    "api_key": OCTO_KEY,
                },
            },
            "pipelines": [
                {
                    "name": "newsletter",
                    "target": "nrs",
                    "entity": "customer",
                    "when": {"present": ["base.contacts.email"]},
                    "fields": {"email": "base.contacts.email"},
                },
                {
                    "name": "sms",
                    "target": "octo",
                    "entity": "customer",
                    "fields": {"phone_number": "base.contacts.mobilePhone"},
                    "list": "all",
                },
            ],
        }
    )


@pytest.fixture
def state(tmp_path: Path) -> Iterator[tuple[Store, SyncerConfig]]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store(url)
    now = time.time()
    with store.transaction() as conn:
        conn.execute(
            insert(entities),
            [
                {
                    "entity_type": "customer",
                    "entity_id": f"c{i}",
                    "customer_id": None,
                    "payload": json.dumps(
                        {"id": f"c{i}", "base": {"contacts": {"email": f"p{i}@example.com"}}}
                    ),
                    "version": 1,
                    "updated_at": "2026-01-01",
                    "deleted": False,
                }
                for i in range(3)
            ],
        )
        # what the daemon's search job writes from the inbox
        search_ops.add_keys(conn, [(f"email:p{i}@example.com", f"c{i}") for i in range(3)])
        conn.execute(
            insert(deliveries),
            [
                {
                    "pipeline": "newsletter",
                    "target": "nrs",
                    "entity_type": "customer",
                    "entity_id": f"c{i}",
                    "subject_id": f"c{i}",
                    "action": "upsert",
                    "state": "dead",
                    "attempts": 8,
                    "due_at": now,
                    "created_at": now,
                    "updated_at": now,
                    "last_error": "360NRS 503: Service unavailable",
                }
                for i in range(3)
            ],
        )
    yield store, config(url)
    store.close()


def settings(token: str | None = READ, operator: str | None = OPERATOR) -> ConsoleSettings:
    return ConsoleSettings(token=token, operator_token=operator)


def run(app: Any, client: tuple[str, int], steps: Any) -> Any:
    """Run ``steps(http)`` with an httpx client on ``app`` as seen from ``client``."""

    async def main() -> Any:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
            return await steps(http)

    return asyncio.run(main())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def dead_states(store: Store) -> list[str]:
    with store.reader() as conn:
        return list(conn.execute(select(deliveries.c.state).order_by(deliveries.c.id)).scalars())


def test_no_token_configured_loopback_reads_remote_gets_401(state: Any) -> None:
    store, cfg = state
    app = console_app(store, cfg, settings(token=None, operator=None))

    async def get(http: httpx.AsyncClient) -> tuple[int, int]:
        page = await http.get("/", headers={"accept": "text/html"})
        plain = await http.get("/dead-letters")
        return page.status_code, plain.status_code

    assert run(app, LOOPBACK, get) == (200, 200)
    assert run(app, REMOTE, get) == (401, 401)
    # a token only counts when configured: an unconfigured console takes none
    remote = run(app, REMOTE, lambda h: h.get("/", headers={"authorization": "Bearer x"}))
    assert remote.status_code == 401


def test_token_configured_required_from_anywhere_and_login(state: Any) -> None:
    store, cfg = state
    app = console_app(store, cfg, settings())

    async def flow(http: httpx.AsyncClient) -> list[int]:
        codes = [(await http.get("/")).status_code]
        codes.append((await http.get("/", headers={"authorization": "Bearer wrong"})).status_code)
        codes.append((await http.get("/", headers={"authorization": f"Bearer {READ}"})).status_code)
        login = await http.get("/login")
        codes.append(login.status_code)
        wrong = await http.post("/login", data={"csrf": csrf_of(login.text), "token": "nope"})
        codes.append(wrong.status_code)
        ok = await http.post("/login", data={"csrf": csrf_of(login.text), "token": READ})
        codes.append(ok.status_code)
        codes.append((await http.get("/pipelines")).status_code)  # the session cookie
        return codes

    assert run(app, LOOPBACK, flow) == [401, 401, 200, 200, 401, 303, 200]
    assert run(app, REMOTE, flow) == [401, 401, 200, 200, 401, 303, 200]


def test_read_only_token_gets_403_on_every_action(state: Any) -> None:
    store, cfg = state
    app = console_app(store, cfg, settings())
    auth = {"authorization": f"Bearer {READ}"}

    async def act(http: httpx.AsyncClient) -> list[int]:
        csrf = csrf_of((await http.get("/dead-letters", headers=auth)).text)
        posts = [
            ("/dead-letters/action", {"op": "retry", "id": "1", "confirm": "yes"}),
            ("/dead-letters/action", {"op": "discard", "confirm": "yes"}),
            ("/targets/nrs", {"op": "pause", "confirm": "yes"}),
            ("/targets/nrs", {"op": "check"}),
        ]
        return [
            (await http.post(url, data={**data, "csrf": csrf}, headers=auth)).status_code
            for url, data in posts
        ]

    assert run(app, REMOTE, act) == [403, 403, 403, 403]
    assert dead_states(store) == ["dead", "dead", "dead"]
    assert not is_paused(store, "nrs")
    # loopback without a token configured is read-only too: actions need the operator token
    app = console_app(store, cfg, settings(token=None, operator=None))
    assert run(app, LOOPBACK, lambda h: act_plain(h)) == 403
    assert dead_states(store) == ["dead", "dead", "dead"]


async def act_plain(http: httpx.AsyncClient) -> int:
    csrf = csrf_of((await http.get("/dead-letters")).text)
    data = {"op": "retry", "id": "1", "confirm": "yes", "csrf": csrf}
    return (await http.post("/dead-letters/action", data=data)).status_code


def test_post_without_or_with_forged_csrf_is_refused(state: Any) -> None:
    store, cfg = state
    app = console_app(store, cfg, settings())
    auth = {"authorization": f"Bearer {OPERATOR}"}

    async def forged(http: httpx.AsyncClient) -> list[int]:
        await http.get("/dead-letters", headers=auth)  # gets a CSRF cookie
        data = {"op": "retry", "id": "1", "confirm": "yes"}
        missing = await http.post("/dead-letters/action", data=data, headers=auth)
        wrong = await http.post(
            "/dead-letters/action", data={**data, "csrf": "0" * 64}, headers=auth
        )
        pause = await http.post(
            "/targets/nrs", data={"op": "pause", "confirm": "yes"}, headers=auth
        )
        return [missing.status_code, wrong.status_code, pause.status_code]

    assert run(app, LOOPBACK, forged) == [403, 403, 403]

    async def other_session(http: httpx.AsyncClient) -> int:
        # a token valid for another browser's CSRF cookie is no good with this one's
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=LOOPBACK), base_url="http://console"
        ) as other:
            stolen = csrf_of((await other.get("/dead-letters", headers=auth)).text)
        await http.get("/dead-letters", headers=auth)
        data = {"op": "retry", "id": "1", "confirm": "yes", "csrf": stolen}
        return (await http.post("/dead-letters/action", data=data, headers=auth)).status_code

    assert run(app, LOOPBACK, other_session) == 403
    assert dead_states(store) == ["dead", "dead", "dead"]
    assert not is_paused(store, "nrs")


def test_operator_retries_with_confirmation_and_pauses(
    state: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store, cfg = state
    app = console_app(store, cfg, settings())
    auth = {"authorization": f"Bearer {OPERATOR}"}

    async def act(http: httpx.AsyncClient) -> list[Any]:
        csrf = csrf_of((await http.get("/dead-letters", headers=auth)).text)
        data = {"op": "retry", "id": "2", "csrf": csrf, "back": "/dead-letters"}
        ask = await http.post("/dead-letters/action", data=data, headers=auth)
        states_after_ask = dead_states(store)
        done = await http.post(
            "/dead-letters/action", data={**data, "confirm": "yes"}, headers=auth
        )
        pause = await http.post(
            "/targets/octo", data={"op": "pause", "confirm": "yes", "csrf": csrf}, headers=auth
        )
        return [
            ask.status_code,
            "Retry dead letter 2" in ask.text,
            states_after_ask,
            done.status_code,
            done.headers.get("location", ""),
            pause.status_code,
        ]

    ask, asked, before, done, location, pause = run(app, LOOPBACK, act)
    assert (ask, asked, before) == (200, True, ["dead", "dead", "dead"])
    assert done == 303 and location.startswith("/dead-letters?flash=")
    assert dead_states(store) == ["dead", "pending", "dead"]
    assert pause == 303 and is_paused(store, "octo") and not is_paused(store, "nrs")


def test_security_headers_and_no_secret_rendered(state: Any) -> None:
    store, cfg = state
    app = console_app(store, cfg, settings(token=None, operator=None))
    pages = [
        "/",
        "/pipelines",
        "/dead-letters",
        "/runs",
        "/records?q=p1@example.com",
        "/records/c1",
        "/erasures",
        "/targets",
        "/login",
    ]

    async def fetch(http: httpx.AsyncClient) -> list[httpx.Response]:
        return [await http.get(p) for p in pages]

    responses = run(app, LOOPBACK, fetch)
    for page, r in zip(pages, responses, strict=True):
        assert r.status_code == 200, (page, r.text[:300])
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp, csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        for secret in (NRS_PASSWORD, OCTO_KEY, "ch-secret-token-1234", "pw-in-url"):
            assert secret not in r.text, (page, secret)
        assert "<script" not in r.text and "style=" not in r.text, page
    assert "p1@example.com" in responses[4].text  # the search finds by e-mail
    assert "/records/c1" in responses[4].text


def test_actions_are_logged_with_who_and_what(
    state: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store, cfg = state
    app = console_app(store, cfg, settings())
    auth = {"authorization": f"Bearer {OPERATOR}"}

    async def act(http: httpx.AsyncClient) -> int:
        csrf = csrf_of((await http.get("/dead-letters", headers=auth)).text)
        data = {"op": "discard", "pipeline": "newsletter", "confirm": "yes", "csrf": csrf}
        return (await http.post("/dead-letters/action", data=data, headers=auth)).status_code

    assert run(app, LOOPBACK, act) == 303
    assert dead_states(store) == ["discarded"] * 3
    out = capsys.readouterr()
    text = out.out + out.err
    line = next(x for x in text.splitlines() if "console action" in x)
    assert "operator_token" in line and "dlq_discard" in line and "newsletter" in line, line
    assert OPERATOR not in text
