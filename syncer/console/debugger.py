"""The record debugger: find a customer, then show everything syncer knows and did about it.

Search looks at customers only, by Contacthub id (primary key), e-mail (case-insensitive),
mobile or fixed phone, or ``externalId`` of any version the stream brought
(:mod:`syncer.state.search_ops`: keys kept behind the stream, plus the inbox rows not read
into them yet).
A customer's personal data appears only on this page, when asked for.

The pipeline decisions are computed with the pipeline code itself (``compile_when`` per
condition, :class:`PipelineMapper` for the mapping): what each pipeline decides for the
newest stored version, which ``when`` condition fails, and the record it sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from ..config.models import PipelineConfig, SyncerConfig, WhenConfig
from ..mapping import compile_pipelines
from ..mapping.conditions import compile_when
from ..mapping.errors import InvalidRecord
from ..state import search_ops
from ..state.schema import (
    deliveries,
    delivery_log,
    entities,
    id_map,
    inbox,
    memberships,
    suppression,
)

MAX_HITS = 50
TIMELINE = 50
HISTORY = 100


@dataclass
class Hit:
    entity_id: str
    matched: str  # which key matched: id, email, mobilePhone, phone, externalId
    deleted: bool
    summary: dict[str, Any]


def search(conn: Connection, query: str) -> list[Hit]:
    """Customers whose id, e-mail, phone or externalId equals ``query``."""
    q = query.strip()
    if not q:
        return []
    e = entities
    hits: dict[str, Hit] = {}

    def take(rows: Any, matched: str) -> None:
        for r in rows:
            if r.entity_id not in hits and len(hits) < MAX_HITS:
                hits[r.entity_id] = Hit(r.entity_id, matched, bool(r.deleted), _summary(r.payload))

    base = select(e.c.entity_id, e.c.deleted, e.c.payload).where(e.c.entity_type == "customer")
    take(conn.execute(base.where(e.c.entity_id == q)), "id")
    candidates: list[tuple[str, str]] = []
    if "@" in q:
        candidates.append(("email", q.lower()))
    else:
        compact = "".join(q.split())
        if compact.lstrip("+").isdigit():
            candidates += [("mobilePhone", compact), ("phone", compact)]
        candidates.append(("externalId", q))
    for key, value in candidates:
        ids = search_ops.find(conn, key, value, MAX_HITS)
        if ids:
            take(conn.execute(base.where(e.c.entity_id.in_(ids))), key)
    return list(hits.values())


def _summary(payload: str) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except ValueError:
        return {}
    base = doc.get("base") or {}
    contacts = base.get("contacts") or {}
    return {
        "name": " ".join(str(x) for x in (base.get("firstName"), base.get("lastName")) if x),
        "email": contacts.get("email"),
        "phone": contacts.get("mobilePhone") or contacts.get("phone"),
        "externalId": doc.get("externalId"),
    }


@dataclass
class Decision:
    pipeline: str
    target: str
    entity: str
    selected: bool | None  # None: an event pipeline (decided per event)
    failed: list[str] = field(default_factory=list)
    record: dict[str, Any] | None = None
    invalid: str | None = None


def describe_conditions(when: WhenConfig | None, entity: str) -> list[tuple[str, WhenConfig]]:
    """Each condition of ``when`` as a one-condition ``WhenConfig`` with its description."""
    if when is None:
        return []
    parts: list[tuple[str, WhenConfig]] = []
    if when.consent:
        parts.append((f"consent {when.consent}", WhenConfig(consent=when.consent)))
    parts += [(f"present {p}", WhenConfig(present=[p])) for p in when.present]
    if when.tags_any:
        parts.append((f"tags_any {', '.join(when.tags_any)}", WhenConfig(tags_any=when.tags_any)))
    if when.tags_all:
        parts.append((f"tags_all {', '.join(when.tags_all)}", WhenConfig(tags_all=when.tags_all)))
    parts += [
        (f"match {path} = {json.dumps(value)}", WhenConfig(match={path: value}))
        for path, value in when.match.items()
    ]
    return parts


def decisions(cfg: SyncerConfig, doc: dict[str, Any] | None) -> list[Decision]:
    """What every pipeline decides for the customer document ``doc``."""
    mappers = compile_pipelines(cfg)
    out: list[Decision] = []
    for p in cfg.pipelines:
        d = Decision(p.name, p.target, p.entity, None)
        out.append(d)
        if p.entity != "customer" or doc is None:
            continue
        d.failed = failed_conditions(p, doc)
        d.selected = not d.failed
        if d.selected:
            try:
                mapped = mappers[p.name].map(doc)
            except InvalidRecord as exc:
                d.invalid = exc.reason
            else:
                d.record = {"fields": mapped.fields, "groups": list(mapped.groups)}
                if mapped.list_name is not None:
                    d.record["list"] = mapped.list_name
                if mapped.tag is not None:
                    d.record["tag"] = mapped.tag
    return out


def failed_conditions(p: PipelineConfig, doc: dict[str, Any]) -> list[str]:
    return [
        label
        for label, single in describe_conditions(p.when, p.entity)
        if not compile_when(single, p.entity)(doc)
    ]


@dataclass
class Record:
    entity_id: str
    doc: dict[str, Any] | None
    deleted: bool
    version: int | None
    updated_at: str | None
    pipelines_now: list[str]
    suppressed: Any
    timeline: list[dict[str, Any]]
    decisions: list[Decision]
    deliveries: list[Any]
    log: list[Any]
    id_map: list[Any]
    memberships: list[Any]


def record(conn: Connection, cfg: SyncerConfig, cid: str) -> Record | None:
    """Everything about customer ``cid``; ``None`` when syncer never saw it."""
    e = entities
    row = conn.execute(select(e).where(e.c.entity_type == "customer", e.c.entity_id == cid)).first()
    targets = sorted(cfg.targets)
    rows = list(
        conn.execute(
            select(deliveries)
            .where(deliveries.c.subject_id == cid)
            .order_by(deliveries.c.id.desc())
            .limit(HISTORY)
        )
    )
    if row is None and not rows:
        return None
    doc = json.loads(row.payload) if row is not None else None
    timeline = []
    for r in conn.execute(
        select(inbox)
        .where(inbox.c.entity_type == "customer", inbox.c.entity_id == cid)
        .order_by(inbox.c.id.desc())
        .limit(TIMELINE)
    ):
        timeline.append(
            {
                "id": r.id,
                "stream": r.stream,
                "offset": r.page_offset,
                "position": r.position,
                "origin": r.origin,
                "operation": r.operation,
                "received_at": r.received_at,
                "payload": _pretty(r.payload),
            }
        )
    entity_ids = sorted({cid, *(r.entity_id for r in rows)})
    log = list(
        conn.execute(
            select(delivery_log)
            .where(delivery_log.c.entity_id.in_(entity_ids))
            .order_by(delivery_log.c.id.desc())
            .limit(HISTORY)
        )
    )
    ids = list(
        conn.execute(select(id_map).where(id_map.c.target.in_(targets), id_map.c.entity_id == cid))
    )
    members = list(
        conn.execute(
            select(memberships)
            .where(memberships.c.target.in_(targets), memberships.c.entity_id == cid)
            .order_by(memberships.c.target, memberships.c.pipeline, memberships.c.name)
        )
    )
    suppressed = conn.execute(select(suppression).where(suppression.c.entity_id == cid)).first()
    return Record(
        entity_id=cid,
        doc=doc,
        deleted=bool(row.deleted) if row is not None else False,
        version=row.version if row is not None else None,
        updated_at=row.updated_at if row is not None else None,
        pipelines_now=(row.pipelines or "").split() if row is not None else [],
        suppressed=suppressed,
        timeline=timeline,
        decisions=decisions(cfg, doc if row is not None and not row.deleted else None),
        deliveries=rows,
        log=log,
        id_map=ids,
        memberships=members,
    )


def _pretty(payload: str) -> str:
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return payload
