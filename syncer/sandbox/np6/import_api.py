"""NP6 field, import-format and import endpoints."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .http import Np6Error, import_response, json_object, json_response, media_type
from .imports import (
    ImportDefinition,
    ImportFormat,
    InvalidDefinition,
    Options,
    merge_features,
    new_execution,
    validate_features,
)
from .targets import now_iso

if TYPE_CHECKING:
    from .simulator import Np6Simulator

_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?["']?([^"';]+)""", re.IGNORECASE)


def _int_param(request: Request, name: str = "id") -> int:
    raw = request.path_params[name]
    if not raw.isdigit():
        raise Np6Error(404)
    return int(raw)


class ImportApi:
    """Handlers for ``/fields``, ``/importFormats`` and ``/imports``."""

    def __init__(self, sim: Np6Simulator) -> None:
        self.sim = sim

    # -- fields ------------------------------------------------------------------------------
    async def list_fields(self, request: Request) -> Response:
        return json_response([f.to_json() for f in self.sim.schema.fields])

    async def get_field(self, request: Request) -> Response:
        fld = self.sim.schema.by_id.get(_int_param(request))
        if fld is None:
            raise Np6Error(404)
        return json_response(fld.to_json())

    # -- import formats ----------------------------------------------------------------------
    async def create_format(self, request: Request) -> Response:
        """``POST /importFormats``: 409 (empty body) if the name exists."""
        body = await json_object(request)
        if any(f.name == body.get("name") for f in self.sim.formats.values()):
            raise Np6Error(409)
        try:
            fmt = ImportFormat.from_json(self.sim.next_id("format"), body, self.sim.schema)
        except InvalidDefinition:
            raise Np6Error(400) from None
        self.sim.formats[fmt.id] = fmt
        return json_response(fmt.to_json())

    async def list_formats(self, request: Request) -> Response:
        return json_response([f.to_json() for f in self.sim.formats.values()])

    async def get_format(self, request: Request) -> Response:
        fmt = self.sim.formats.get(_int_param(request))
        if fmt is None:
            raise Np6Error(404)
        return json_response(fmt.to_json())

    # -- import definitions ------------------------------------------------------------------
    def _definition(self, request: Request) -> ImportDefinition:
        definition = self.sim.imports.get(_int_param(request))
        if definition is None:
            raise Np6Error(404)
        return definition

    def _binding(self, value: Any) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise Np6Error(400)
        if value not in self.sim.formats:
            raise Np6Error(400)
        return value

    async def create_import(self, request: Request) -> Response:
        """``POST /imports``: 200 with the definition (incl. ``id``)."""
        body = await json_object(request)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise Np6Error(400)
        try:
            features = validate_features(body.get("features"))
        except InvalidDefinition:
            raise Np6Error(400) from None
        source = body.get("source") or {"type": "file"}
        if not isinstance(source, dict) or source.get("type") not in ("file", "ftp"):
            raise Np6Error(400)
        now = now_iso()
        definition = ImportDefinition(
            id=self.sim.next_id("import"),
            name=name,
            creation_date=now,
            binding=self._binding(body.get("binding")),
            features=features,
            source={**source, "creationDate": now, "filename": None},
        )
        self.sim.imports[definition.id] = definition
        return import_response(definition.to_json())

    async def list_imports(self, request: Request) -> Response:
        return import_response([d.to_json() for d in self.sim.imports.values()])

    async def get_import(self, request: Request) -> Response:
        return import_response(self._definition(request).to_json())

    async def delete_import(self, request: Request) -> Response:
        """``DELETE /imports/{id}``: 204; 409 while an execution is processing."""
        definition = self._definition(request)
        if definition.running:
            raise Np6Error(409)
        del self.sim.imports[definition.id]
        return Response(status_code=204)

    async def upload_source(self, request: Request) -> Response:
        """``PUT /imports/{id}/source``: raw file bytes, ``application/octet-stream`` only."""
        definition = self._definition(request)
        if media_type(request) != "application/octet-stream":
            raise Np6Error(415)
        data = await request.body()
        if not data:
            raise Np6Error(400)
        if len(data) > self.sim.behaviour.max_source_bytes:
            raise Np6Error(413)
        match = _FILENAME.search(request.headers.get("content-disposition", ""))
        filename = match[1].strip() if match else "import.csv"
        definition.data = data
        definition.source = {
            "type": "file",
            "id": self.sim.next_id("source"),
            "creationDate": definition.source.get("creationDate", now_iso()),
            "updateDate": now_iso(),
            "filename": f"{secrets.token_hex(5)}_{filename}",
            "data": [],
        }
        return import_response(definition.source)

    async def start_execution(self, request: Request) -> Response:
        """``POST /imports/{id}/executions`` body ``{"binding"?, "features"?}`` -> state 0.

        404 unknown import; 409 if an execution is still processing; 400 without an uploaded
        source or without a (known) binding.
        """
        definition = self._definition(request)
        body = await json_object(request, required=False)
        if definition.running:
            raise Np6Error(409)
        if definition.data is None:
            raise Np6Error(400)
        binding = self._binding(body.get("binding")) or definition.binding
        if binding is None:
            raise Np6Error(400)
        try:
            override = validate_features(body.get("features"))
        except InvalidDefinition:
            raise Np6Error(400) from None
        features = merge_features(definition.features, override)
        b = self.sim.behaviour
        defaults = Options(b.duplicate_default, b.update_existing_default, b.crush_data_default)
        execution = new_execution(
            len(definition.executions) + 1,
            definition,
            self.sim.formats[binding],
            features,
            defaults,
        )
        definition.executions.append(execution)
        self.sim.pending.append(execution)
        return import_response(execution.to_json())

    async def last_execution(self, request: Request) -> Response:
        """``GET /imports/{id}/executions``: the last execution; 404 if there is none."""
        definition = self._definition(request)
        if not definition.executions:
            if self.sim.behaviour.no_execution == "empty_200":
                return import_response({})
            raise Np6Error(404)
        last = definition.executions[-1]
        if self.sim.behaviour.execution_body == "state":
            return import_response({"state": last.state})  # the 8.1.0 reference's example
        return import_response(last.to_json())

    def routes(self) -> list[tuple[str, Any, list[str], bool]]:
        """``(path, handler, methods, needs the vnd Accept header)``: every ``/imports`` call
        does (NP6-SLATE ``_imports.md`` L401-403 calls it imperative for the resource)."""
        return [
            ("/fields", self.list_fields, ["GET"], False),
            ("/fields/{id}", self.get_field, ["GET"], False),
            ("/importFormats", self.create_format, ["POST"], False),
            ("/importFormats", self.list_formats, ["GET"], False),
            ("/importFormats/{id}", self.get_format, ["GET"], False),
            ("/imports", self.create_import, ["POST"], True),
            ("/imports", self.list_imports, ["GET"], True),
            ("/imports/{id}", self.get_import, ["GET"], True),
            ("/imports/{id}", self.delete_import, ["DELETE"], True),
            ("/imports/{id}/source", self.upload_source, ["PUT"], True),
            ("/imports/{id}/executions", self.start_execution, ["POST"], True),
            ("/imports/{id}/executions", self.last_execution, ["GET"], True),
        ]
