"""Update stream routes: ``GET /updates`` and ``GET /updates/last-offset``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .base import ContacthubBase
from .http import ApiError, int_param, json_response, raw_json_response
from .store import WorkspaceStore

ENTITIES = ("CUSTOMER", "EVENT")


class UpdateRoutes(ContacthubBase):
    """Handlers of the update stream."""

    def _filters(self, request: Request, store: WorkspaceStore) -> tuple[str | None, str | None]:
        node = request.query_params.get("nodeId") or None
        if node is not None:
            self.node(store, node)
        entity = request.query_params.get("entity") or None
        if entity is not None and entity not in ENTITIES:
            raise ApiError(
                400,
                f"entity must be one of {', '.join(ENTITIES)}",
                [{"path": "entity", "message": f"invalid value {entity!r}"}],
            )
        return node, entity

    async def read_updates(self, request: Request) -> Response:
        store = self.store(request)
        b = self.behaviour
        size = int_param(request, "size", b.stream_default_size, 0, b.stream_max_size)
        offset = int_param(request, "offset", None, 0, None)
        timestamp = int_param(request, "timestamp", None, 0, None)
        node, entity = self._filters(request, store)
        assert size is not None
        if offset is not None:
            after = offset
        elif timestamp is not None:
            ms = timestamp * 1000 if b.timestamp_unit == "s" else timestamp
            after = store.updates.offset_before(ms)
        else:
            after = 0
        next_offset, picked = store.updates.read(after, size, node, entity)
        id_only = b.delete_payload == "id_only"
        updates: list[dict[str, Any]] = []
        for operation, kind, _node, data in picked:
            if id_only and operation == "DELETE":
                data = {"id": data["id"]}
            updates.append({"operation": operation, "entity": {"type": kind, "data": data}})
        return raw_json_response(orjson.dumps({"nextOffset": next_offset, "updates": updates}))

    async def last_offset(self, request: Request) -> Response:
        store = self.store(request)
        node, entity = self._filters(request, store)
        return json_response({"lastOffset": store.updates.last_offset(node, entity)})
