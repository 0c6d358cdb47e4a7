"""NP6 target endpoints: ``/targets``, ``/targets/{id}``, count, bulk delete and redlist."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .http import Np6Error, json_object, json_response
from .targets import REDLIST_CHANNELS, REDLIST_ORIGINS, RedlistEvent, Target, now_iso

if TYPE_CHECKING:
    from .simulator import Np6Simulator

NO_UNICITY = "target cannot be identified - unicity is null"  # observed body (NP6-CHAPS)


def parse_moment(value: Any) -> datetime:
    """ISO date / date-time (naive = UTC) or Unix seconds; raises ``Np6Error(400)``."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and value.isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise Np6Error(400)


class TargetApi:
    """Handlers working on the simulator's :class:`TargetStore`."""

    def __init__(self, sim: Np6Simulator) -> None:
        self.sim = sim

    # -- helpers -----------------------------------------------------------------------------
    def _values(self, body: dict[str, Any]) -> dict[str, Any]:
        """Parse a flat write body ``{"<fieldId>" | "<field name>": value}``; 400 if invalid."""
        if isinstance(body.get("fields"), dict):
            raise Np6Error(400, NO_UNICITY)
        values: dict[str, Any] = {}
        for key, raw in body.items():
            fld = self.sim.schema.resolve(key)
            if fld is None:
                raise Np6Error(400)
            if raw is None or raw == "":
                values[str(fld.id)] = None
                continue
            try:
                values[str(fld.id)] = fld.parse(raw)
            except ValueError:
                raise Np6Error(400) from None
        return values

    def _unicity_key(self, raw: str) -> str:
        try:
            return self.sim.schema.unicity_key(raw)
        except ValueError:
            raise Np6Error(400) from None

    def _target(self, request: Request) -> Target:
        target = self.sim.store.by_id.get(request.path_params["id"])
        if target is None:
            raise Np6Error(404)
        return target

    def _create(self, values: dict[str, Any]) -> Target:
        for fld in self.sim.schema.fields:
            if fld.is_mandatory and values.get(str(fld.id)) is None:
                raise Np6Error(400, NO_UNICITY if fld.is_unicity else None)
        return self.sim.store.create(values, now_iso())

    # -- endpoints ---------------------------------------------------------------------------
    async def get_targets(self, request: Request) -> Response:
        """``GET /targets?unicity=`` (404 if none) or, without it, every target (no paging)."""
        store = self.sim.store
        unicity = request.query_params.get("unicity")
        if unicity is None:
            return json_response([t.to_json() for t in store.by_id.values()])
        target = store.find(self._unicity_key(unicity))
        if target is None:
            raise Np6Error(404)
        return json_response(target.to_json())

    async def upsert_target(self, request: Request) -> Response:
        """``PUT /targets?unicity=``: create or update; a body unicity must match the query."""
        unicity = request.query_params.get("unicity")
        if not unicity:
            raise Np6Error(400, NO_UNICITY)
        key = self._unicity_key(unicity)
        values = self._values(await json_object(request))
        uid = str(self.sim.schema.unicity.id)
        if values.get(uid) not in (None, key):
            raise Np6Error(400)
        values[uid] = key
        target = self.sim.store.find(key)
        if target is None:
            target = self._create(values)
        else:
            self.sim.store.update(target, values, now_iso(), crush=True)
        return json_response(target.to_json())

    async def create_target(self, request: Request) -> Response:
        """``POST /targets``: 409 (empty body) if the unicity value exists."""
        values = self._values(await json_object(request))
        key = values.get(str(self.sim.schema.unicity.id))
        if key is not None and self.sim.store.find(str(key)) is not None:
            raise Np6Error(409)
        return json_response(self._create(values).to_json())

    async def count(self, request: Request) -> Response:
        return json_response({"targetsCount": len(self.sim.store.by_id)})

    async def get_target(self, request: Request) -> Response:
        return json_response(self._target(request).to_json())

    async def update_target(self, request: Request) -> Response:
        """``PUT /targets/{id}``: 404 unknown id, 409 if the new unicity belongs to another."""
        target = self._target(request)
        values = self._values(await json_object(request))
        uid = str(self.sim.schema.unicity.id)
        if values.get(uid) is not None:
            other = self.sim.store.find(str(values[uid]))
            if other is not None and other is not target:
                raise Np6Error(409)
        self.sim.store.update(target, values, now_iso(), crush=True)
        return json_response(target.to_json())

    async def delete_target(self, request: Request) -> Response:
        self.sim.store.delete(self._target(request).id)
        return Response(status_code=204)

    async def bulk_delete(self, request: Request) -> Response:
        """``DELETE /targets`` by unicity, id or segment; unknown values are ignored, or (switch
        ``unknown_delete="not_found_404"``) answer 404 and nothing is deleted."""
        body = await json_object(request)
        kind, value = body.get("type", "id"), body.get("value")
        if kind not in ("unicity", "id", "segment") or not isinstance(value, list):
            raise Np6Error(400)
        store = self.sim.store
        ids: list[str] = []
        for item in value:
            if kind == "segment":
                if not isinstance(item, int | str):
                    raise Np6Error(400)
                ids.extend(sorted(store.segments.get(int(item), set())))
                continue
            if not isinstance(item, list) or len(item) != 1 or not isinstance(item[0], str):
                raise Np6Error(400)
            if kind == "id":
                ids.append(item[0])
                continue
            try:
                target = store.find(self.sim.schema.unicity_key(item[0]))
            except ValueError:
                target = None
            if target is not None:
                ids.append(target.id)
            elif self.sim.behaviour.unknown_delete == "not_found_404":
                raise Np6Error(404)  # before any delete: nothing applied
        strict = self.sim.behaviour.unknown_delete == "not_found_404"
        if strict and kind == "id" and any(store.by_id.get(i) is None for i in ids):
            raise Np6Error(404)
        deleted = []
        uid = str(self.sim.schema.unicity.id)
        for target_id in ids:
            target = store.delete(target_id)
            if target is not None:
                deleted.append({"id": target.id, "unicity": [target.fields[uid]]})
        if self.sim.behaviour.bulk_delete_response == "empty":
            return Response(status_code=204)
        return json_response(deleted)

    async def redlist_add(self, request: Request) -> Response:
        """``POST /targets/{id}/redlist/{mail|sms}`` body ``{id, timestamp, origin, detail}``."""
        channel = request.path_params["channel"]
        if channel not in REDLIST_CHANNELS:
            raise Np6Error(404)
        target = self._target(request)
        body = await json_object(request, required=False)
        origin = body.get("origin", 1)
        if not isinstance(origin, int) or isinstance(origin, bool) or origin not in REDLIST_ORIGINS:
            raise Np6Error(400)
        detail = body.get("detail")
        if detail is not None and not isinstance(detail, str):
            raise Np6Error(400)
        raw_ts = body.get("timestamp")
        moment = datetime.now(UTC) if raw_ts is None else parse_moment(raw_ts)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.sim.store.redlist(
            target, RedlistEvent(channel, target.id, moment, stamp, origin, detail)
        )
        return Response(status_code=204)

    async def redlist_read(self, request: Request) -> Response:
        """``GET /targets/redlist/{mail|sms}?startDate=&endDate=`` (both required, inclusive)."""
        channel = request.path_params["channel"]
        if channel not in REDLIST_CHANNELS:
            raise Np6Error(404)
        start, end = request.query_params.get("startDate"), request.query_params.get("endDate")
        if start is None or end is None:
            raise Np6Error(400)
        low, high = parse_moment(start), parse_moment(end)
        events = [
            e.to_json()
            for e in self.sim.store.redlist_events
            if e.channel == channel and low <= e.moment <= high
        ]
        return json_response(events)

    def routes(self) -> list[tuple[str, Any, list[str]]]:
        return [
            ("/targets", self.get_targets, ["GET"]),
            ("/targets", self.upsert_target, ["PUT"]),
            ("/targets", self.create_target, ["POST"]),
            ("/targets", self.bulk_delete, ["DELETE"]),
            ("/targets/count", self.count, ["GET"]),
            ("/targets/redlist/{channel}", self.redlist_read, ["GET"]),
            ("/targets/{id}/redlist/{channel}", self.redlist_add, ["POST"]),
            ("/targets/{id}", self.get_target, ["GET"]),
            ("/targets/{id}", self.update_target, ["PUT"]),
            ("/targets/{id}", self.delete_target, ["DELETE"]),
        ]
