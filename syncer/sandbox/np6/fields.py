"""NP6 field schema: field definitions, the default tenant schema and value parsing.

A field is ``{"type", "id", "name", "isUnicity", "isMandatory"}`` (NP6-SLATE ``_field.md``).
Values are parsed per type, both for JSON writes and CSV imports:

==============  ===================================================================
type            accepted (empty means "no value" and is handled by the caller)
==============  ===================================================================
``email``       ``local@domain.tld`` without spaces; stored lower-cased
``phone``       optional ``+`` then 6..20 digits/spaces/dots/dashes; stored stripped
``textField``   any text up to 255 characters
``numeric``     a decimal number with a ``.`` separator (``12``, ``-3.5``); stored as number
``date``        ISO ``YYYY-MM-DD[THH:MM[:SS]][Z|±HH:MM]`` or ``DD/MM/YYYY``; stored as
                ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)
``list``        a string or an array of strings (multi-valued field)
==============  ===================================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

IGNORED_COLUMN = -10  # ``fieldId: -10`` in an import format = ignore this column

_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 .\-]{5,19}$")
_NUMERIC = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
_FR_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")


@dataclass(frozen=True)
class Field:
    """One field of the tenant schema."""

    id: int
    type: str
    name: str
    is_unicity: bool = False
    is_mandatory: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.id,
            "name": self.name,
            "isUnicity": self.is_unicity,
            "isMandatory": self.is_mandatory,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Field:
        if data["type"] not in PARSERS:
            raise ValueError(f"unknown field type {data['type']!r}; known: {sorted(PARSERS)}")
        return cls(
            id=int(data["id"]),
            type=str(data["type"]),
            name=str(data["name"]),
            is_unicity=bool(data.get("isUnicity", False)),
            is_mandatory=bool(data.get("isMandatory", False)),
        )

    def parse(self, value: Any) -> Any:
        """The stored form of ``value``; raises ``ValueError`` if the type rejects it."""
        return PARSERS[self.type](value)


DEFAULT_FIELDS: tuple[Field, ...] = (
    Field(1001, "email", "Email", is_unicity=True, is_mandatory=True),
    Field(1002, "textField", "orderId"),
    Field(1003, "numeric", "amount"),
    Field(1004, "date", "orderDate"),
    Field(1010, "textField", "FirstName"),
    Field(1011, "textField", "LastName"),
    Field(1012, "phone", "Phone"),
    Field(1013, "date", "Birthdate"),
    Field(1014, "textField", "Gender"),
    Field(1015, "textField", "City"),
    Field(1016, "textField", "Country"),
)


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a text value: {value!r}")
    return str(value).strip()


def parse_email(value: Any) -> str:
    text = _text(value).lower()
    if not _EMAIL.match(text):
        raise ValueError(f"invalid email: {value!r}")
    return text


def parse_phone(value: Any) -> str:
    text = _text(value)
    if not _PHONE.match(text):
        raise ValueError(f"invalid phone: {value!r}")
    return text


def parse_text(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"not a text value: {value!r}")
    text = str(value)
    if len(text) > 255:
        raise ValueError("text longer than 255 characters")
    return text


def parse_numeric(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return value
    text = _text(value)
    if not _NUMERIC.match(text):
        raise ValueError(f"not a number: {value!r}")
    number = float(text)
    return int(number) if number.is_integer() and "." not in text else number


def parse_date(value: Any) -> str:
    text = _text(value)
    fr = _FR_DATE.match(text)
    try:
        if fr:
            moment = datetime(int(fr[3]), int(fr[2]), int(fr[1]), tzinfo=UTC)
        elif len(text) < 10 or text[4] != "-":
            raise ValueError(text)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid date: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_list(value: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return [_text(value)]


PARSERS: dict[str, Callable[[Any], Any]] = {
    "email": parse_email,
    "phone": parse_phone,
    "textField": parse_text,
    "numeric": parse_numeric,
    "date": parse_date,
    "list": parse_list,
}


class Schema:
    """The tenant's fields, by id and by (case-insensitive) name."""

    def __init__(self, fields: list[Field] | tuple[Field, ...] = DEFAULT_FIELDS) -> None:
        unicity = [f for f in fields if f.is_unicity]
        if len(unicity) != 1:
            raise ValueError("the schema needs exactly one unicity field")
        self.fields = list(fields)
        self.by_id = {f.id: f for f in fields}
        self.by_name = {f.name.lower(): f for f in fields}
        self.unicity = unicity[0]

    def resolve(self, key: str) -> Field | None:
        """A field from a write-body key: the field id (``"1001"``) or its name (``"Email"``)."""
        if key.lstrip("-").isdigit():
            return self.by_id.get(int(key))
        return self.by_name.get(key.lower())

    def unicity_key(self, value: Any) -> str:
        """Normalised unicity value used as the lookup key; raises ``ValueError`` if invalid."""
        return str(self.unicity.parse(value))
