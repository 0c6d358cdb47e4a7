"""NP6 targets (contacts): the store, keyed by id and by unicity value, plus the redlist."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .fields import Schema

_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
REDLIST_CHANNELS = ("mail", "sms")
REDLIST_ORIGINS = range(10)  # 0 unknown, 1 API, 2 imports, 3 form, 4 unsubscribe, ... 9


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def base36_id(number: int) -> str:
    """``000MLGPR``-style id: 8 upper-case base-36 characters."""
    chars = []
    while number:
        number, digit = divmod(number, 36)
        chars.append(_BASE36[digit])
    return "".join(reversed(chars)).rjust(8, "0")


@dataclass(slots=True)
class Target:
    """One target; ``fields`` is keyed by the field id as a string, like the API's read shape."""

    id: str
    creation_date: str
    last_update_date: str
    fields: dict[str, Any]
    red_list: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "creationDate": self.creation_date,
            "lastUpdateDate": self.last_update_date,
            "fields": dict(self.fields),
            "bounce": [],
            "redList": {k: dict(v) for k, v in self.red_list.items()},
        }


@dataclass(slots=True)
class RedlistEvent:
    """One ``POST /targets/{id}/redlist/{channel}`` (or redList import feature) call."""

    channel: str
    target_id: str
    moment: datetime
    timestamp: str
    origin: int
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.target_id,
            "channel": self.channel,
            "timestamp": self.timestamp,
            "origin": self.origin,
            "detail": self.detail,
        }


class TargetStore:
    """All targets of the tenant, with a unicity index."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.by_id: dict[str, Target] = {}
        self.by_unicity: dict[str, str] = {}
        self.redlist_events: list[RedlistEvent] = []
        self.segments: dict[int, set[str]] = {}
        self._next = int("MLGPR", 36)  # first id: 000MLGPS, like the docs' 000MLGPR

    @property
    def unicity_id(self) -> str:
        return str(self.schema.unicity.id)

    def new_id(self) -> str:
        self._next += 1
        return base36_id(self._next)

    def find(self, unicity_key: str) -> Target | None:
        target_id = self.by_unicity.get(unicity_key)
        return self.by_id[target_id] if target_id else None

    def create(self, values: dict[str, Any], now: str, target_id: str | None = None) -> Target:
        """Create from parsed values (``None`` values are left out); the unicity must be set."""
        fields = {k: v for k, v in values.items() if v is not None}
        key = str(fields[self.unicity_id])
        target = Target(target_id or self.new_id(), now, now, fields)
        self.by_id[target.id] = target
        self.by_unicity[key] = target.id
        return target

    def update(self, target: Target, values: dict[str, Any], now: str, crush: bool) -> None:
        """Apply parsed values; ``None`` clears the field if ``crush`` (never the unicity)."""
        unicity_id = self.unicity_id
        for fid, value in values.items():
            if value is None:
                if crush and fid != unicity_id:
                    target.fields.pop(fid, None)
                continue
            if fid == unicity_id and value != target.fields.get(fid):
                del self.by_unicity[str(target.fields[fid])]
                self.by_unicity[str(value)] = target.id
            target.fields[fid] = value
        target.last_update_date = now

    def delete(self, target_id: str) -> Target | None:
        target = self.by_id.pop(target_id, None)
        if target is not None:
            self.by_unicity.pop(str(target.fields.get(self.unicity_id)), None)
            for members in self.segments.values():
                members.discard(target_id)
        return target

    def redlist(self, target: Target, event: RedlistEvent) -> None:
        target.red_list[event.channel] = {"timestamp": event.timestamp, "reason": event.origin}
        self.redlist_events.append(event)

    def load_target(self, data: dict[str, Any], now: str) -> Target:
        """Load one target from its read shape (``fields`` values are parsed)."""
        values: dict[str, Any] = {}
        for key, raw in data.get("fields", {}).items():
            fld = self.schema.resolve(str(key))
            if fld is None:
                raise ValueError(f"unknown field {key!r}")
            values[str(fld.id)] = fld.parse(raw)
        key = str(values.get(self.unicity_id))
        if key in self.by_unicity:
            raise ValueError(f"duplicate unicity value {key!r}")
        target = self.create(values, data.get("creationDate", now), data.get("id"))
        target.last_update_date = data.get("lastUpdateDate", target.creation_date)
        target.red_list = dict(data.get("redList", {}))
        return target
