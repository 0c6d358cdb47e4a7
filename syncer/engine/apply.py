"""Turning a batch of incoming documents into state: the heart of ingest and backfill.

:class:`Applier` takes the documents of one page (from the update stream, a backfill search
page, or customers fetched for events) and, inside the caller's transaction:

* records every document in ``inbox``;
* keeps ``entities`` at the newest version of each customer/event (a document that is not
  newer than the stored one changes nothing: it was already accounted for);
* evaluates every customer pipeline on a changed customer and compares with the pipelines
  that selected it before (``entities.pipelines``): ``upsert`` when it matches, ``leave`` when
  it matched before and does not now, coalesced into the open (pending/failed) row of that
  (pipeline, customer) when there is one;
* a deleted customer goes to ``suppression`` and gets ``delete`` rows in the pipelines that
  select it, have an open row or a membership for it; a target that still holds it by the
  state (an ``id_map`` row, a row in flight) but that no such pipeline covers gets a delete
  from each of its pipelines (customer or event): a customer who left a pipeline is still on
  the target's account, and one an event pipeline wrote was never "selected".
  ``on_delete: ignore`` pipelines get none, and their unsent rows are dropped;
* an event not seen before (by id) gets one ``upsert`` row per event pipeline accepting it
  (evaluated with its ``customer``); events never coalesce.

All lookups are done once per batch; all writes are ``executemany``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy import Connection

from ..config.models import SyncerConfig
from ..mapping import PipelineMapper, compile_pipelines
from ..source.contacthub import instant_key
from ..state import ingest_ops as ops
from ..state.delivery_ops import db_now
from ..state.erasure_ops import ids_only

Origin = Literal["stream", "backfill", "fetch"]


class Incoming:
    """One document to apply; ``payload`` is ``doc`` as JSON text. (A plain slotted class:
    ingest builds 4,000 of these per page.)"""

    __slots__ = (
        "customer_id",
        "doc",
        "entity_id",
        "entity_type",
        "operation",
        "origin",
        "page_offset",
        "payload",
        "position",
    )

    def __init__(
        self,
        origin: Origin,
        entity_type: str,
        operation: str,
        doc: dict[str, Any],
        payload: str,
        page_offset: int,
        position: int,
        prefix: str = "",
    ) -> None:
        self.origin = origin
        self.entity_type = entity_type  # customer | event | unknown
        self.operation = operation  # CREATE | UPDATE | DELETE
        self.doc = doc
        # ids in the state carry the source's namespace (``id_prefix``); ``doc`` stays as read
        self.entity_id = prefix + str(doc.get("id") or "")
        customer = doc.get("customerId") if entity_type == "event" else None
        self.customer_id = prefix + str(customer) if customer else None  # an event's customer
        self.payload = payload
        self.page_offset = page_offset
        self.position = position


@dataclass(frozen=True, slots=True)
class Rule:
    """A pipeline as ingest sees it."""

    name: str
    target: str
    entity: str
    on_delete: str
    mapper: PipelineMapper
    needs_customer: bool = True  # its `when` may read the event's customer


@dataclass
class ApplyStats:
    """What one or more batches did."""

    documents: int = 0
    applied: int = 0
    stale: int = 0
    duplicate_events: int = 0
    suppressed: int = 0
    deliveries_created: int = 0
    deliveries_coalesced: int = 0
    by_action: dict[str, int] = field(default_factory=dict)

    def add(self, other: ApplyStats) -> None:
        for name in (
            "documents",
            "applied",
            "stale",
            "duplicate_events",
            "suppressed",
            "deliveries_created",
            "deliveries_coalesced",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for action, n in other.by_action.items():
            self.by_action[action] = self.by_action.get(action, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in vars(self).items() if k != "by_action"},
            "by_action": dict(self.by_action),
        }


def rules_from_config(cfg: SyncerConfig, source: str | None = None) -> list[Rule]:
    """The rules of every pipeline, or of those that take ``source``'s documents."""
    mappers = compile_pipelines(cfg)
    chosen = cfg.pipelines if source is None else cfg.pipelines_of(source)
    return [
        Rule(p.name, p.target, p.entity, p.on_delete, mappers[p.name], p.when is not None)
        for p in chosen
    ]


