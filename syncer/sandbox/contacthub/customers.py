"""Customer write semantics: validation, creation, MERGE, PATCH and PUT.

Pure functions over dicts; the simulator stores what they return.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from .behaviour import SOURCE_ID
from .query import canonical

TOP_LEVEL = frozenset(
    [
        "id",
        "intId",
        "externalId",
        "nodeId",
        "base",
        "consents",
        "extended",
        "extra",
        "tags",
        "enabled",
        "registeredAt",
        "updatedAt",
        "version",
        "deleted",
        "sourceInfo",
    ]
)
IMMUTABLE = frozenset(
    ["id", "nodeId", "intId", "version", "sourceInfo", "registeredAt", "updatedAt", "deleted"]
)
BASE_KEYS = frozenset(
    [
        "pictureUrl",
        "title",
        "prefix",
        "firstName",
        "lastName",
        "middleName",
        "gender",
        "dob",
        "locale",
        "timezone",
        "contacts",
        "address",
        "credential",
        "educations",
        "likes",
        "socialProfile",
        "jobs",
        "subscriptions",
    ]
)
CONTACT_KEYS = frozenset(["email", "fax", "mobilePhone", "phone", "otherContacts", "mobileDevices"])
ADDRESS_KEYS = frozenset(["street", "city", "country", "province", "region", "zip", "geo"])
LONG_STRINGS = {"base.address.street": 500, "base.pictureUrl": 1000}
TAGS_MAX = 1000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Errors = list[dict[str, Any]]


def now_iso() -> str:
    """Now as the API writes date-times: UTC, milliseconds, ``+0000``."""
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    """An aware datetime as the API writes it (``2017-06-29T20:23:09.215+0000``)."""
    return canonical(moment)


def _err(path: str, message: str) -> dict[str, Any]:
    return {"path": path, "message": message, "data": None}


def _check_strings(value: Any, path: str, errors: Errors) -> None:
    if isinstance(value, str):
        limit = LONG_STRINGS.get(path.replace("/", ".").lstrip("."), 255)
        if len(value) > limit:
            errors.append(_err("/" + path.replace(".", "/"), f"length must be <= {limit}"))
    elif isinstance(value, dict):
        for key, sub in value.items():
            _check_strings(sub, f"{path}.{key}", errors)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, path, errors)


def _check_keys(obj: Any, allowed: frozenset[str], path: str, errors: Errors) -> None:
    if obj is None:
        return
    if not isinstance(obj, dict):
        errors.append(_err(path, "must be an object or null"))
        return
    for key in obj:
        if key not in allowed:
            errors.append(_err(f"{path}/{key}", "unknown property"))


def validate_customer(body: Any) -> Errors:
    """Schema and size checks shared by POST, PUT and PATCH (JSON pointers in ``path``)."""
    if not isinstance(body, dict):
        return [_err("", "the customer must be a JSON object")]
    errors: Errors = []
    _check_keys(body, TOP_LEVEL, "", errors)
    for key in ("externalId", "extra"):
        if body.get(key) is not None and not isinstance(body[key], str):
            errors.append(_err(f"/{key}", "must be a string or null"))
    if "enabled" in body and not isinstance(body["enabled"], bool):
        errors.append(_err("/enabled", "must be a boolean"))
    for key in ("consents", "extended"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            errors.append(_err(f"/{key}", "must be an object or null"))
    base = body.get("base")
    _check_keys(base, BASE_KEYS, "/base", errors)
    if isinstance(base, dict):
        _check_keys(base.get("contacts"), CONTACT_KEYS, "/base/contacts", errors)
        _check_keys(base.get("address"), ADDRESS_KEYS, "/base/address", errors)
        _check_strings(base, "base", errors)
        email = (
            (base.get("contacts") or {}).get("email")
            if isinstance(base.get("contacts"), dict)
            else None
        )
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email)):
            errors.append(_err("/base/contacts/email", "must be a valid email address"))
    if isinstance(body.get("externalId"), str) and len(body["externalId"]) > 255:
        errors.append(_err("/externalId", "length must be <= 255"))
    tags = body.get("tags")
    if tags is not None:
        _check_keys(tags, frozenset(("auto", "manual")), "/tags", errors)
        if isinstance(tags, dict):
            for kind in ("auto", "manual"):
                items = tags.get(kind)
                if items is None:
                    continue
                if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
                    errors.append(_err(f"/tags/{kind}", "must be an array of strings"))
                elif sum(len(t) for t in items) + max(0, len(items) - 1) > TAGS_MAX:
                    errors.append(_err(f"/tags/{kind}", f"total length must be <= {TAGS_MAX}"))
    return errors


def _dedup(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def merge(old: Any, new: Any, append_lists: bool) -> Any:
    """Deep merge: objects merge key by key, scalars replace, lists replace or append (dedup)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for key, value in new.items():
            out[key] = merge(old.get(key), value, append_lists)
        return out
    if isinstance(new, list):
        items = [*old, *new] if append_lists and isinstance(old, list) else list(new)
        return _dedup(copy.deepcopy(items))
    return copy.deepcopy(new)


