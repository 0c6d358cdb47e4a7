"""The classifier shared by the real delivery run and ``syncer plan``.

For each claimed (or, for ``plan``, pending) delivery it maps the entity's newest version with
the pipeline's mapping and decides what the target must do:

==========  ===========================================================================
create      upsert of a customer the target has no id for
update      upsert whose payload hash differs from the last one the target accepted
unchanged   upsert whose hash equals the last accepted one: nothing is sent
leave       the customer left the pipeline: its groups/lists go, the contact stays
delete      the customer was deleted in Contacthub: the pipeline's ``on_delete``
invalid     mapping failed (bad phone, missing key field, no entity): dead at once
superseded  an upsert or leave of a customer deleted since (or an event of one): nothing
            is sent, the delete is (once a delete is known, only the delete goes out);
            an upsert of a customer who left the pipeline since: the newer leave row goes
==========  ===========================================================================

``joins``/``leaves`` are the group/list names the change adds to or removes from this
pipeline's memberships. The payload hash covers the mapped record plus the memberships the
other pipelines of the same target hold, so a group change elsewhere re-sends the contact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..config import SyncerConfig
from ..mapping import InvalidRecord, MappedRecord, PipelineMapper, compile_pipelines, payload_hash
from ..mapping.names import NamePatterns
from ..state import delivery_ops as ops
from ..state import dlq_ops
from ..state.delivery_ops import ClaimedRow, Entity
from ..state.store import Store
from ..targets.base import Change, Known, OnDelete

PlanKind = Literal["create", "update", "unchanged", "leave", "delete", "invalid", "superseded"]
PLAN_KINDS: tuple[PlanKind, ...] = (
    "create",
    "update",
    "unchanged",
    "leave",
    "delete",
    "invalid",
    "superseded",
)


@dataclass(frozen=True)
class Planned:
    """The classification of one delivery; ``change`` is what the target gets (None: nothing)."""

    row: ClaimedRow
    kind: PlanKind
    subject_id: str
    change: Change | None
    hash: str | None = None
    joins: frozenset[str] = frozenset()
    leaves: frozenset[str] = frozenset()
    error: str | None = None
    stamp: str = ""  # the customer's updatedAt: who wins a record several customers share


def memberships_of(record: MappedRecord) -> frozenset[str]:
    """The group/list names a record puts its customer in."""
    names = set(record.groups)
    if record.list_name:
        names.add(record.list_name)
    return frozenset(names)


def full_hash(record: MappedRecord, pipeline: str, known: Known) -> str:
    """Hash of what an upsert sends: the record plus the other pipelines' memberships."""
    others = "\x1f".join(sorted(known.other_pipelines_names(pipeline)))
    text = f"{payload_hash(record)}\n{pipeline}\n{others}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Planner:
    """Classifies deliveries for one configuration's pipelines (pure: no I/O)."""

    def __init__(self, mappers: Mapping[str, PipelineMapper], on_delete: Mapping[str, OnDelete]):
        self.mappers = mappers
        self.on_delete = on_delete
        #: per target, the group names its pipelines can render (syncer's groups there)
        self.syncer_groups = {
            target: NamePatterns.of(
                s for m in mappers.values() if m.target == target for s in m.group_sources
            )
            for target in {m.target for m in mappers.values()}
        }

    @staticmethod
    def subject_of(row: ClaimedRow, entities: Mapping[tuple[str, str], Entity]) -> str:
        """The customer a delivery is about (an event's customer, or the customer itself)."""
        if row.entity_type == "customer":
            return row.entity_id
        entity = entities.get((row.entity_type, row.entity_id))
        return (entity.customer_id if entity else None) or row.entity_id

    @staticmethod
    def document(row: ClaimedRow, entities: Mapping[tuple[str, str], Entity]) -> Any:
        """What mapping reads: the customer, or the event with its customer under ``customer``."""
        entity = entities.get((row.entity_type, row.entity_id))
        if entity is None:
            return None
        if row.entity_type != "event":
            return entity.doc
        customer = entities.get(("customer", entity.customer_id or ""))
        return {**entity.doc, "customer": customer.doc if customer else None}

    def plan(
        self,
        rows: Sequence[ClaimedRow],
        entities: Mapping[tuple[str, str], Entity],
        known: Mapping[str, Known],
        hashes: Mapping[str, str | None],
        touched: Set[str] = frozenset(),
    ) -> list[Planned]:
        """Classify ``rows``; ``touched``: subjects with an id map row (see ``load_known``).

        A row behind an earlier row of its customer and pipeline that is sent in this claim is
        never ``unchanged``: the stored hash is what the target held before that earlier row
        (a leave that deleted the contact, say, which the upsert behind it must bring back;
        found by the crash suite: a leave in flight at a SIGKILL, a re-join queued behind it)."""
        by_id: dict[int, Planned] = {}
        sent_before: set[tuple[str, str]] = set()  # (customer, pipeline) with a row to send
        for row in sorted(rows, key=lambda r: r.id):
            key = (self.subject_of(row, entities), row.pipeline)
            p = self.plan_one(row, entities, known, hashes, touched, after_sent=key in sent_before)
            if p.change is not None:
                sent_before.add(key)
            subject = entities.get(("customer", p.subject_id))
            by_id[row.id] = replace(p, stamp=subject.updated_at) if subject is not None else p
        return [by_id[row.id] for row in rows]

    def plan_one(
        self,
        row: ClaimedRow,
        entities: Mapping[tuple[str, str], Entity],
        known_by: Mapping[str, Known],
        hashes: Mapping[str, str | None],
        touched: Set[str] = frozenset(),
        *,
        after_sent: bool = False,
    ) -> Planned:
        """Classify one row (``after_sent``: an earlier row of its customer and pipeline is
        sent first, see :meth:`plan`)."""
        subject = self.subject_of(row, entities)
        known = known_by.get(subject, Known())
        mine = known.memberships.get(row.pipeline, frozenset())
        mapper = self.mappers.get(row.pipeline)
        if mapper is None:
            return Planned(
                row,
                "invalid",
                subject,
                None,
                error=f"pipeline {row.pipeline!r} is not in the config any more",
            )
        customer = entities.get(("customer", subject))
        if row.action != "delete" and customer is not None and customer.deleted:
            return Planned(row, "superseded", subject, None)
        doc = self.document(row, entities)
        if (
            row.action == "upsert"
            and row.entity_type == "customer"
            and doc is not None
            and not mapper.accepts("customer", doc)
        ):
            # mapped from its newest version, the upsert would send (or fail on) what the
            # customer is no longer; ingest queued a leave for that version behind this row
            return Planned(row, "superseded", subject, None)
        record: MappedRecord | None = None
        error: str | None = None
        if doc is None:
            error = f"{row.entity_type} {row.entity_id} is not in the state store"
        else:
            try:
                record = mapper.map(doc)
            except InvalidRecord as exc:
                error = exc.reason
        change = Change(
            delivery_id=row.id,
            pipeline=row.pipeline,
            entity_id=row.entity_id,
            action=row.action,  # type: ignore[arg-type]  # the column only holds ChangeAction
            on_delete=self.on_delete.get(row.pipeline, "ignore"),
            record=record,
            known=known,
            attempt=row.attempts + 1,
            # an id map row without a target id: an earlier write may have reached the target
            resent=row.attempts > 0
            or row.taken_over
            or (subject in touched and known.target_id is None),
            syncer_groups=self.syncer_groups[mapper.target],
        )
        if row.action == "leave":
            return Planned(row, "leave", subject, change, leaves=mine)
        if row.action == "delete":
            return Planned(row, "delete", subject, change, leaves=mine)
        if record is None:
            return Planned(row, "invalid", subject, None, error=error)
        digest = full_hash(record, row.pipeline, known)
        wanted = memberships_of(record)
        joins, leaves = wanted - mine, mine - wanted
        if known.target_id is None:
            return Planned(row, "create", subject, change, digest, joins, leaves)
        if hashes.get(subject) == digest and not after_sent:
            return Planned(row, "unchanged", subject, None, digest)
        return Planned(row, "update", subject, change, digest, joins, leaves)


def plan_pending(store: Store, cfg: SyncerConfig, pipeline: str | None = None) -> list[Planned]:
    """Classify every open delivery (``syncer plan``) with the real run's code; writes nothing."""
    planner = Planner(compile_pipelines(cfg), {p.name: p.on_delete for p in cfg.pipelines})
    planned: list[Planned] = []
    with store.reader() as conn:
        rows = dlq_ops.open_rows(conn, pipeline)
        for target in sorted({r.target for r in rows}):
            mine = [r for r in rows if r.target == target]
            found = ops.load_entities(conn, {(r.entity_type, r.entity_id) for r in mine})
            customers = {("customer", e.customer_id) for e in found.values() if e.customer_id}
            found.update(ops.load_entities(conn, customers - set(found)))
            subjects = {planner.subject_of(r, found) for r in mine}
            known, hashes, touched = ops.load_known(conn, target, subjects)
            planned += planner.plan(mine, found, known, hashes, touched)
    return planned
