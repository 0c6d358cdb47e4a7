"""``ContacthubBase``: state, auth and helpers shared by the route mixins."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..app import Simulator
from ..faults import FaultPlan
from .behaviour import DEFAULT_NODE_ID, DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID, ContacthubBehaviour
from .http import ApiError, error_body, int_param, json_response
from .store import WorkspaceStore

Handler = Callable[[Request], Awaitable[Response]]


def paged(
    items: list[Any], total: int, page: int, size: int, cap: int, vintage: str = "union"
) -> dict[str, Any]:
    """The Contactlab paged body for ``items`` (already sliced) out of ``total`` reachable.

    The page object (switch ``page_object``) is by default the union of both vintages:
    ``totalUnfilteredElements`` (every SDK fixture, always 0 whatever ``totalElements``; the
    Python SDK reads it on every page) and ``maxElements``/``maxPages`` (1.299.1); ``legacy``
    has only the former, ``current`` only the latter.
    """
    info: dict[str, Any] = {
        "size": size,
        "totalElements": total,
        "totalUnfilteredElements": 0,
        "totalPages": math.ceil(total / size),
        "number": page,
        "maxElements": cap,
        "maxPages": math.ceil(cap / size),
    }
    if vintage == "legacy":
        del info["maxElements"], info["maxPages"]
    elif vintage == "current":
        del info["totalUnfilteredElements"]
    return {"elements": items, "page": info}


class ContacthubBase(Simulator):
    """Workspaces, token, behaviour switches, auth and the helpers every route uses."""

    name = "contacthub"

    def __init__(
        self,
        workspace_id: str = DEFAULT_WORKSPACE_ID,
        node_ids: Sequence[str] = (DEFAULT_NODE_ID,),
        token: str = DEFAULT_TOKEN,
        behaviour: ContacthubBehaviour | None = None,
        faults: FaultPlan | None = None,
        extra_workspaces: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(faults)
        self.token = token
        self.behaviour = behaviour or ContacthubBehaviour()
        layout = {workspace_id: list(node_ids), **dict(extra_workspaces or {})}
        self.workspaces = {ws: WorkspaceStore(ws, nodes) for ws, nodes in layout.items()}
        self.workspace_id = workspace_id
        self.node_id = node_ids[0]

    def error_body(self, status: int, message: str) -> Any:
        return error_body(message)

    def reset(self) -> None:
        for store in self.workspaces.values():
            store.clear()

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            try:
                self._authorize(request)
                return await handler(request)
            except ApiError as exc:
                body = error_body(exc.message, exc.errors, exc.data)
                return json_response(body, exc.status)

        return guarded

    def _authorize(self, request: Request) -> None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise ApiError(401, "The client is not authorized to access the API")
        ws = request.path_params["ws"]
        if ws not in self.workspaces:
            raise ApiError(403, f"workspace not found: {ws}")
        if ws in self.behaviour.down_workspaces:  # the per-workspace fault switch (behaviour.py)
            raise ApiError(503, f"workspace temporarily unavailable: {ws}")

    # -- helpers for the mixins ----------------------------------------------------------------
    def store(self, request: Request) -> WorkspaceStore:
        return self.workspaces[request.path_params["ws"]]

    def node(self, store: WorkspaceStore, node_id: Any) -> str:
        if node_id not in store.node_ids:
            raise ApiError(404, f"node not found {node_id}")
        return str(node_id)

    def record(
        self, store: WorkspaceStore, operation: str, entity: str, node: str, data: dict[str, Any]
    ) -> int:
        """Append one update to the stream of ``store``; returns its offset."""
        return store.updates.append(operation, entity, node, data, int(time.time() * 1000))

    async def matching_policy(self, request: Request) -> Response:
        self.node(self.store(request), request.path_params["nid"])
        b = self.behaviour
        return json_response(
            {"properties": b.matching_policy, "caseSensitive": b.matching_case_sensitive}
        )

    def page_params(self, request: Request) -> tuple[int, int]:
        b = self.behaviour
        page = int_param(request, "page", 0, 0, None)
        size = int_param(request, "size", b.default_page_size, 1, b.max_page_size)
        assert page is not None and size is not None
        return page, size

    def capped(self, matched: list[Any], page: int, size: int) -> dict[str, Any]:
        """Apply the matched-elements cap (truncate or 400) and cut out one page."""
        cap = self.behaviour.search_cap
        if len(matched) > cap and self.behaviour.search_cap_mode == "error":
            raise ApiError(
                400,
                f"The maximum number of matched elements is {cap}: the query matched "
                f"{len(matched)}, refine it",
                data={"matchedElements": len(matched), "maxElements": cap},
            )
        total = min(len(matched), cap)
        start = page * size
        window = matched[start : min(start + size, total)] if start < total else []
        return paged(window, total, page, size, cap, self.behaviour.page_object)

    def by_external_id(self, store: WorkspaceStore, node: str, external_id: str) -> set[str]:
        """Ids of the node's customers with this externalId (index when the policy allows)."""
        b = self.behaviour
        hits = store.customers_by_external_id(
            node, external_id, tuple(b.matching_policy), b.matching_case_sensitive
        )
        if hits is None:
            hits = {
                cid
                for cid, c in store.customers.items()
                if c.get("externalId") == external_id and c.get("nodeId") == node
            }
        return hits
