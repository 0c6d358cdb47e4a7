"""Request validation with the reference's (Laravel-style) messages.

The API answers the first failing rule as ``{"error": {"code": 422, "description": ...}}``. The
documented texts are ``"The email field is required."``, ``"The name field is required."``,
``"The recipient field is required."``, ``"The recipient field must be a valid phone or email."``
and ``"... does not contain a valid phone number"``; the other texts follow the same style and
always name the offending field (``groupsIds.0``, ``customFields.1.value``...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import phonenumbers

from .behaviour import DEFAULT_LIMIT, MAX_LIMIT, Nrs360Behaviour
from .store import CUSTOM_FIELD_TYPES, CustomField

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_DIGITS = re.compile(r"^[0-9]{4,15}$")
_DECIMAL = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
_ISO_DATE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


class ApiError(Exception):
    """An error answer: HTTP status plus the body's ``code`` and ``description``."""

    def __init__(self, status: int, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


def invalid(description: str) -> ApiError:
    """A 422 input validation error (error code 422 in the reference's table)."""
    return ApiError(422, 422, description)


def present(body: dict[str, Any], key: str) -> bool:
    """Laravel's notion of "present" for ``required*`` rules: not null, ``""`` or ``[]``."""
    return body.get(key) not in (None, "", [])


def is_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 255 and _EMAIL.match(value) is not None


def is_phone(
    digits: str, country_iso: str | None, *, kind: Literal["mobile", "landline", "any"], check: bool
) -> bool:
    """``digits`` (international prefix, no ``+``) is a real number of that kind and country."""
    if not _DIGITS.match(digits):
        return False
    if not check:
        return True
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return False
    if country_iso is not None and not phonenumbers.is_valid_number_for_region(number, country_iso):
        return False
    if country_iso is None and not phonenumbers.is_valid_number(number):
        return False
    found = phonenumbers.number_type(number)
    if kind == "mobile":
        return found in _MOBILE_TYPES
    return kind == "any" or found != phonenumbers.PhoneNumberType.MOBILE


def is_landline(value: str, country_iso: str, *, check: bool) -> bool:
    """A landline: with the international prefix, or national (the doc shows ``900222222``)."""
    if not _DIGITS.match(value):
        return False
    if not check:
        return True
    if is_phone(value, country_iso, kind="landline", check=True):
        return True
    try:
        number = phonenumbers.parse(value, country_iso)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number_for_region(number, country_iso) and (
        phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE
    )


@dataclass
class ContactInput:
    """A validated ``POST``/``PUT /contacts`` body."""

    scalars: dict[str, str | None]  # API field name -> value, only the fields sent
    group_ids: list[int]
    group_names: list[str]
    custom_fields: list[CustomField] | None  # None: not sent


def parse_contact(body: dict[str, Any], behaviour: Nrs360Behaviour) -> ContactInput:
    """Check a contact body against the reference's parameter table; raise :class:`ApiError`."""
    body = {k: (None if v == "" else v) for k, v in body.items()}
    has_phone, has_landline = present(body, "phone"), present(body, "landline")
    if not present(body, "email") and not has_phone and not has_landline:
        raise invalid("The email field is required.")
    if present(body, "email") and not is_email(body["email"]):
        raise invalid("The email field must be a valid email address.")

    country = body.get("countryIso")
    if (has_phone or has_landline) and not present(body, "countryIso"):
        raise invalid("The countryIso field is required when phone / landline is present.")
    if country is not None:
        if not (
            isinstance(country, str)
            and country.upper() in phonenumbers.SUPPORTED_REGIONS
            and len(country) == 2
        ):
            raise invalid("The countryIso field must be a valid ISO 3166-1 alpha-2 country code.")
        country = country.upper()

    scalars: dict[str, str | None] = {}
    check = behaviour.validate_phone_numbers
    for key, mobile in (("phone", True), ("landline", False)):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise invalid(f"The {key} field must be a string.")
        if behaviour.accept_plus_prefix and value.startswith("+"):
            value = value[1:]
        ok = (
            is_phone(value, country, kind="mobile", check=check)
            if mobile
            else is_landline(value, str(country), check=check)
        )
        if not ok:
            raise invalid(f"The {key} field does not contain a valid phone number.")
        body[key] = value

    group_ids = _parse_list(body, "groupsIds", int)
    group_names = _parse_list(body, "groupsNames", str)
    if not group_ids and not group_names:
        raise invalid("The groupsIds field is required when groupsNames is not present.")

    names = ["email", "phone", "countryIso", "landline", "name", "surname"]
    if behaviour.external_id_writable:
        names.append("externalId")
    for key in names:
        if key not in body:
            continue
        value = body[key]
        if value is not None and not isinstance(value, str):
            raise invalid(f"The {key} field must be a string.")
        if isinstance(value, str) and len(value) > 255:
            raise invalid(f"The {key} field must not be greater than 255 characters.")
        scalars[key] = country if key == "countryIso" else value

    return ContactInput(scalars, group_ids, group_names, _parse_custom_fields(body))


def _parse_list(body: dict[str, Any], key: str, item_type: type) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"The {key} field must be an array.")
    for index, item in enumerate(value):
        if item_type is int and (isinstance(item, bool) or not isinstance(item, int)):
            raise invalid(f"The {key}.{index} field must be an integer.")
        if item_type is str and (not isinstance(item, str) or not item):
            raise invalid(f"The {key}.{index} field must be a string.")
    return list(dict.fromkeys(value))