def doc_version(doc: dict[str, Any]) -> tuple[int, str]:
    """The order of two versions of one entity: ``version``, then the instant of ``updatedAt``
    (as :func:`instant_key` text: ``...Z`` and ``...+0000`` spellings of one instant are equal,
    and the state database compares the stored keys as text)."""
    version = doc.get("version")
    return (version if isinstance(version, int) else 0, instant_key(doc.get("updatedAt")))


class Applier:
    """Applies batches of :class:`Incoming` documents; stateless between batches."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        self.customer_rules = [r for r in rules if r.entity == "customer"]
        self.event_rules = [r for r in rules if r.entity == "event"]

        self.event_rules_needing_customer = any(r.needs_customer for r in self.event_rules)

    @property
    def wants_event_customers(self) -> bool:
        return bool(self.event_rules)

    def apply(
        self,
        conn: Connection,
        stream: str,
        items: Sequence[Incoming],
        resend: frozenset[str] = frozenset(),
    ) -> ApplyStats:
        """Apply ``items`` of ``stream`` in order. ``resend``: pipelines that re-evaluate a
        customer whose version is already stored (a backfill for a new pipeline)."""
        return _Batch(self, conn, stream, items, resend).run()


class _Batch:
    """The state of one batch while it is applied (see :class:`Applier`)."""

    def __init__(
        self,
        applier: Applier,
        conn: Connection,
        stream: str,
        items: Sequence[Incoming],
        resend: frozenset[str],
    ) -> None:
        self.a, self.conn, self.stream, self.items = applier, conn, stream, items
        self.resend = resend
        # the database's clock, as claims compare due times with it: a row is due at once
        # whatever this host's clock says (and not 1 ms later: found as a flaky test)
        self.now = db_now(conn)
        self.stats = ApplyStats(documents=len(items))
        customers = {i.entity_id for i in items if i.entity_type == "customer"}
        events = {i.entity_id for i in items if i.entity_type == "event"}
        event_customers = {i.customer_id for i in items if i.customer_id is not None}
        stored = ops.customer_states(conn, customers)
        self.versions = {cid: version for cid, (version, _) in stored.items()}
        # customer -> the pipelines selecting it: as stored, and as this batch leaves it
        self.selected_before = {cid: pipelines for cid, (_, pipelines) in stored.items()}
        self.selected = {cid: set(pipelines) for cid, pipelines in self.selected_before.items()}
        self.known_events = set(ops.entity_versions(conn, "event", events))
        self.suppressed = ops.suppressed(conn, customers | event_customers)
        self.open = ops.open_customer_deliveries(conn, customers)
        deleting = {
            i.entity_id for i in items if i.entity_type == "customer" and i.operation == "DELETE"
        } - self.suppressed
        opted_in = {r.target for r in applier.rules if r.on_delete != "ignore"}
        # customer -> targets syncer wrote it to (only asked for the deletes of this batch)
        self.held = ops.targets_holding(conn, opted_in, deleting) if opted_in else {}
        self.stored_docs: dict[str, str] = {}
        if applier.event_rules_needing_customer:
            # every event's customer, also those this batch updates: an event that comes
            # before its customer's update (or after a stale copy) needs the stored version
            self.stored_docs = ops.entity_payloads(conn, "customer", event_customers)
        self.docs: dict[str, dict[str, Any]] = {}  # customers of this batch, newest state
        self.entity_rows: dict[tuple[str, str], list[Any]] = {}
        self.deleted: dict[str, list[str]] = {"customer": [], "event": []}
        self.new_suppressed: list[str] = []
        self.final: dict[tuple[str, str], str] = {}  # (pipeline, customer) -> action
        self.cancel: set[int] = set()
        self.event_rows: list[tuple[Any, ...]] = []

    def run(self) -> ApplyStats:
        for item in self.items:
            if item.entity_type == "customer":
                self._customer(item)
            elif item.entity_type == "event":
                self._event(item)
        self._write()
        return self.stats

    # -- customers ------------------------------------------------------------------------
    def _customer(self, item: Incoming) -> None:
        cid = item.entity_id
        if cid in self.suppressed:
            self.stats.suppressed += 1
            item.payload = ids_only(cid)  # the inbox keeps no personal data of a forgotten one
            return
        if item.operation == "DELETE":
            self._delete_customer(item, cid)
            return
        version = doc_version(item.doc)
        known = self.versions.get(cid)
        rules = self.a.customer_rules
        if known is not None and version <= known:
            if version < known or not self.resend or item.origin == "stream":
                self.stats.stale += 1
                return
            rules = [r for r in rules if r.name in self.resend]  # same version, re-evaluate
        else:
            self.versions[cid] = version
            self.entity_rows[("customer", cid)] = self._entity_row(item, None, known=version)
        self.docs[cid] = item.doc
        self.stats.applied += 1
        selected = self.selected.setdefault(cid, set())
        for rule in rules:
            if rule.mapper.accepts("customer", item.doc):
                selected.add(rule.name)
                self.final[(rule.name, cid)] = "upsert"
            elif rule.name in selected:
                selected.discard(rule.name)
                self.final[(rule.name, cid)] = "leave"

    def _delete_customer(self, item: Incoming, cid: str) -> None:
        self.stats.applied += 1
        self.suppressed.add(cid)
        self.new_suppressed.append(cid)
        self.docs.pop(cid, None)
        row = self.entity_rows.get(("customer", cid))
        if row is not None:
            row[6] = True
        elif cid in self.versions:
            self.deleted["customer"].append(cid)
        else:  # never seen: keep what the stream said about it
            self.entity_rows[("customer", cid)] = self._entity_row(item, None, deleted=True)
        was_selected = self.selected.get(cid, set())
        self.selected[cid] = set()
        held = self.held.get(cid, {})
        covered: set[str] = set()  # targets that get a delete from a pipeline holding them
        for rule in self.a.rules:  # customer and event pipelines
            key = (rule.name, cid)
            selected = (
                rule.name in was_selected
                or key in self.open
                or key in self.final
                or rule.name in held.get(rule.target, ())
            )
            if rule.on_delete == "ignore":
                self.final.pop(key, None)
                if key in self.open:
                    self.cancel.add(self.open[key])
            elif selected:
                self.final[key] = "delete"
                covered.add(rule.target)
        for rule in self.a.rules:
            # a target holding the customer that no pipeline selects or holds it in any more
            # (a leave keeps the contact: Octopush, 360NRS contacts syncer did not create; an
            # event pipeline's write is never "selected"): every pipeline opting in goes
            if rule.on_delete != "ignore" and rule.target in held and rule.target not in covered:
                self.final[(rule.name, cid)] = "delete"

    # -- events ---------------------------------------------------------------------------
    def _event(self, item: Incoming) -> None:
        eid = item.entity_id
        if item.operation == "DELETE":
            self.stats.applied += 1
            if eid in self.known_events:
                self.deleted["event"].append(eid)
            return
        if eid in self.known_events:
            self.stats.duplicate_events += 1
            return
        self.known_events.add(eid)
        cid = item.customer_id
        forgotten = cid is not None and cid in self.suppressed
        if forgotten:  # kept for dedupe, with nothing personal (the scrub may have run)
            item.payload = ids_only(eid)
        self.entity_rows[("event", eid)] = self._entity_row(item, cid)
        self.stats.applied += 1
        if forgotten:
            self.stats.suppressed += 1
            return
        kind = item.doc.get("type")
        full: dict[str, Any] | None = None
        for rule in self.a.event_rules:
            types = rule.mapper.event_types
            if types is not None and kind not in types:
                continue
            if full is None:  # the customer matters only to `when`; documents stay as given
                customer = self._customer_doc(cid) if rule.needs_customer else None
                full = {**item.doc, "customer": customer}
            elif rule.needs_customer and full["customer"] is None:
                full["customer"] = self._customer_doc(cid)
            if rule.mapper.accepts("event", full):
                self.event_rows.append(self._delivery(rule, "event", eid, "upsert", cid or eid))

    def _customer_doc(self, cid: str | None) -> dict[str, Any] | None:
        if cid is None:
            return None
        doc = self.docs.get(cid)
        if doc is None and cid in self.stored_docs:
            doc = self.docs[cid] = orjson.loads(self.stored_docs[cid])
        return doc

    # -- rows -----------------------------------------------------------------------------
    def _entity_row(
        self,
        item: Incoming,
        customer_id: str | None,
        deleted: bool = False,
        known: tuple[int, str] | None = None,
    ) -> list[Any]:
        version, updated_at = doc_version(item.doc) if known is None else known
        # a list: a later delete in the same batch flips "deleted" in place
        return [
            item.entity_type,
            item.entity_id,
            customer_id,
            item.payload,
            version,
            updated_at,
            deleted,
            None,  # pipelines: filled in by _write for customers
        ]

    def _delivery(
        self, rule: Rule, kind: str, entity_id: str, action: str, subject: str
    ) -> tuple[Any, ...]:
        self.stats.by_action[action] = self.stats.by_action.get(action, 0) + 1
        now = self.now
        return (
            rule.name,
            rule.target,
            kind,
            entity_id,
            action,
            "pending",
            0,
            now,
            now,
            now,
            subject,
        )

    def _write(self) -> None:
        conn, now, stream = self.conn, self.now, self.stream
        ops.insert_inbox(
            conn,
            [
                (
                    stream,
                    i.page_offset,
                    i.position,
                    i.origin,
                    i.entity_type,
                    i.entity_id,
                    i.operation,
                    i.payload,
                    now,
                )
                for i in self.items
            ],
        )
        customer_rows, event_rows = [], []
        for (entity_type, cid), row in self.entity_rows.items():
            if entity_type == "customer":
                row[7] = " ".join(sorted(self.selected.get(cid, ())))
                customer_rows.append(tuple(row))
            else:
                event_rows.append(tuple(row))
        ops.upsert_newer_entities(conn, customer_rows)
        ops.insert_entities_if_absent(conn, event_rows)
        for entity_type, ids in self.deleted.items():
            ops.mark_deleted(conn, entity_type, ids)
        ops.suppress(conn, self.new_suppressed, "deleted in Contacthub", now)
        # selection changes of customers whose row this batch does not rewrite (a delete, a
        # same-version re-evaluation for new pipelines)
        ops.set_pipelines(
            conn,
            [
                (" ".join(sorted(now_selected)), cid)
                for cid, now_selected in self.selected.items()
                if ("customer", cid) not in self.entity_rows
                and now_selected != self.selected_before.get(cid, frozenset())
            ],
        )
        by_name = {r.name: r for r in self.a.rules}
        inserts: list[tuple[Any, ...]] = []
        reopen: list[tuple[int, str]] = []
        for (pipeline, cid), action in self.final.items():
            open_id = self.open.get((pipeline, cid))
            if open_id is not None:
                reopen.append((open_id, action))
                self.stats.by_action[action] = self.stats.by_action.get(action, 0) + 1
            else:
                inserts.append(self._delivery(by_name[pipeline], "customer", cid, action, cid))
        inserts += self.event_rows
        ops.insert_deliveries(conn, inserts)
        ops.reopen_deliveries(conn, reopen, now)
        ops.cancel_deliveries(conn, self.cancel)
        self.stats.deliveries_created += len(inserts)
        self.stats.deliveries_coalesced += len(reopen)
