"""Mapped records to 360NRS contact bodies, and the identity a contact is stored under.

* ``phone``: parsed with ``phonenumbers`` (:mod:`syncer.targets.phones`; a national number is
  read in ``countryIso``) and sent as digits with the international prefix, no ``+`` (the API's
  form, S004:L3023 ``34666666666``); ``landline`` as its national number (S004:L3025
  ``900222222``); ``countryIso`` upper case (required with a phone: the mapping checks it is
  mapped). A number that is not valid raises :class:`~syncer.targets.phones.InvalidPhone`.
* ``customFields.<key>``: ``{key, type, value}`` with ``type`` ``decimal`` for numbers and
  ``date`` for ISO 8601 dates/datetimes; everything else is a ``string`` (a template renders a
  string, so a templated number stays a string: leading zeros of codes are kept).
* The target key (``Outcome.target_key``) is ``e:<email>``, else ``p:<phone>:<ISO>``, else
  ``l:<landline>:<ISO>``: enough to address the contact in a later PUT (leave) or blacklist.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from ...mapping import MappedRecord
from ..phones import international_digits, national_digits

STANDARD = ("email", "phone", "landline", "countryIso", "name", "surname")
CUSTOM_PREFIX = "customFields."
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def custom_field(key: str, value: Any) -> dict[str, Any]:
    """One ``customFields`` entry with the type the value has."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"key": key, "type": "decimal", "value": value}
    text = _text(value)
    if _ISO_DATE.match(text):
        try:
            datetime.fromisoformat(text)
            return {"key": key, "type": "date", "value": text}
        except ValueError:
            pass
    return {"key": key, "type": "string", "value": text}


def contact_body(record: MappedRecord, group_ids: list[int]) -> dict[str, Any]:
    """The POST/PUT ``/contacts`` body for ``record`` in groups ``group_ids``; raises
    :class:`~syncer.targets.phones.InvalidPhone`."""
    fields = record.fields
    body: dict[str, Any] = {}
    country = _text(fields["countryIso"]) if "countryIso" in fields else None
    for name in STANDARD:
        if name in fields:
            value = fields[name]
            if name in ("phone", "landline") and not _text(value):
                body[name] = ""  # sent as before: 360NRS reads "" as no value
            elif name == "phone":
                body[name] = international_digits(value, country)
            elif name == "landline":
                body[name] = national_digits(value, country)
            elif name == "countryIso":
                body[name] = _text(value).upper()
            else:
                body[name] = _text(value)
    custom = [
        custom_field(n.removeprefix(CUSTOM_PREFIX), v)
        for n, v in fields.items()
        if n.startswith(CUSTOM_PREFIX)
    ]
    if custom:
        body["customFields"] = custom
    body["groupsIds"] = group_ids
    return body


def key_of(body: dict[str, Any]) -> str | None:
    """The identity a contact body carries (see the module docstring)."""
    if body.get("email"):
        return f"e:{body['email']}"
    if body.get("phone"):
        return f"p:{body['phone']}:{body.get('countryIso', '')}"
    if body.get("landline"):
        return f"l:{body['landline']}:{body.get('countryIso', '')}"
    return None


def identity_body(key: str | None) -> dict[str, Any]:
    """The identifying fields encoded in a target key (empty when there is none)."""
    if not key or ":" not in key:
        return {}
    kind, _, rest = key.partition(":")
    if kind == "e":
        return {"email": rest}
    value, _, country = rest.rpartition(":")
    field = {"p": "phone", "l": "landline"}.get(kind)
    if field is None:
        return {}
    return {field: value, "countryIso": country} if country else {field: value}
