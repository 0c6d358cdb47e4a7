"""Realistic random writes against the Contacthub API, with a journal of what was done.

``Churn(client, workspace_id, node_id, seed).step(n)`` performs ``n`` operations through the
**HTTP API** (so every one lands in the update stream): creates, contact changes (email/phone),
consent revokes, vip tag add/remove, deletes and new events. ``client`` must already carry
``Authorization: Bearer <token>`` and have the server root as ``base_url``.

Every operation appends a :class:`JournalEntry` with the request sent and the outcome, so a test
can fold the journal into the expected end state without asking the simulator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import httpx

from .datagen import generate_customers, mobile_phone, order_properties

OPERATIONS: dict[str, float] = {
    "create": 0.15,
    "contact": 0.20,
    "consent": 0.10,
    "tag": 0.15,
    "delete": 0.05,
    "event": 0.35,
}


@dataclass
class JournalEntry:
    """One operation: ``status`` is the HTTP status, or ``None`` when no answer came back."""

    op: str
    method: str
    path: str
    customer_id: str | None
    body: dict[str, Any] | None
    status: int | None
    response: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Churn:
    """Random mix of writes on one workspace/node (see the module docstring)."""

    client: httpx.Client
    workspace_id: str
    node_id: str
    seed: int = 0
    weights: dict[str, float] = field(default_factory=lambda: dict(OPERATIONS))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.journal: list[JournalEntry] = []
        self.known: list[str] | None = None
        self._created = 0
        self._prefix = f"/hub/v1/workspaces/{self.workspace_id}"

    # -- plumbing -------------------------------------------------------------------------
    def _call(
        self, op: str, method: str, path: str, cid: str | None, body: dict[str, Any] | None
    ) -> JournalEntry:
        entry = JournalEntry(op, method, path, cid, body, None)
        try:
            resp = self.client.request(method, self._prefix + path, json=body)
            entry.status = resp.status_code
            entry.response = resp.json() if resp.content else None
        except (httpx.HTTPError, ValueError) as exc:
            entry.error = f"{type(exc).__name__}: {exc}"
        self.journal.append(entry)
        return entry

    def _load_known(self) -> list[str]:
        """Ids of existing customers (the first 10,000 the search can reach)."""
        ids: list[str] = []
        page = 0
        while True:
            resp = self.client.get(
                self._prefix + "/customers",
                params={
                    "nodeId": self.node_id,
                    "size": 50,
                    "page": page,
                    "sort": "id,asc",
                    "fields": "id",
                },
            )
            resp.raise_for_status()
            data = resp.json()
            ids.extend(c["id"] for c in data["elements"])
            page += 1
            if page >= data["page"]["totalPages"]:
                return ids

    def _pick_customer(self) -> str | None:
        if self.known is None:
            self.known = self._load_known()
        return self.known[self.rng.randrange(len(self.known))] if self.known else None

    # -- operations -----------------------------------------------------------------------
    def step(self, n_ops: int) -> list[JournalEntry]:
        """Perform ``n_ops`` random operations; returns their journal entries."""
        start = len(self.journal)
        if self.known is None:
            # before any create: a created customer gets a random id (uuid4), and loaded
            # after it, sorted by id, it would shift which customer each seeded pick takes
            self.known = self._load_known()
        names, weights = list(self.weights), list(self.weights.values())
        for _ in range(n_ops):
            op = self.rng.choices(names, weights)[0]
            cid = None if op == "create" else self._pick_customer()
            if cid is None:
                op = "create"
            getattr(self, f"_op_{op}")(cid)
        return self.journal[start:]

    def _op_create(self, _cid: str | None) -> None:
        self._created += 1
        doc = next(generate_customers(1, seed=self.rng.randrange(2**31), node_id=self.node_id))
        email = (doc["base"]["contacts"].get("email") or "").strip().lower() or None
        doc["base"]["contacts"]["email"] = email
        body = {k: doc[k] for k in ("nodeId", "base", "consents", "extended", "tags")}
        body["externalId"] = f"CHURN-{self.seed}-{self._created:06d}"
        entry = self._call("create", "POST", "/customers", None, body)
        if entry.ok:
            entry.customer_id = entry.response["id"]
            if self.known is not None:
                self.known.append(entry.response["id"])

    def _op_contact(self, cid: str | None) -> None:
        if self.rng.random() < 0.5:
            n = self.rng.randrange(10**6)
            contacts: dict[str, Any] = {"email": f"changed{n}.{self.seed}@example.org"}
        else:
            contacts = {"mobilePhone": mobile_phone(self.rng, self.rng.choice(("IT", "ES", "FR")))}
        self._call("contact", "PATCH", f"/customers/{cid}", cid, {"base": {"contacts": contacts}})

    def _op_consent(self, cid: str | None) -> None:
        channel = self.rng.choice(("email", "sms"))
        revoked = {"status": False, "limitation": False, "objection": True}
        body = {"consents": {"marketing": {"automatic": {channel: revoked}}}}
        self._call("consent", "PATCH", f"/customers/{cid}", cid, body)

    def _op_tag(self, cid: str | None) -> None:
        got = self._call("read", "GET", f"/customers/{cid}", cid, None)
        if not got.ok:
            return
        manual = list(got.response.get("tags", {}).get("manual") or [])
        manual = [t for t in manual if t != "vip"] if "vip" in manual else [*manual, "vip"]
        self._call("tag", "PATCH", f"/customers/{cid}", cid, {"tags": {"manual": manual}})

    def _op_delete(self, cid: str | None) -> None:
        entry = self._call("delete", "DELETE", f"/customers/{cid}", cid, None)
        if entry.ok and self.known is not None and cid in self.known:
            self.known.remove(cid)

    def _op_event(self, cid: str | None) -> None:
        kind = self.rng.choices(
            ("completedOrder", "viewedPage", "campaignUnsubscribed"), (5, 4, 1)
        )[0]
        if kind == "completedOrder":
            props, context = order_properties(self.rng, self.rng.randrange(10**7)), "ECOMMERCE"
        elif kind == "viewedPage":
            props, context = {"url": "https://shop.example.com/sale", "path": "/sale"}, "WEB"
        else:
            props, context = {"channel": "EMAIL", "campaignId": "CMP0001"}, "DIGITAL_CAMPAIGN"
        body = {"customerId": cid, "type": kind, "context": context, "properties": props}
        self._call("event", "POST", "/events", cid, body)