def _mutable_part(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in IMMUTABLE}


def new_customer(body: dict[str, Any], int_id: int) -> dict[str, Any]:
    """A new stored customer from a POST body."""
    stamp = now_iso()
    fresh = _mutable_part(body)
    tags = fresh.get("tags") or {}
    return {
        "id": str(uuid.uuid4()),
        "intId": int_id,
        "externalId": fresh.get("externalId"),
        "nodeId": body["nodeId"],
        "base": copy.deepcopy(fresh.get("base") or {}),
        "consents": copy.deepcopy(fresh.get("consents") or {}),
        "extended": copy.deepcopy(fresh.get("extended") or {}),
        "extra": fresh.get("extra"),
        "tags": {
            "auto": _dedup(tags.get("auto") or []),
            "manual": _dedup(tags.get("manual") or []),
        },
        "enabled": fresh.get("enabled", True),
        "registeredAt": stamp,
        "updatedAt": stamp,
        "version": 0,
        "deleted": 0,
        "sourceInfo": {"registeredBy": SOURCE_ID, "updatedBy": SOURCE_ID},
    }


def _stamp(old: dict[str, Any], updated: dict[str, Any]) -> dict[str, Any]:
    for key in IMMUTABLE:
        if key in old:
            updated[key] = old[key]
    updated["updatedAt"] = now_iso()
    updated["version"] = int(old.get("version") or 0) + 1
    updated["sourceInfo"] = {**(old.get("sourceInfo") or {}), "updatedBy": SOURCE_ID}
    return updated


def merged_customer(old: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """POST under MERGE on an existing match: properties replaced, collections appended."""
    return _stamp(old, merge(old, _mutable_part(body), append_lists=True))


def patched_customer(old: dict[str, Any], body: dict[str, Any], strict: bool) -> dict[str, Any]:
    """PATCH: deep merge (missing properties kept); ``mode=STRICT`` replaces given top-level
    properties whole instead of merging into them."""
    given = _mutable_part(body)
    if strict:
        return _stamp(old, {**old, **copy.deepcopy(given)})
    return _stamp(old, merge(old, given, append_lists=False))


def replaced_customer(old: dict[str, Any], body: dict[str, Any], strict: bool) -> dict[str, Any]:
    """PUT: without STRICT missing properties are kept (1.299.1); with STRICT the body replaces
    every mutable property (missing ones become empty)."""
    given = _mutable_part(body)
    if not strict:
        return _stamp(old, merge(old, given, append_lists=False))
    blank: dict[str, Any] = {
        "externalId": None,
        "base": {},
        "consents": {},
        "extended": {},
        "extra": None,
        "tags": {"auto": [], "manual": []},
        "enabled": True,
    }
    return _stamp(old, {**old, **blank, **copy.deepcopy(given)})
