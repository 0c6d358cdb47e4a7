"""The whole-system workload of the crash and fault suites, and the end state it must produce.

* :func:`build_dataset`: generated customers (unique e-mails and phones, phones in E.164 or
  none) and events (viewed pages, completed orders, unsubscribes), loaded into Contacthub so
  every one of them is in the update stream.
* :class:`Churn`: a background thread writing to Contacthub over HTTP while syncer runs:
  creates, name/e-mail/phone changes, consent grants and revokes, the ``vip`` tag toggled,
  moves to new countries (so new 360NRS groups and Octopush lists appear mid-run), deletes and
  new orders. Every write is journaled (:class:`Op`).
* :func:`expected_state`: what 360NRS, Octopush and NP6 must hold at the end, folded from the
  data set and the journal with plain Python and ``phonenumbers``: it reads neither the
  engine's code nor the simulators' state. The semantics are those of :data:`PIPELINES`:

  - 360NRS ``newsletter`` (email consent and an e-mail): groups ``Newsletter`` and
    ``Country <COUNTRY>``, ``name``/``surname``; ``vip-mail`` (tag ``vip`` and an e-mail):
    group ``VIP``. A customer in neither has no contact (leaving the last group deletes it);
    a deleted customer has none (both pipelines ``on_delete: delete``).
  - Octopush ``sms-vip`` (sms consent, tag ``vip``, a phone): list ``VIP <COUNTRY>`` holds the
    E.164 phones of its customers; the deleted leave it.
  - NP6 ``orders`` (completed orders of customers with an e-mail): one target per e-mail, whose
    ``orderId`` is that of the e-mail's last order in stream order.

  To keep one right answer, the churn never changes the e-mail of, or deletes, a customer who
  has ordered (NP6 maps the customer's e-mail as known at send time), and e-mails and phones
  stay unique.
* :class:`Sims`: the four simulators served in this process (``ServedApp`` threads), each
  behind a :class:`Tap` that records requests in flight and can hold a response (to land a
  SIGKILL after the target applied a call and before syncer heard of it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import phonenumbers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.contacthub.behaviour import DEFAULT_NODE_ID, DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID
from syncer.sandbox.datagen import generate_customers, generate_events, order_properties
from syncer.sandbox.faults import FaultPlan
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp

SYNCER = str(Path(sys.executable).with_name("syncer"))
WS, NODE, TOKEN = DEFAULT_WORKSPACE_ID, DEFAULT_NODE_ID, DEFAULT_TOKEN
NRS_USER, NRS_PASSWORD = "chaos-user", "chaos-api-password"
OCTO_LOGIN, OCTO_KEY = "chaos@example.com", "chaos-octopush-key"
NP6_KEY = "chaos-np6-key"
ENV = {
    "CH_TOKEN": TOKEN,
    "NRS_USER": NRS_USER,
    "NRS_PASSWORD": NRS_PASSWORD,
    "OCTO_KEY": OCTO_KEY,
    "NP6_KEY": NP6_KEY,
}
NEW_COUNTRIES = ("DE", "PT", "NL", "BE", "AT", "CH", "GR", "PL", "SE", "DK", "IE", "FI")
EMAIL_OK = re.compile(r"^[^@\s;,]+@[^@\s;,.]+(\.[^@\s;,.]+)+$")

PIPELINES = """
pipelines:
  - name: newsletter
    target: nrs
    entity: customer
    when: {consent: marketing.automatic.email, present: [base.contacts.email]}
    fields:
      email: "{{ base.contacts.email | lower | trim }}"
      name: base.firstName
      surname: base.lastName
    groups: [Newsletter, "Country {{ base.address.country | upper }}"]
    on_delete: delete
  - name: vip-mail
    target: nrs
    entity: customer
    when: {tags_any: [vip], present: [base.contacts.email]}
    fields: {email: "{{ base.contacts.email | lower | trim }}"}
    groups: [VIP]
    on_delete: delete
  - name: sms-vip
    target: octo
    entity: customer
    when:
      consent: marketing.automatic.sms
      tags_any: [vip]
      present: [base.contacts.mobilePhone]
    list: "VIP {{ base.address.country | upper }}"
    fields: {phone_number: base.contacts.mobilePhone}
    on_delete: remove_from_list
  - name: orders
    target: np6
    entity: event
    event_types: [completedOrder]
    when: {present: [customer.base.contacts.email]}
    fields:
      "1001": "{{ customer.base.contacts.email | lower | trim }}"
      "1002": properties.orderId
