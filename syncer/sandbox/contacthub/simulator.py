"""``ContacthubSimulator``: auth, workspaces/nodes, admin API; the routes live in mixins."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from ..app import ADMIN_PREFIX, FaultMiddleware
from .api_configuration import ConfigurationRoutes
from .api_customers import CustomerRoutes
from .api_events import EventRoutes
from .api_updates import UpdateRoutes
from .customers import now_iso
from .http import error_body, json_response
from .store import LeafSharer, WorkspaceStore

Handler = Callable[[Request], Awaitable[Response]]
PREFIX = "/hub/v1/workspaces/{ws}"
BIG_LOAD = 50_000


class ContacthubSimulator(CustomerRoutes, EventRoutes, UpdateRoutes, ConfigurationRoutes):
    """Contacthub API simulator: customers, events and the update stream of workspaces.

    Constructor: ``workspace_id``, ``node_ids`` (entry nodes of that workspace), ``token``
    (``Authorization: Bearer <token>``), ``behaviour`` (:class:`ContacthubBehaviour`),
    ``faults`` and ``extra_workspaces`` (more workspace ids -> node ids).
    """

    def api_routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Handler, list[str]]] = [
            ("/customers", self.search_customers, ["GET"]),
            ("/customers", self.create_customer, ["POST"]),
            ("/customers/{cid}", self.get_customer, ["GET"]),
            ("/customers/{cid}", self.patch_customer, ["PATCH"]),
            ("/customers/{cid}", self.put_customer, ["PUT"]),
            ("/customers/{cid}", self.delete_customer, ["DELETE"]),
            ("/events", self.search_events, ["GET"]),
            ("/events", self.create_event, ["POST"]),
            ("/events/{eid}", self.get_event, ["GET"]),
            ("/events/{eid}", self.delete_event, ["DELETE"]),
            ("/updates", self.read_updates, ["GET"]),
            ("/updates/last-offset", self.last_offset, ["GET"]),
            ("/configuration/properties/base", self.base_properties, ["GET"]),
            ("/configuration/properties/extended", self.extended_properties, ["GET"]),
            ("/configuration/events", self.event_configurations, ["GET"]),
            ("/configuration/nodes/entries", self.entry_nodes, ["GET"]),
            (
                "/configuration/nodes/entries/{nid}/unique-customer-matching-policy",
                self.matching_policy,
                ["GET"],
            ),
        ]
        return [Route(PREFIX + path, self._guard(fn), methods=m) for path, fn, m in table]

    def asgi(self) -> ASGIApp:
        """The frame's app, but an unknown path or method answers the standard error body too
        (every error of the API has one; the official Python SDK reads ``data`` of each)."""

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            return json_response(error_body(str(exc.detail)), exc.status_code)

        app = Starlette(
            routes=[Mount(ADMIN_PREFIX, routes=self.admin_routes()), *self.api_routes()],
            exception_handlers={HTTPException: http_error},
        )
        return FaultMiddleware(app, self)

    # -- admin ---------------------------------------------------------------------------------
    def admin_routes(self) -> list[BaseRoute]:
        async def state(request: Request) -> Response:
            summary = request.query_params.get("summary") in ("1", "true")
            return json_response(self.dump_state(summary=summary))

        async def behaviour(request: Request) -> Response:
            if request.method == "PUT":
                try:
                    self.behaviour = self.behaviour.updated(await request.json())
                except (TypeError, ValueError) as exc:
                    return json_response({"error": str(exc)}, 400)
            return json_response(self.behaviour.to_dict())

        mine: list[BaseRoute] = [
            Route("/state", state, methods=["GET"]),
            Route("/behaviour", behaviour, methods=["GET", "PUT"]),
        ]
        return mine + super().admin_routes()

    def dump_state(self, summary: bool = False) -> dict[str, Any]:
        """Counts per workspace; unless ``summary``, customers and events of the default one."""
        out: dict[str, Any] = {
            "workspaces": {
                ws: {
                    "nodes": store.node_ids,
                    "customers": len(store.customers),
                    "events": len(store.events),
                    "lastOffset": len(store.updates),
                }
                for ws, store in self.workspaces.items()
            }
        }
        if not summary:
            store = self.workspaces[self.workspace_id]
            out["customers"] = list(store.customers.values())
            out["events"] = list(store.events.values())
        return out

    def load(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add customers/events (or generate them); see :mod:`syncer.sandbox.contacthub`."""
        store = self.workspaces[data.get("workspace_id", self.workspace_id)]
        append = bool(data.get("append_updates", False))
        gc_was_enabled = gc.isenabled()
        gc.disable()  # millions of new dicts would trigger full collections over and over
        try:
            customers: Iterable[dict[str, Any]] = data.get("customers", [])
            events: Iterable[dict[str, Any]] = data.get("events", [])
            sharer: LeafSharer | None = LeafSharer()
            if "generate" in data:
                from ..datagen import generate_dataset

                spec = data["generate"]
                customers, events = generate_dataset(
                    int(spec.get("customers", 0)),
                    int(spec.get("events", 0)),
                    seed=int(spec.get("seed", 0)),
                    node_id=spec.get("node_id", store.node_ids[0]),
                    shared=True,
                )
                sharer = None  # generated customers share their parts already, and faster
            n_customers = self._load_customers(store, customers, append, sharer)
            n_events = self._load_events(store, events, append)
        finally:
            if gc_was_enabled:
                gc.enable()
        if n_customers + n_events >= BIG_LOAD:
            gc.freeze()  # keep later collections from rescanning the whole store
        return {"customers": n_customers, "events": n_events, "lastOffset": len(store.updates)}

    def _load_customers(
        self,
        store: WorkspaceStore,
        customers: Iterable[dict[str, Any]],
        append: bool,
        sharer: LeafSharer | None,
    ) -> int:
        count = 0
        for doc in customers:
            if sharer is not None:
                sharer.share(doc)
            doc.setdefault("nodeId", store.node_ids[0])
            doc.setdefault("intId", store.next_int_id)
            store.next_int_id = max(store.next_int_id, int(doc["intId"])) + 1
            if "id" not in doc or "updatedAt" not in doc:
                stamp = now_iso()
                doc.setdefault("id", str(uuid.uuid4()))
                doc.setdefault("registeredAt", stamp)
                doc.setdefault("updatedAt", stamp)
            for key, default in (("version", 0), ("deleted", 0), ("enabled", True)):
                doc.setdefault(key, default)
            store.customers[doc["id"]] = doc
            if append:
                self.record(store, "CREATE", "CUSTOMER", doc["nodeId"], doc)
            count += 1
        store.put_customer_bulk_done()
        return count

    def _load_events(
        self, store: WorkspaceStore, events: Iterable[dict[str, Any]], append: bool
    ) -> int:
        count = 0
        for event in events:
            event.setdefault("id", str(uuid.uuid4()))
            store.put_event(event)
            if append:
                self.record(store, "CREATE", "EVENT", store.event_node(event), event)
            count += 1
        return count
