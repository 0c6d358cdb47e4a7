"""Customer routes: search, get, create (MERGE / 409), PATCH, PUT, DELETE."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .base import ContacthubBase
from .customers import (
    merged_customer,
    new_customer,
    patched_customer,
    replaced_customer,
    validate_customer,
)
from .http import ApiError, empty_response, json_response, read_json
from .query import QueryError, compile_query, parse_sort, project, sort_ids
from .store import WorkspaceStore

API_BASE = "https://api.contactlab.it/hub/v1"


class CustomerRoutes(ContacthubBase):
    """Handlers of ``/customers`` and ``/customers/{id}``."""

    async def search_customers(self, request: Request) -> Response:
        store = self.store(request)
        params = request.query_params
        if not params.get("nodeId"):
            raise ApiError(
                400, "nodeId is required", [{"path": "nodeId", "message": "must not be null"}]
            )
        node = self.node(store, params["nodeId"])
        page, size = self.page_params(request)
        try:
            prop, desc = parse_sort(params.get("sort"), ("updatedAt", True))
            pred = compile_query(params["query"]) if params.get("query") else None
        except QueryError as exc:
            raise ApiError(400, str(exc), [{"path": "query", "message": str(exc)}]) from None
        fields = [f.strip() for f in params.get("fields", "").split(",") if f.strip()]
        customers = store.customers
        external_id = params.get("externalId")
        query_text = params.get("query")

        def compute() -> list[str]:
            if external_id is None:
                return store.matching_ids(node, prop, desc, query_text, pred)
            ordered = sort_ids(
                {c: customers[c] for c in self.by_external_id(store, node, external_id)},
                prop,
                desc,
            )
            return ordered if pred is None else [c for c in ordered if pred(customers[c])]

        key = (node, prop, desc, external_id, query_text)
        ordered = store.cached_search(key, compute)
        body = self.capped(ordered, page, size)
        docs = [customers[cid] for cid in body["elements"]]
        body["elements"] = [project(d, fields) for d in docs] if fields else docs
        return json_response(body)

    def _customer(self, store: WorkspaceStore, cid: str) -> dict[str, Any]:
        doc = store.customers.get(cid)
        if doc is None:
            raise ApiError(404, f"customer not found {cid}")
        return doc

    async def get_customer(self, request: Request) -> Response:
        store = self.store(request)
        return json_response(self._customer(store, request.path_params["cid"]))

    async def _valid_body(self, request: Request) -> dict[str, Any]:
        body = await read_json(request, self.behaviour.max_payload_bytes, "Customer's")
        errors = validate_customer(body)
        if errors:
            raise ApiError(400, "customer is not valid", errors)
        assert isinstance(body, dict)
        return body

    async def create_customer(self, request: Request) -> Response:
        store = self.store(request)
        body = await self._valid_body(request)
        if not body.get("nodeId"):
            raise ApiError(
                400, "customer is not valid", [{"path": "/nodeId", "message": "is required"}]
            )
        node = self.node(store, body["nodeId"])
        b = self.behaviour
        policy = tuple(b.matching_policy)
        if store.match_key(body, policy, b.matching_case_sensitive) is None:
            errors = [
                {
                    "path": "/" + p.replace(".", "/"),
                    "message": "unique customer property is required",
                }
                for p in policy
            ]
            raise ApiError(400, "source customer is not valid", errors)
        existing = store.find_match(body, policy, b.matching_case_sensitive)
        if existing is not None:
            if b.conflict_mode == "409":
                ws = store.workspace_id
                href = f"{API_BASE}/workspaces/{ws}/customers/{existing}"
                raise ApiError(
                    409,
                    f"Conflict with exiting customer {existing}",
                    data={"customer": {"id": existing, "href": href}},
                )
            doc = merged_customer(store.customers[existing], body)
            store.put_customer(doc)
            self.record(store, "UPDATE", "CUSTOMER", node, doc)
            return json_response(doc, b.merge_status)
        doc = new_customer(body, store.next_int_id)
        store.next_int_id += 1
        store.put_customer(doc)
        self.record(store, "CREATE", "CUSTOMER", node, doc)
        return json_response(doc, 201)

    async def _update(self, request: Request, full: bool) -> Response:
        store = self.store(request)
        old = self._customer(store, request.path_params["cid"])
        body = await self._valid_body(request)
        if full and not body.get("nodeId"):
            raise ApiError(
                400, "customer is not valid", [{"path": "/nodeId", "message": "is required"}]
            )
        if "nodeId" in body and body["nodeId"] != old["nodeId"]:
            self.node(store, body["nodeId"])
            raise ApiError(
                400, "customer is not valid", [{"path": "/nodeId", "message": "is immutable"}]
            )
        strict = request.query_params.get("mode") == "STRICT"
        doc = replaced_customer(old, body, strict) if full else patched_customer(old, body, strict)
        b = self.behaviour
        policy = tuple(b.matching_policy)
        other = store.find_match(doc, policy, b.matching_case_sensitive)
        if other is not None and other != doc["id"]:
            raise ApiError(
                409,
                f"Conflict with exiting customer {other}",
                data={"customer": {"id": other}},
            )
        store.put_customer(doc)
        self.record(store, "UPDATE", "CUSTOMER", doc["nodeId"], doc)
        return json_response(doc)

    async def patch_customer(self, request: Request) -> Response:
        return await self._update(request, full=False)

    async def put_customer(self, request: Request) -> Response:
        return await self._update(request, full=True)

    async def delete_customer(self, request: Request) -> Response:
        store = self.store(request)
        cid = request.path_params["cid"]
        self._customer(store, cid)
        doc, events = store.remove_customer(cid)
        if self.behaviour.cascade_event_updates:
            for event in events:
                self.record(store, "DELETE", "EVENT", doc["nodeId"], event)
        self.record(store, "DELETE", "CUSTOMER", doc["nodeId"], doc)
        return empty_response(200)