"""


# -- data -----------------------------------------------------------------------------------
def seed(default: int) -> int:
    """The test's seed, or ``SYNCER_CHAOS_SEED`` to explore other workloads and kill times."""
    return int(os.environ.get("SYNCER_CHAOS_SEED") or default)


def e164(raw: Any) -> str | None:
    """A valid international number in E.164, else None (what the data set keeps)."""
    if not isinstance(raw, str) or not raw.strip().startswith("+"):
        return None
    try:
        number = phonenumbers.parse(raw.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def email_key(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    value = raw.strip().lower()
    return value if value and EMAIL_OK.match(value) else None


def build_dataset(
    n_customers: int, n_events: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Customers (unique usable e-mails, unique E.164 phones or none, a country) and events."""
    customers = list(generate_customers(n_customers, seed=seed, node_id=NODE))
    seen: set[str] = set()
    for c in customers:
        contacts = c["base"].setdefault("contacts", {})
        email = email_key(contacts.get("email"))
        contacts["email"] = contacts.get("email") if email and email not in seen else None
        if email:
            seen.add(email)
        phone = e164(contacts.get("mobilePhone"))
        contacts["mobilePhone"] = phone if phone and phone not in seen else None
        if phone:
            seen.add(phone)
        c["base"].setdefault("address", {})["country"] = c["base"]["address"].get("country") or "IT"
    events = list(generate_events(customers, n_events, seed=seed))
    return customers, events


def load_contacthub(url: str, customers: list[Any], events: list[Any]) -> None:
    """Load everything with stream updates (customers first, then events, in list order)."""
    httpx.post(
        url + "/_sandbox/load",
        timeout=300,
        json={"customers": customers, "events": events, "append_updates": True},
    ).raise_for_status()


# -- churn ------------------------------------------------------------------------------------
@dataclass
class Op:
    """One write to Contacthub: ``create`` (body, cid from the answer), ``patch`` (body),
    ``delete``, ``order`` (orderId) or ``event`` (not in any pipeline)."""

    kind: str
    cid: str
    body: dict[str, Any] | None = None
    at: float = 0.0


def merge(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    """PATCH semantics: objects merge key by key, anything else (lists too) replaces."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            merge(doc[key], value)
        else:
            doc[key] = value


def _consent_on(doc: dict[str, Any], channel: str) -> bool:
    leaf = (((doc.get("consents") or {}).get("marketing") or {}).get("automatic") or {}).get(
        channel
    ) or {}
    return leaf.get("status") is True and leaf.get("objection") is not True


def _tags(doc: dict[str, Any]) -> set[str]:
    tags = doc.get("tags") or {}
    return set(tags.get("auto") or []) | set(tags.get("manual") or [])


class Churn:
    """Random writes over HTTP (see the module docstring), in a thread or step by step.

    ``rate``: operations per second when run as a thread (``start``/``stop``)."""

    WEIGHTS: ClassVar[dict[str, int]] = {
        "name": 10,
        "email": 6,
        "phone": 8,
        "consent": 14,
        "tag": 16,
        "country": 6,
        "create": 6,
        "delete": 4,
        "order": 22,
        "event": 8,
    }

    def __init__(
        self,
        ch_url: str,
        customers: list[dict[str, Any]],
        events: list[dict[str, Any]],
        seed: int,
        rate: float = 20.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.rate = rate
        self.http = contacthub_client(ch_url)
        self.model = {c["id"]: _copy(c) for c in customers}
        self.live = list(self.model)
        self.ordered = {e["customerId"] for e in events if e["type"] == "completedOrder"}
        self.journal: list[Op] = []
        self.counter = 0
        self.creates = 0
        self.new_countries = list(NEW_COUNTRIES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # -- running ---------------------------------------------------------------------------
    def start(self) -> Churn:
        self._thread = threading.Thread(target=self._loop, name="churn", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.http.close()
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        try:
            next_at = time.monotonic()
            while not self._stop.is_set():
                self.step()
                next_at += 1.0 / self.rate
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def step(self, n: int = 1) -> None:
        names, weights = list(self.WEIGHTS), list(self.WEIGHTS.values())
        for _ in range(n):
            getattr(self, f"_op_{self.rng.choices(names, weights)[0]}")()

    # -- plumbing --------------------------------------------------------------------------
    def _fresh(self, kind: str) -> str:
        self.counter += 1
        n = self.counter
        if kind == "email":
            return f"churn{self.seed}.{n}@example.org"
        return f"+39350{self.seed % 10}{n:06d}"  # valid Italian mobile numbers, all distinct

    def _pick(self, *, unordered: bool = False) -> str:
        for _ in range(50):
            cid = self.live[self.rng.randrange(len(self.live))]
            if not unordered or cid not in self.ordered:
                return cid
        raise RuntimeError("no customer to pick")

    def _patch(self, cid: str, body: dict[str, Any]) -> None:
        resp = self.http.patch(f"/customers/{cid}", json=body)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        merge(self.model[cid], _copy(body))
        self.journal.append(Op("patch", cid, body, time.time()))

    # -- operations ------------------------------------------------------------------------
    def _op_name(self) -> None:
        cid = self._pick()
        self._patch(cid, {"base": {"firstName": f"Name{self.rng.randrange(10**6)}"}})

    def _op_email(self) -> None:
        cid = self._pick(unordered=True)
        self._patch(cid, {"base": {"contacts": {"email": self._fresh("email")}}})

    def _op_phone(self) -> None:
        cid = self._pick()
        phone = None if self.rng.random() < 0.15 else self._fresh("phone")
        self._patch(cid, {"base": {"contacts": {"mobilePhone": phone}}})

    def _op_consent(self) -> None:
        cid = self._pick()
        channel = self.rng.choice(("email", "sms"))
        grant = not _consent_on(self.model[cid], channel)
        leaf = {"status": grant, "limitation": False, "objection": not grant}
        self._patch(cid, {"consents": {"marketing": {"automatic": {channel: leaf}}}})

    def _op_tag(self) -> None:
        cid = self._pick()
        manual = list((self.model[cid].get("tags") or {}).get("manual") or [])
        manual = [t for t in manual if t != "vip"] if "vip" in manual else [*manual, "vip"]
        self._patch(cid, {"tags": {"manual": manual}})

    def _op_country(self) -> None:
        if not self.new_countries or self.rng.random() < 0.4:
            used = [c for c in NEW_COUNTRIES if c not in self.new_countries]
            country = self.rng.choice([*used, "IT", "FR", "ES"])
            self._patch(self._pick(), {"base": {"address": {"country": country}}})
            return
        # a move to a country nobody had: new group and list in the targets, mid-run
        cid = self._pick()
        doc = self.model[cid]
        contacts = doc["base"].get("contacts") or {}
        body: dict[str, Any] = {"base": {"address": {"country": self.new_countries.pop(0)}}}
        if not email_key(contacts.get("email")) and cid not in self.ordered:
            body["base"]["contacts"] = {"email": self._fresh("email")}
        if not contacts.get("mobilePhone"):
            body["base"].setdefault("contacts", {})["mobilePhone"] = self._fresh("phone")
        on = {"status": True, "limitation": False, "objection": False}
        body["consents"] = {"marketing": {"automatic": {"email": on, "sms": on}}}
        manual = list((doc.get("tags") or {}).get("manual") or [])
        body["tags"] = {"manual": manual if "vip" in manual else [*manual, "vip"]}
        self._patch(cid, body)

    def _op_create(self) -> None:
        doc = next(generate_customers(1, seed=self.rng.randrange(2**31), node_id=NODE))
        doc["base"]["contacts"] = {
            "email": self._fresh("email") if self.rng.random() < 0.9 else None,
            "mobilePhone": self._fresh("phone") if self.rng.random() < 0.8 else None,
        }
        doc["base"]["address"]["country"] = self.rng.choice(["IT", "ES", "FR", *NEW_COUNTRIES])
        body = {k: doc[k] for k in ("nodeId", "base", "consents", "extended", "tags")}
        self.creates += 1
        body["externalId"] = f"CHAOS-{self.seed}-{self.creates:07d}"  # matching key: unique
        resp = self.http.post("/customers", json=body)
        assert resp.status_code == 201, (resp.status_code, resp.text)
        cid = resp.json()["id"]
        self.model[cid] = {"id": cid, **_copy(body)}
        self.live.append(cid)
        self.journal.append(Op("create", cid, body, time.time()))

    def _op_delete(self) -> None:
        cid = self._pick(unordered=True)
        resp = self.http.delete(f"/customers/{cid}")
        assert resp.status_code == 200, (resp.status_code, resp.text)
        self.live.remove(cid)
        self.journal.append(Op("delete", cid, None, time.time()))

    def _op_order(self) -> None:
        cid = self._pick()
        self.counter += 1
        props = order_properties(self.rng, 10**7 + self.seed * 10**5 + self.counter)
        self._event(cid, "completedOrder", "ECOMMERCE", props)
        self.ordered.add(cid)

    def _op_event(self) -> None:
        props = {"url": "https://shop.example.com/sale", "path": "/sale"}
        self._event(self._pick(), "viewedPage", "WEB", props)

    def _event(self, cid: str, kind: str, context: str, props: dict[str, Any]) -> None:
        body = {"customerId": cid, "type": kind, "context": context, "properties": props}
        resp = self.http.post("/events", json=body)
        assert resp.status_code == 202, (resp.status_code, resp.text)
        op = "order" if kind == "completedOrder" else "event"
        self.journal.append(Op(op, cid, body, time.time()))


def contacthub_client(ch_url: str) -> httpx.Client:
    """The workspace's Contacthub API, as the churn writes to it."""
    return httpx.Client(
        base_url=f"{ch_url}/hub/v1/workspaces/{WS}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )


def _copy(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_copy(v) for v in doc]
    return doc


# -- the expected end state -------------------------------------------------------------------
@dataclass
class Expected:
    nrs: dict[str, dict[str, Any]]  # email -> {"groups": set, "name": .., "surname": ..}
    octo: dict[str, set[str]]  # list -> phones
    np6: dict[str, str]  # email -> orderId
    deleted_emails: set[str] = field(default_factory=set)
    deleted_phones: set[str] = field(default_factory=set)


def expected_state(
    customers: list[dict[str, Any]], events: list[dict[str, Any]], journal: list[Op]
) -> Expected:
    """Fold the journal into the data set and apply the pipelines' semantics (module doc)."""
    docs = {c["id"]: _copy(c) for c in customers}
    deleted: dict[str, dict[str, Any]] = {}
    orders: list[tuple[str, str]] = [
        (e["customerId"], e["properties"]["orderId"])
        for e in events
        if e["type"] == "completedOrder"
    ]
    email_at_order: list[str | None] = []
    for cid, _ in orders:
        email_at_order.append(email_key(docs[cid]["base"]["contacts"].get("email")))
    for op in journal:
        if op.kind == "create":
            docs[op.cid] = {"id": op.cid, **_copy(op.body)}
        elif op.kind == "patch":
            assert op.body is not None
            merge(docs[op.cid], _copy(op.body))
        elif op.kind == "delete":
            deleted[op.cid] = docs.pop(op.cid)
        elif op.kind == "order":
            assert op.body is not None
            orders.append((op.cid, op.body["properties"]["orderId"]))
            email_at_order.append(email_key(docs[op.cid]["base"]["contacts"].get("email")))
    nrs: dict[str, dict[str, Any]] = {}
    octo: dict[str, set[str]] = {}
    for doc in docs.values():
        base = doc["base"]
        contacts = base.get("contacts") or {}
        country = str((base.get("address") or {}).get("country") or "").upper()
        email = email_key(contacts.get("email"))
        news = email is not None and _consent_on(doc, "email")
        vip = email is not None and "vip" in _tags(doc)
        if email and (news or vip):
            groups = {"Newsletter", f"Country {country}"} if news else set()
            if vip:
                groups.add("VIP")
            contact: dict[str, Any] = {"groups": groups}
            if news:
                contact["name"] = base.get("firstName") or None
                contact["surname"] = base.get("lastName") or None
            nrs[email] = contact
        phone = e164(contacts.get("mobilePhone"))
        if phone and _consent_on(doc, "sms") and "vip" in _tags(doc):
            octo.setdefault(f"VIP {country}", set()).add(phone)
    np6: dict[str, str] = {}
    for (cid, order_id), email in zip(orders, email_at_order, strict=True):
        if cid in deleted:
            raise AssertionError("the workload deleted a customer with orders")
        final = email_key(docs[cid]["base"]["contacts"].get("email"))
        assert final == email, "the workload changed the e-mail of a customer with orders"
        if email:
            np6[email] = order_id
    gone_emails = {
        e for d in deleted.values() if (e := email_key(d["base"]["contacts"].get("email")))
    }
    gone_phones = {
        p for d in deleted.values() if (p := e164(d["base"]["contacts"].get("mobilePhone")))
    }
    return Expected(nrs, octo, np6, gone_emails, gone_phones)


def compare(sims: Sims, want: Expected) -> list[str]:
    """Every difference between the simulators' state and ``want`` (empty: identical)."""
    problems: list[str] = []
    nrs = sims.state("nrs360")
    emails = Counter(c["email"] for c in nrs["contacts"])
    doubled = sorted(e for e, k in emails.items() if k > 1)
    if doubled:
        problems.append(f"360NRS: {len(doubled)} contacts doubled, e.g. {doubled[:5]}")
    missing = sorted(set(want.nrs) - set(emails))
    extra = sorted(set(emails) - set(want.nrs))
    if missing:
        problems.append(f"360NRS: {len(missing)} contacts missing, e.g. {missing[:5]}")
    if extra:
        gone = sorted(set(extra) & want.deleted_emails)
        problems.append(
            f"360NRS: {len(extra)} contacts too many ({len(gone)} of deleted customers), "
            f"e.g. {extra[:5]}"
        )
    wrong = []
    for contact in nrs["contacts"]:
        wanted = want.nrs.get(contact["email"])
        if wanted is None:
            continue
        groups = {g["name"] for g in contact["groups"]}
        if groups != wanted["groups"]:
            wrong.append((contact["email"], "groups", sorted(groups), sorted(wanted["groups"])))
        for name in ("name", "surname"):
            if name in wanted and contact.get(name) != wanted[name]:
                wrong.append((contact["email"], name, contact.get(name), wanted[name]))
    if wrong:
        problems.append(f"360NRS: {len(wrong)} contacts differ, e.g. {wrong[:5]}")
    group_names = Counter(g["name"] for g in nrs["groups"])
    twice = sorted(g for g, k in group_names.items() if k > 1)
    if twice:
        problems.append(f"360NRS: groups created more than once: {twice}")

    octo = sims.state("octopush")
    got_lists = {name: set(phones) for name, phones in octo["lists"].items() if phones}
    for name in sorted(set(got_lists) | set(want.octo)):
        got, exp = got_lists.get(name, set()), want.octo.get(name, set())
        if got != exp:
            problems.append(
                f"Octopush list {name!r}: {len(exp - got)} missing, e.g. {sorted(exp - got)[:3]}; "
                f"{len(got - exp)} too many ({len((got - exp) & want.deleted_phones)} of deleted "
                f"customers), e.g. {sorted(got - exp)[:3]}"
            )

    np6 = sims.state("np6")
    got_np6 = {t["fields"]["1001"]: t["fields"].get("1002") for t in np6["targets"]}
    if len(got_np6) != len(np6["targets"]):
        problems.append("NP6: two targets share an e-mail")
    missing = sorted(set(want.np6) - set(got_np6))
    extra = sorted(set(got_np6) - set(want.np6))
    stale = sorted(e for e in set(want.np6) & set(got_np6) if got_np6[e] != want.np6[e])
    if missing:
        problems.append(f"NP6: {len(missing)} targets missing, e.g. {missing[:5]}")
    if extra:
        problems.append(f"NP6: {len(extra)} targets too many, e.g. {extra[:5]}")
    if stale:
        e = stale[0]
        problems.append(
            f"NP6: {len(stale)} targets with another order than the last, e.g. {e}: "
            f"{got_np6[e]} instead of {want.np6[e]}"
        )
    return problems


# -- simulators --------------------------------------------------------------------------------
@dataclass
class Call:
    method: str
    path: str
    started: float
    ended: float | None = None
    status: int | None = None
    query: str = ""
    body: bytes = b""  # the request's
    answer: bytes = b""  # the response's first ANSWER_KEPT bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "started": round(self.started, 3),
            "ended": None if self.ended is None else round(self.ended, 3),
            "status": self.status,
            "body": self.body.decode("utf-8", "replace"),
            "answer": self.answer.decode("utf-8", "replace"),
        }


ANSWER_KEPT = 2000  # bytes of each answer the call log keeps (listings are long)


class Tap:
    """ASGI middleware recording every API call (start, end, status, request body, the start
    of the answer) of one simulator: :meth:`Sims.dump_calls` writes them next to the evidence
    of a failed end-state check.

    ``hold(pattern, seconds)`` arms it once: the next call whose ``"METHOD /path"`` contains
    ``pattern`` runs (the simulator applies it), then its answer waits ``seconds`` before
    being sent, and :attr:`held` is set meanwhile."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.held = threading.Event()
        self._hold: tuple[str, float] | None = None

    def hold(self, pattern: str, seconds: float) -> None:
        with self.lock:
            self.held.clear()
            self._hold = (pattern, seconds)

    def disarm(self) -> None:
        with self.lock:
            self._hold = None

    def in_flight(self, pattern: str = "", *, within: float = 0.0) -> list[Call]:
        """Calls matching ``pattern`` not answered yet, or answered in the last ``within`` s."""
        now = time.monotonic()
        with self.lock:
            return [
                c
                for c in self.calls[-2000:]
                if pattern in f"{c.method} {c.path}"
                and (c.ended is None or now - c.ended <= within)
            ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        call = Call(
            scope["method"],
            scope["path"],
            time.monotonic(),
            query=scope.get("query_string", b"").decode("latin-1"),
        )
        key = f"{call.method} {call.path}"
        with self.lock:
            self.calls.append(call)
            hold = self._hold if self._hold and self._hold[0] in key else None
            if hold:
                self._hold = None

        async def reading() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                call.body += message.get("body", b"")
            return message

        async def tapped(message: Message) -> None:
            if message["type"] == "http.response.body" and len(call.answer) < ANSWER_KEPT:
                call.answer += message.get("body", b"")[: ANSWER_KEPT - len(call.answer)]
            if message["type"] == "http.response.start":
                call.status = message["status"]
                if hold is not None:
                    self.held.set()
                    await asyncio.sleep(hold[1])
            await send(message)

        try:
            await self.app(scope, reading, tapped)
        finally:
            call.ended = time.monotonic()


class Sims:
    """Contacthub, 360NRS (duplicates allowed, so a double create would show), Octopush and
    NP6 (imports processed after ``np6_processing`` s), each behind a :class:`Tap`."""

    def __init__(self, np6_processing: float = 1.5, ch_latency_ms: float = 0.0) -> None:
        self.contacthub = ContacthubSimulator()
        self.nrs360 = Nrs360Simulator(
            username=NRS_USER,
            api_password=NRS_PASSWORD,
            behaviour=Nrs360Behaviour(duplicates="allow"),
        )
        self.octopush = OctopushSimulator(api_login=OCTO_LOGIN, api_key=OCTO_KEY)
        self.np6 = Np6Simulator(api_key=NP6_KEY)
        self.np6.load({"behaviour": {"processing_seconds": np6_processing}})
        if ch_latency_ms:
            self.contacthub.faults.set_plan(FaultPlan(latency_ms=ch_latency_ms))
        self.sims = {
            "contacthub": self.contacthub,
            "nrs360": self.nrs360,
            "octopush": self.octopush,
            "np6": self.np6,
        }
        self.taps = {name: Tap(sim.asgi()) for name, sim in self.sims.items()}
        self.served = {name: ServedApp(tap) for name, tap in self.taps.items()}
        self._stack = ExitStack()

    def __enter__(self) -> Sims:
        for served in self.served.values():
            self._stack.enter_context(served)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def url(self, name: str) -> str:
        return self.served[name].url

    def state(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(self.url(name) + "/_sandbox/state", timeout=120).json()
        return data

    def dump_calls(self, directory: Path) -> None:
        """Every recorded API call, one JSON line each, in ``<directory>/<sim>-calls.jsonl``."""
        for name, tap in self.taps.items():
            with tap.lock:
                lines = [json.dumps(c.as_json()) for c in tap.calls]
            (directory / f"{name}-calls.jsonl").write_text("\n".join(lines), encoding="utf-8")

    def faults(self, name: str, **plan: Any) -> None:
        httpx.put(self.url(name) + "/_sandbox/faults", json=plan, timeout=10).raise_for_status()


# -- syncer ------------------------------------------------------------------------------------
def write_config(
    tmp_path: Path,
    sims: Sims,
    *,
    page_size: int = 100,
    rate_limits: dict[str, float] | None = None,
    max_attempts: int = 60,
    flush_every: str = "1s",
    state_url: str | None = None,
    pipelines: str = PIPELINES,
) -> tuple[Path, str]:
    """The config (all three targets, ``pipelines``) and its state URL (``state_url``, else a
    SQLite file in ``tmp_path``)."""
    state = state_url or f"sqlite:///{tmp_path / 'state.db'}"
    rates = rate_limits or {}

    def rate(name: str) -> str:
        return f"\n    rate_limit: {rates[name]}" if name in rates else ""

    text = f"""
version: 1
state: {{url: "{state}"}}
source:
  type: contacthub
  base_url: {sims.url("contacthub")}/hub/v1
  workspace_id: {WS}
  node_id: {NODE}
  token: ${{CH_TOKEN}}
  page_size: {page_size}
  poll_interval: 1s
  timeout: 10s
metrics: {{address: "127.0.0.1:0"}}
engine: {{batch_size: 200, backoff_base: 0.2, backoff_max: 2s}}
targets:
  nrs:
    type: 360nrs
    base_url: {sims.url("nrs360")}/api/rest
    username: ${{NRS_USER}}
    api_password: ${{NRS_PASSWORD}}
    max_in_flight: 8
    max_attempts: {max_attempts}
    timeout: 10s{rate("nrs")}
  octo:
    type: octopush
    base_url: {sims.url("octopush")}/v1/public
    api_login: {OCTO_LOGIN}
    api_key: ${{OCTO_KEY}}
    batch_size: 100
    max_attempts: {max_attempts}
    timeout: 10s{rate("octo")}
  np6:
    type: np6
    base_url: {sims.url("np6")}
    api_key: ${{NP6_KEY}}
    max_attempts: {max_attempts}
    timeout: 10s{rate("np6")}
    import: {{binding: 1234, flush_every: {flush_every}, max_rows: 50000}}
{pipelines}
"""
    path = tmp_path / "syncer.yaml"
    path.write_text(text, encoding="utf-8")
    return path, state


def syncer_env(config: Path) -> dict[str, str]:
    return {**os.environ, **ENV, "SYNCER_CONFIG": str(config)}


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``syncer run`` with its JSON log lines appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [SYNCER, "--log-level", "info", "run"],
            env=syncer_env(config),
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


def sigkill(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGKILL ``proc``; its exit code if it had already ended by itself."""
    ended = proc.poll()
    if ended is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return ended


def sync_once(config: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNCER, "sync", "--once"],
        env=syncer_env(config),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def churning(churn: Churn) -> Iterator[Churn]:
    churn.start()
    try:
        yield churn
    finally:
        churn.stop()
