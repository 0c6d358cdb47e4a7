"""Workspace configuration routes that list what a workspace has (read-only), for
``syncer discover`` and ``syncer validate --online``.

Paths and bodies: contacthub-swagger-1.51.yaml (in /work/shared/api-docs):

- ``GET /configuration/properties/base``: ``{elements: [BasePropertyConfiguration]}``
  (name, description, enabled), swagger L2157-2186, definition L5572-5583. The names are the
  ``base`` properties of the customer JSON (DIGEST.md §1.3).
- ``GET /configuration/properties/extended``: ``ExtendedPropertyConfiguration`` =
  ``{schema: "<JSON schema as a string>"}``, swagger L2220-2247, definition L5630-5640.
- ``GET /configuration/events``: ``{elements: [EventConfiguration], page}`` (id, type, mode,
  label, description, propertiesSchema, enabled), swagger L1777-1806, definition L5593-5629;
  the types are the swagger's ``EventType`` enum (L5311-5357).
- ``GET /configuration/nodes/entries``: ``{elements: [EntryNodeConfiguration], page}``
  (id, name, description, sourcePriority, mandatoryProperties), swagger L1864-1893,
  definitions L5584-5592 and L5675-5697.

Choices (not documented): the extended schema is inferred from the stored customers'
``extended`` values (the sandbox has no schema of its own); events of a ``campaign*`` type are
PASSIVE (the customer receives them), all others ACTIVE; every event and property is enabled.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .base import ContacthubBase, paged
from .behaviour import EVENT_TYPES, PASSIVE_EVENT_TYPES
from .customers import BASE_KEYS
from .http import json_response

# what the simulator itself accepts, so a listing never disagrees with a write: the base keys
# of a customer (DIGEST.md §1.3) and the event types of API 1.299.1 (a superset of 1.51's enum)
BASE_PROPERTIES = sorted(BASE_KEYS)


def _json_type(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, dict):
        return {"type": "object", "properties": {k: _json_type(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"type": "array", "items": _json_type(value[0]) if value else {}}
    return {"type": "string"}


class ConfigurationRoutes(ContacthubBase):
    """Handlers of the configuration listings."""

    async def base_properties(self, request: Request) -> Response:
        elements = [
            {"name": name, "description": f"base.{name}", "enabled": True}
            for name in BASE_PROPERTIES
        ]
        return json_response({"elements": elements})

    async def extended_properties(self, request: Request) -> Response:
        properties: dict[str, Any] = {}
        for customer in self.store(request).customers.values():
            for key, value in (customer.get("extended") or {}).items():
                if key not in properties and value is not None:
                    properties[key] = _json_type(value) | {
                        "contactlabProperties": {"label": key, "enabled": True}
                    }
        schema = {"type": "object", "properties": dict(sorted(properties.items()))}
        return json_response({"schema": json.dumps(schema)})

    async def event_configurations(self, request: Request) -> Response:
        elements = [
            {
                "id": event_type,
                "type": event_type,
                "mode": "PASSIVE" if event_type in PASSIVE_EVENT_TYPES else "ACTIVE",
                "label": event_type,
                "description": event_type,
                "propertiesSchema": json.dumps({"type": "object"}),
                "enabled": True,
            }
            for event_type in sorted(EVENT_TYPES)
        ]
        return json_response(paged(elements, len(elements), 0, len(elements), len(elements)))

    async def entry_nodes(self, request: Request) -> Response:
        nodes = [
            {
                "id": node,
                "name": f"node {n + 1}",
                "description": "entry node",
                "sourcePriority": [],
                "mandatoryProperties": [],
            }
            for n, node in enumerate(self.store(request).node_ids)
        ]
        return json_response(paged(nodes, len(nodes), 0, max(1, len(nodes)), max(1, len(nodes))))