def _parse_custom_fields(body: dict[str, Any]) -> list[CustomField] | None:
    raw = body.get("customFields")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise invalid("The customFields field must be an array.")
    fields: list[CustomField] = []
    for index, item in enumerate(raw):
        where = f"customFields.{index}"
        if not isinstance(item, dict):
            raise invalid(f"The {where} field must be an array.")
        key = item.get("key")
        if key in (None, ""):
            raise invalid(f"The {where}.key field is required.")
        if not isinstance(key, str):
            raise invalid(f"The {where}.key field must be a string.")
        kind = item.get("type") or "string"
        if kind not in CUSTOM_FIELD_TYPES:
            raise invalid(f"The selected {where}.type is invalid.")
        value = item.get("value")
        if value is not None:
            _check_custom_value(where, kind, value)
        fields.append(CustomField(key, kind, value))
    return fields


def _check_custom_value(where: str, kind: str, value: Any) -> None:
    if kind == "decimal":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (number or (isinstance(value, str) and _DECIMAL.match(value))):
            raise invalid(f"The {where}.value field must be a number.")
        return
    if not isinstance(value, str):
        raise invalid(f"The {where}.value field must be a string.")
    if kind == "date":
        try:
            valid = _ISO_DATE.match(value) is not None and bool(datetime.fromisoformat(value))
        except ValueError:
            valid = False
        if not valid:
            raise invalid(f"The {where}.value field must be a valid ISO 8601 date.")


def parse_recipient(body: dict[str, Any], kind: str, behaviour: Nrs360Behaviour) -> str:
    """The ``recipient`` of a blacklist call: an email for ``mailing``, a phone otherwise."""
    recipient = body.get("recipient")
    if recipient in (None, ""):
        raise invalid("The recipient field is required.")
    if isinstance(recipient, str) and behaviour.accept_plus_prefix and kind != "mailing":
        recipient = recipient.removeprefix("+")
    ok = isinstance(recipient, str) and (
        is_email(recipient)
        if kind == "mailing"
        else is_phone(
            recipient,
            None,
            kind="mobile" if kind == "sms" else "any",
            check=behaviour.validate_phone_numbers,
        )
    )
    if not ok:
        raise invalid("The recipient field must be a valid phone or email.")
    assert isinstance(recipient, str)
    return recipient


def parse_int_param(query: dict[str, str], key: str, default: int, minimum: int = 1) -> int:
    """An integer query parameter (``page``, ``limit``...) or 422."""
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"The {key} field must be an integer.") from None
    if value < minimum:
        raise invalid(f"The {key} field must be at least {minimum}.")
    return value


def parse_limit(query: dict[str, str], behaviour: Nrs360Behaviour) -> int:
    """``limit``: default 100, at most 1000 (above: 422, or clamped by the behaviour switch)."""
    limit = parse_int_param(query, "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        if behaviour.limit_overflow == "clamp":
            return MAX_LIMIT
        raise invalid(f"The limit field must not be greater than {MAX_LIMIT}.")
    return limit
