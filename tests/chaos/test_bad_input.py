"""Bad input over real HTTP, through the real ``syncer`` binary, with all three target types.

* Customers (and orders) with malformed, huge (64 kB) or unexpected payloads, loaded into the
  Contacthub simulator unvalidated and mixed with good ones: after ``syncer sync --once`` every
  bad record is dead with a reason (``syncer dlq list --json``) in exactly the pipelines it is
  bad for, and everything else in the same page and batch reached the targets, exactly as sent
  (non-Latin names, emoji, phones in every format normalised to E.164).
* A Contacthub that answers HTML, truncated JSON, an offset that goes backwards or a page with
  a malformed update, for a while, under a running ``syncer run``: the daemon keeps running,
  the committed offset never moves backwards, and once the source behaves again everything
  is read and delivered: nothing lost.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from sandbox_env import (
    STREAM,
    cli,
    config_doc,
    customer,
    json_lines,
    order,
    sandbox,
    start,
    wait_for,
    write_config,
)
from sqlalchemy import create_engine, text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BIG = "x" * 65_536


def _with(n: int, **changes: Any) -> dict[str, Any]:
    """A good customer with ``changes`` (``a__b`` keys set nested values)."""
    doc = customer(n)
    for key, value in changes.items():
        node, parts = doc, key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return doc


# name -> (document, {pipeline: reason snippet} it must be dead in)
BAD: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "huge name": (
        _with(101, base__firstName=BIG),
        {"newsletter": "name field must not be greater than 255 characters"},
    ),
    "nulls everywhere": (
        _with(
            102,
            base={
                "firstName": None,
                "lastName": None,
                "contacts": {"email": None, "mobilePhone": None},
                "address": None,
            },
            extended=None,
        ),
        {"sms-vip": "no key field: Octopush needs a value in one of: phone_number"},
    ),
    "base is a list": (
        _with(103, base=[1, 2]),
        {"sms-vip": "no key field: Octopush needs a value in one of: phone_number"},
    ),
    "contacts is a string": (
        _with(104, base__contacts="n/a"),
        {"sms-vip": "no key field: Octopush needs a value in one of: phone_number"},
    ),
    "email is a number": (
        _with(105, base__contacts__email=12345),
        {"newsletter": "360NRS 422: The email field must be a valid email address."},
    ),
    "email is a list": (
        _with(106, base__contacts__email=["a@example.com"]),
        {"newsletter": "field 'email': lower: expected a single value, got a list"},
    ),
    "phone is an object": (
        _with(107, base__contacts__mobilePhone={"n": 1}),
        # the example's 360NRS phone is optional: that contact goes without it (PHONE_OPTIONAL)
        {"sms-vip": "phone {'n': 1} is not a valid number (not text)"},
    ),
    "invalid email": (
        _with(108, base__contacts__email="not-an-email"),
        {"newsletter": "360NRS 422: The email field must be a valid email address."},
    ),
    "too short phone": (
        _with(109, base__contacts__mobilePhone="12"),
        {"sms-vip": "field 'phone_number': phone '12' is not a valid number"},
    ),
    "landline for 360NRS": (
        _with(110, base__contacts__mobilePhone="+39 06 6982 1234"),
        {},
    ),
}
# bad phones the example's newsletter marks optional: delivered to 360NRS without a phone
PHONE_OPTIONAL = ("phone is an object", "too short phone", "landline for 360NRS")


def _phone(n: int, raw: str, **changes: Any) -> tuple[dict[str, Any], str]:
    return _with(n, base__contacts__mobilePhone=raw, **changes), f"Good{n}"


def _named(n: int, first: str, **changes: Any) -> tuple[dict[str, Any], str]:
    return _with(n, base__firstName=first, **changes), first


# name -> (document, expected first name in 360NRS and Octopush, expected E.164 phone)
UNEXPECTED: dict[str, tuple[dict[str, Any], str, str]] = {
    name: (*made, phone)
    for name, made, phone in [
        ("spaces", _phone(201, "+39 347 123 4567"), "+393471234567"),
        ("00 prefix", _phone(202, "0039 347 1234568"), "+393471234568"),
        ("national", _phone(203, "347 123 4569"), "+393471234569"),
        ("dashes", _phone(204, "+39-347-123-4570"), "+393471234570"),
        ("brackets", _phone(205, "(347) 123-4571"), "+393471234571"),
        (
            "french, country by name",
            _phone(206, "06 12 34 56 78", base__address__country="France"),
            "+33612345678",
        ),
        ("cyrillic", _named(207, "Дмитрий", base__lastName="Шостакович"), "+393470000207"),
        ("cjk", _named(208, "山田", base__lastName="太郎"), "+393470000208"),
        ("arabic", _named(209, "محمد"), "+393470000209"),
        ("emoji", _named(210, "😀 Smile 🎉"), "+393470000210"),
        (
            "unknown fields",
            _named(
                211,
                "Good211",
                weird={"a": [1, {"b": None}]},
                base__unknownField=True,
                extended={"x": BIG},
            ),
            "+393470000211",
        ),
        (
            "+0000 dates, odd version",
            _named(212, "Good212", version="v7", updatedAt="2024-06-01T10:00:00.000+0000"),
            "+393470000212",
        ),
    ]
}


def _dead(cfg: Path) -> dict[tuple[str, str], str]:
    listed = cli(cfg, "dlq", "list", "--all", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["records"]
    return {(d["entity_id"], d["pipeline"]): d["error"] for d in rows}


def test_bad_customers_end_dead_with_a_reason_and_good_ones_are_delivered(
    tmp_path: Path,
) -> None:
    good = [customer(n) for n in range(1, 6)]
    bad = {name: doc for name, (doc, _) in BAD.items()}
    odd = {name: doc for name, (doc, _, _) in UNEXPECTED.items()}
    customers = [*good[:3], *bad.values(), *odd.values(), *good[3:]]  # one page, mixed
    orders = [order(n, c["id"]) for n, c in enumerate(good, start=1)]
    bad_orders = {
        "order date not a date": (
            order(90, good[0]["id"], date="not a date"),
            "field '1004': date 'not a date' is not an ISO 8601 date or epoch milliseconds",
        ),
        "order of a customer without email": (
            order(91, bad["nulls everywhere"]["id"]),
            "no value for the NP6 unicity field 1001",
        ),
        "order of a customer with an invalid email": (
            order(92, bad["invalid email"]["id"]),
            "field 1001: invalid email: 'not-an-email'",
        ),
    }
    odd_order = order(93, odd["emoji"]["id"], properties=None, date="2024-05-02T23:30:00-0200")
    events = orders[:2] + [e for e, _ in bad_orders.values()] + [odd_order] + orders[2:]
    with sandbox() as sb:
        sb.load(customers, events)
        cfg = write_config(tmp_path / "syncer.yaml", config_doc(sb, f"sqlite:///{tmp_path}/s.db"))
        once = cli(cfg, "sync", "--once")
        assert once.returncode == 1, once.stderr[-3000:]  # records died: never reported clean
        assert "Traceback" not in once.stderr
        dead = _dead(cfg)

        expected = {
            (doc["id"], pipeline): reason
            for doc, reasons in BAD.values()
            for pipeline, reason in reasons.items()
        }
        expected |= {(e["id"], "orders-np6"): reason for e, reason in bad_orders.values()}
        assert set(dead) == set(expected), "dead letters are exactly the bad records"
        for key, reason in expected.items():
            assert reason in dead[key], (key, dead[key])

        nrs = {c["email"]: c for c in sb.state("nrs360")["contacts"]}
        octo = sb.state("octopush")["contacts"]
        delivered = [*good, *odd.values()]
        # 360NRS: the good and the odd ones, nothing else (the bad ones are dead or were never
        # selected: no email, no consent readable)
        optional = [BAD[name][0]["base"]["contacts"]["email"] for name in PHONE_OPTIONAL]
        assert set(nrs) == {c["base"]["contacts"]["email"] for c in delivered} | set(optional)
        for email in optional:
            assert nrs[email].get("phone") in (None, ""), nrs[email]
        # Octopush: also the bad ones whose problem is not in what Octopush gets
        also = ["huge name", "email is a number", "email is a list", "invalid email"]
        phones = {"+390669821234"} | {f"+39347{n:07d}" for n in (101, 105, 106, 108)}
        assert (
            set(octo)
            == {p for _, _, p in UNEXPECTED.values()}
            | {c["base"]["contacts"]["mobilePhone"] for c in good}
            | phones
        ), also
        assert octo["+393470000101"]["first_name"] == BIG  # 64 kB: Octopush took it whole
        for doc, first, phone in UNEXPECTED.values():
            contact = nrs[doc["base"]["contacts"]["email"]]
            assert (contact["name"], contact["phone"]) == (first, phone.lstrip("+"))
            assert octo[phone]["first_name"] == first
            assert octo[phone]["lists"] == (
                ["VIP FR"] if doc["base"]["address"]["country"] == "France" else ["VIP IT"]
            )
        for doc in good:
            contact = nrs[doc["base"]["contacts"]["email"]]
            assert {g["name"] for g in contact["groups"]} == {"Country IT", "Newsletter"}
            assert contact["customFields"] == [
                {"key": "loyalty_tier", "type": "string", "value": "gold"}
            ]
            assert (
                octo[doc["base"]["contacts"]["mobilePhone"]]["first_name"]
                == doc["base"]["firstName"]
            )
        np6 = {t["fields"]["1001"]: t["fields"] for t in sb.state("np6")["targets"]}
        assert set(np6) == {c["base"]["contacts"]["email"] for c in good} | {"good210@example.com"}
        for n, doc in enumerate(good, start=1):  # the dead order 90 changed nothing
            assert np6[doc["base"]["contacts"]["email"]] == {
                "1001": doc["base"]["contacts"]["email"],
                "1002": f"ORD-{n}",
                "1003": 10.5 + n,
                "1004": "2024-05-02T00:00:00Z",
            }
        # an order without properties and a -0200 offset: the date as written, nothing else
        assert np6["good210@example.com"] == {
            "1001": "good210@example.com",
            "1004": "2024-05-02T00:00:00Z",
        }
        # the next run has nothing new to do and reports clean: the dead stay dead, untouched
        again = cli(cfg, "sync", "--once")
        assert again.returncode == 0, again.stdout + again.stderr[-2000:]
        assert _dead(cfg) == dead


# -- a misbehaving Contacthub ---------------------------------------------------------------


class Misbehave:
    """ASGI wrapper around the Contacthub simulator: while ``mode`` is set, answers of
    ``GET .../updates`` are rewritten: ``html`` (a proxy's error page with status 200),
    ``truncated`` (the first half of the JSON), ``backwards`` (``nextOffset`` below the offset
    asked for, with the page's updates), ``malformed`` (an extra update that is not an update).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.mode: str | None = None
        self.rewritten = 0
        self.lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mode = self.mode
        if scope["type"] != "http" or mode is None or not scope["path"].endswith("/updates"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        if start.get("status") == 200:
            body = self._rewrite(mode, body, scope)
            with self.lock:
                self.rewritten += 1
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        if mode == "html":
            headers = [(k, v) for k, v in headers if k.lower() != b"content-type"]
            headers.append((b"content-type", b"text/html"))
        await send(
            {"type": "http.response.start", "status": start.get("status", 500), "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _rewrite(mode: str, body: bytes, scope: Scope) -> bytes:
        if mode == "html":
            return b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
        if mode == "truncated":
            return body[: len(body) // 2]
        page = orjson.loads(body)
        if mode == "backwards":
            query = dict(
                p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p
            )
            page["nextOffset"] = max(0, int(query.get("offset", "0")) - 3)
        elif mode == "malformed":
            page["updates"] = [{"operation": "CREATE"}, *page["updates"], {"entity": "??"}]
        return orjson.dumps(page)


def _offset(engine: Any) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            text('SELECT "offset" FROM checkpoints WHERE stream = :s'), {"s": STREAM}
        ).scalar()
    return int(value or 0)


def test_a_misbehaving_contacthub_never_crashes_the_daemon_nor_moves_the_offset_back(
    tmp_path: Path,
) -> None:
    wrapper: list[Misbehave] = []

    def wrap(app: ASGIApp) -> ASGIApp:
        wrapper.append(Misbehave(app))
        return wrapper[0]

    state = f"sqlite:///{tmp_path}/s.db"
    with sandbox(wrap_contacthub=wrap) as sb:
        bad = wrapper[0]
        doc = config_doc(sb, state, page_size=20)
        cfg = write_config(tmp_path / "syncer.yaml", doc)
        sb.load([customer(n) for n in range(1, 41)])
        daemon = start(cfg, "run")
        engine = create_engine(state)
        seen: list[int] = []
        watching = threading.Event()

        def watch() -> None:  # the offset as often as we can read it, for the whole run
            while not watching.is_set():
                with contextlib.suppress(Exception):  # tables not created yet
                    seen.append(_offset(engine))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            wait_for(lambda: _offset_or_0(engine) == 40, 60, "first 40 updates read")
            n = 41
            for mode in ("html", "truncated", "backwards", "malformed", "html"):
                bad.mode = mode
                sb.load([customer(n + i) for i in range(25)])  # the stream grows meanwhile
                n += 25
                before = bad.rewritten
                wait_for(lambda b=before: bad.rewritten >= b + 2, 60, f"{mode} answers served")
                assert daemon.alive(), f"the daemon died under {mode!r} answers"
                bad.mode = None
            last = n - 1
            total = len(sb.contacthub.workspaces[sb.contacthub.workspace_id].updates)
            wait_for(lambda: _offset_or_0(engine) >= total, 90, "the daemon caught up")
            wait_for(lambda: len(sb.state("nrs360")["contacts"]) == last, 90, "all delivered")
            assert daemon.alive()
        finally:
            watching.set()
            watcher.join()
            code, _, err = daemon.stop()
            engine.dispose()
        assert code == 0, err[-3000:]
        assert all(a <= b for a, b in itertools.pairwise(seen)), "offset moved back"
        events = json_lines(err)
        assert not [e for e in events if e.get("event") == "job crashed, retried next time"]
        assert any(
            e.get("event") == "malformed stream update recorded, not applied" for e in events
        )
        assert any(e.get("event", "").startswith("stream page not applied") for e in events)
        assert "Traceback" not in err
        engine = create_engine(state)
        with engine.connect() as conn:
            ids = (
                conn.execute(text("SELECT entity_id FROM inbox WHERE entity_type = 'customer'"))
                .scalars()
                .all()
            )
        engine.dispose()
        assert {customer(i)["id"] for i in range(1, last + 1)} <= set(ids), "nothing lost"
        emails = {c["email"] for c in sb.state("nrs360")["contacts"]}
        assert emails == {f"good{i}@example.com" for i in range(1, last + 1)}


def _offset_or_0(engine: Any) -> int:
    try:
        return _offset(engine)
    except Exception:
        return 0
