"""Event routes: search, create (202, asynchronous in the real API), get, delete."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .base import ContacthubBase
from .behaviour import EVENT_CONTEXTS, EVENT_TYPES, PASSIVE_EVENT_TYPES
from .customers import iso, now_iso
from .http import ApiError, json_response, read_json
from .query import canonical, is_canonical, parse_instant, sort_ids
from .store import WorkspaceStore

EVENT_KEYS = frozenset(
    [
        "customerId",
        "bringBackProperties",
        "type",
        "context",
        "contextInfo",
        "properties",
        "date",
        "tracking",
    ]
)


def _invalid(path: str, message: str) -> ApiError:
    return ApiError(400, "event is not valid", [{"path": path, "message": message, "data": None}])


def _csv(value: str | None, allowed: frozenset[str], name: str) -> set[str] | None:
    if not value:
        return None
    items = {v.strip() for v in value.split(",") if v.strip()}
    unknown = items - allowed
    if unknown:
        raise ApiError(
            400,
            f"unknown {name}: {', '.join(sorted(unknown))}",
            [{"path": name, "message": "invalid value", "data": None}],
        )
    return items


class EventRoutes(ContacthubBase):
    """Handlers of ``/events`` and ``/events/{id}``."""

    async def search_events(self, request: Request) -> Response:
        store = self.store(request)
        params = request.query_params
        node = self.node(store, params["nodeId"]) if params.get("nodeId") else None
        types = _csv(params.get("type"), EVENT_TYPES, "type")
        contexts = _csv(params.get("context"), EVENT_CONTEXTS, "context")
        mode = params.get("mode") or None
        if mode not in (None, "ACTIVE", "PASSIVE"):
            raise ApiError(400, "mode must be ACTIVE or PASSIVE")
        bounds = []
        for name in ("dateFrom", "dateTo"):
            raw = params.get(name)
            moment = parse_instant(raw) if raw else None
            if raw and moment is None:
                raise ApiError(400, f"{name} must be an ISO 8601 date-time")
            bounds.append(canonical(moment) if moment else None)
        date_from, date_to = bounds
        page, size = self.page_params(request)
        cid = params.get("customerId")
        if cid:
            ids = store.customer_events.get(cid, [])
            ordered = sort_ids({i: store.events[i] for i in ids}, "date", desc=True)
        else:
            ordered = store.sorted_event_ids()

        def keep(event: dict[str, Any]) -> bool:
            if types is not None and event.get("type") not in types:
                return False
            if contexts is not None and event.get("context") not in contexts:
                return False
            if mode is not None and (event.get("type") in PASSIVE_EVENT_TYPES) != (
                mode == "PASSIVE"
            ):
                return False
            if date_from or date_to:
                when = event.get("date")
                if not is_canonical(when):
                    parsed = parse_instant(when)
                    when = canonical(parsed) if parsed else None
                if when is None or (date_from and when < date_from) or (date_to and when > date_to):
                    return False
            return node is None or store.event_node(event) == node

        matched = [e for e in (store.events[i] for i in ordered) if keep(e)]
        body: dict[str, Any] = self.capped(matched, page, size)
        return json_response(body)

    def _event(self, store: WorkspaceStore, eid: str) -> dict[str, Any]:
        event = store.events.get(eid)
        if event is None:
            raise ApiError(404, f"event not found {eid}")
        return event

    async def get_event(self, request: Request) -> Response:
        return json_response(self._event(self.store(request), request.path_params["eid"]))

    async def delete_event(self, request: Request) -> Response:
        store = self.store(request)
        event = self._event(store, request.path_params["eid"])
        node = store.event_node(event)
        store.remove_event(event["id"])
        self.record(store, "DELETE", "EVENT", node, event)
        return Response(status_code=204)

    def _resolve_customer(
        self, store: WorkspaceStore, body: dict[str, Any]
    ) -> tuple[str | None, str]:
        """``(customerId or None for an anonymous session event, node id)``."""
        has_cid, has_bbp = (
            body.get("customerId") is not None,
            body.get("bringBackProperties") is not None,
        )
        if has_cid == has_bbp:
            raise _invalid(
                "/customerId", "exactly one of customerId or bringBackProperties is required"
            )
        if has_cid:
            cid = body["customerId"]
            customer = store.customers.get(cid) if isinstance(cid, str) else None
            if customer is None:
                raise _invalid("/customerId", f"customer not found {cid}")
            return cid, str(customer["nodeId"])
        bbp = body["bringBackProperties"]
        if not isinstance(bbp, dict) or bbp.get("type") not in ("EXTERNAL_ID", "SESSION_ID"):
            raise _invalid("/bringBackProperties/type", "must be EXTERNAL_ID or SESSION_ID")
        if not isinstance(bbp.get("value"), str) or not bbp["value"]:
            raise _invalid("/bringBackProperties/value", "is required")
        if not bbp.get("nodeId"):
            raise _invalid("/bringBackProperties/nodeId", "is required")
        node = self.node(store, bbp["nodeId"])
        if bbp["type"] == "SESSION_ID":
            return None, node
        hits = self.by_external_id(store, node, bbp["value"])
        if not hits:
            raise _invalid(
                "/bringBackProperties/value", f"customer not found by externalId {bbp['value']}"
            )
        return sorted(hits)[0], node

    async def create_event(self, request: Request) -> Response:
        store = self.store(request)
        body = await read_json(request, self.behaviour.max_payload_bytes, "Event's")
        if not isinstance(body, dict):
            raise _invalid("", "the event must be a JSON object")
        for key in body:
            if key not in EVENT_KEYS:
                raise _invalid(f"/{key}", "unknown property")
        if body.get("type") not in EVENT_TYPES:
            raise _invalid("/type", f"unknown event type {body.get('type')!r}")
        if body.get("context") not in EVENT_CONTEXTS:
            raise _invalid("/context", f"unknown event context {body.get('context')!r}")
        if not isinstance(body.get("properties"), dict):
            raise _invalid("/properties", "is required and must be an object")
        date = now_iso()
        if body.get("date") is not None:
            moment = parse_instant(body["date"])
            if moment is None:
                raise _invalid("/date", "must be an ISO 8601 date-time")
            date = iso(moment)
        cid, node = self._resolve_customer(store, body)
        stamp = now_iso()
        event = {
            "id": str(uuid.uuid4()),
            "customerId": cid,
            "bringBackProperties": body.get("bringBackProperties"),
            "type": body["type"],
            "context": body["context"],
            "contextInfo": body.get("contextInfo") or {},
            "properties": body["properties"],
            "tracking": body.get("tracking"),
            "date": date,
            "registeredAt": stamp,
            "updatedAt": stamp,
        }
        store.put_event(event)
        self.record(store, "CREATE", "EVENT", node, event)
        return json_response({"id": event["id"]}, 202)
