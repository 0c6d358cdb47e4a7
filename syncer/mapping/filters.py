"""Jinja filters for mappings: phones, dates and numbers.

Every filter treats a missing value (undefined, ``None`` or a blank string) as "nothing",
returning ``""`` so the field is skipped. A value that is present but wrong (an invalid
phone, an unparseable date) raises :class:`~syncer.mapping.errors.InvalidRecord`.
Jinja's own ``default`` is used as it is; ``lower``, ``upper`` and ``trim`` are Jinja's, but
refuse a list or an object (InvalidRecord) instead of formatting it as Python source.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import phonenumbers
from jinja2 import Undefined
from jinja2.filters import do_lower, do_trim, do_upper

from syncer.mapping.errors import InvalidRecord

__all__ = [
    "FILTERS",
    "country_filter",
    "datetime_filter",
    "phone_e164",
    "phone_region",
    "round_filter",
]

# Country names are matched in these languages (Contacthub workspaces are mostly Italian).
_NAME_LANGUAGES = ("en", "it", "fr", "es", "de", "pt", "nl")
_NAME_ALIASES = {"uk": "GB", "usa": "US", "great britain": "GB", "england": "GB"}
_PARSE_ERROR_PREFIX = re.compile(r"^\(\d+\)\s*")
_ROUNDING = {"common": ROUND_HALF_UP, "ceil": ROUND_CEILING, "floor": ROUND_FLOOR}


def _missing(value: Any) -> bool:
    if value is None or isinstance(value, Undefined):
        return True
    return isinstance(value, str) and not value.strip()


def _normalise_name(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", letters).split())


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Country name (several languages, normalised) to ISO region code, built once."""
    from phonenumbers.geodata.locale import LOCALE_DATA  # large table: load on first use

    index: dict[str, str] = {}
    for region, names in LOCALE_DATA.items():
        if region not in phonenumbers.SUPPORTED_REGIONS:
            continue
        for lang in _NAME_LANGUAGES:
            name = names.get(lang)
            if isinstance(name, str) and name.startswith("*"):
                name = names.get(name[1:])
            if isinstance(name, str) and name:
                index.setdefault(_normalise_name(name), region)
    index.update(_NAME_ALIASES)
    return index


@lru_cache(maxsize=1024)
def region_for(country: str | None, default_region: str | None) -> str | None:
    """The ISO region for a country given as ISO code or name; else ``default_region``."""
    if country:
        text = country.strip()
        if text.upper() in phonenumbers.SUPPORTED_REGIONS:
            return text.upper()
        found = _country_names().get(_normalise_name(text))
        if found:
            return found
    return default_region.upper() if default_region else None


@lru_cache(maxsize=16384)
def _phone(raw: str, country: str | None, default_region: str | None) -> tuple[str, str]:
    """(E.164, region) of ``raw``; pure, so cached: a record often formats one number twice."""
    text = "+" + raw[2:] if raw.startswith("00") else raw
    region = region_for(country, default_region)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        detail = _PARSE_ERROR_PREFIX.sub("", str(exc)).rstrip(".")
        detail = detail[:1].lower() + detail[1:]
        raise InvalidRecord(f"phone '{raw}' is not a valid number ({detail})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidRecord(f"phone '{raw}' is not a valid number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return str(e164), str(phonenumbers.region_code_for_number(number) or "")


def _parse_phone(value: Any, country: Any, default_region: str | None) -> tuple[str, str]:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRecord(f"phone {value!r} is not a valid number (not text)")
    hint = None if _missing(country) or not isinstance(country, str) else country
    return _phone(str(value).strip(), hint, default_region)


def phone_e164(value: Any, country: Any = None, default_region: str | None = None) -> str:
    """``value`` as an E.164 number (``+393471234567``); ``country`` hints national numbers."""
    if _missing(value):
        return ""
    return _parse_phone(value, country, default_region)[0]


def phone_region(value: Any, country: Any = None, default_region: str | None = None) -> str:
    """The ISO region of the number in ``value`` (``IT`` for ``+39 347 …``)."""
    if _missing(value):
        return ""
    return _parse_phone(value, country, default_region)[1]


def country_filter(value: Any) -> str:
    """A country given as ISO code or name (English, Italian, French, Spanish, German,
    Portuguese, Dutch; any case, accents optional) as its ISO 3166 alpha-2 code:
    ``IT``, ``ITALIA``, ``Italy`` all give ``IT``. An unknown country is an invalid value.

    The names come from the country table phonenumbers ships (already a dependency), so no
    second table is kept in sync by hand."""
    if _missing(value):
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"country {value!r} is not a country name or code")
    region = region_for(value, None)
    if region is None:
        raise InvalidRecord(f"country '{value.strip()}' is not a known country name or code")
    return region


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        return datetime.fromisoformat(text)
    raise TypeError("not a date")


_YEAR_DIRECTIVES = re.compile(r"%[%YGF]")


def _strftime(moment: datetime, fmt: str) -> str:
    """``strftime``, but ``%Y``, ``%G`` and ``%F`` always give four-digit years: glibc writes
    year 1 as ``1`` (``0001-01-01`` would become ``1-01-01``, Contacthub's "no date")."""

    def fixed(match: re.Match[str]) -> str:
        code = match.group(0)[1]
        if code == "Y":
            return f"{moment.year:04d}"
        if code == "G":
            return f"{moment.isocalendar().year:04d}"
        if code == "F":
            return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        return "%%"  # an escaped percent stays escaped for strftime

    return moment.strftime(_YEAR_DIRECTIVES.sub(fixed, fmt))


def datetime_filter(value: Any, fmt: str | None = None) -> str:
    """Format an ISO 8601 string (``Z``/``+0000`` offsets too) or epoch milliseconds.

    Without ``fmt`` the result is ISO 8601. The offset written in the source is kept.
    Years are always four digits (``0001-01-01T00:00:00.00+0000`` gives ``0001-01-01``).
    """
    if _missing(value):
        return ""
    try:
        moment = _to_datetime(value)
        return moment.isoformat() if fmt is None else _strftime(moment, fmt)
    except (TypeError, ValueError, OverflowError, OSError):
        raise InvalidRecord(
            f"date {value!r} is not an ISO 8601 date or epoch milliseconds"
        ) from None


def round_filter(value: Any, precision: int = 0, method: str = "common") -> float | str:
    """Jinja's ``round`` (float result), but half-up on the decimal value and missing-safe.

    ``2.675 | round(2)`` gives ``2.68`` (Python's float ``round`` would give ``2.67``).
    Numeric strings are accepted; other values raise InvalidRecord.
    """
    if _missing(value):
        return ""
    if method not in _ROUNDING:
        raise InvalidRecord(f"round: method must be one of common, ceil, floor, not {method!r}")
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidRecord(f"value {value!r} is not a number")
    try:
        exact = Decimal(str(value).strip())
        rounded = exact.quantize(Decimal(1).scaleb(-precision), rounding=_ROUNDING[method])
        result = float(rounded)
    except (InvalidOperation, ValueError, OverflowError):
        raise InvalidRecord(f"value {value!r} is not a number") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise InvalidRecord(f"value {value!r} is not a number")
    return result


def collection_kind(value: Any) -> str | None:
    """``"a list"``/``"an object"`` for values a text field cannot take as they are, else None."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple | set | frozenset):
        return "a list"
    return None


def _text_filter(name: str, jinja_filter: Callable[..., str]) -> Callable[..., str]:
    """Jinja's text filter ``name``, refusing a list or an object: Jinja would format it as
    Python source (``['a@b.c']``) and that text would reach the target as the value."""

    def text_filter(value: Any, *args: Any) -> str:
        kind = collection_kind(value)
        if kind is not None:
            raise InvalidRecord(f"{name}: expected a single value, got {kind}")
        return jinja_filter(value, *args)

    return text_filter


FILTERS: dict[str, Callable[..., Any]] = {
    "lower": _text_filter("lower", do_lower),
    "upper": _text_filter("upper", do_upper),
    "trim": _text_filter("trim", do_trim),
    "phone_e164": phone_e164,
    "phone_region": phone_region,
    "country": country_filter,
    "datetime": datetime_filter,
    "round": round_filter,
}
"""Filters added to (or replacing) Jinja's built-ins in the mapping environment."""


_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def is_mobile(value: str) -> bool:
    """True when ``value`` (any format with an international prefix) is a mobile number."""
    digits = value if value.startswith("+") else "+" + value
    try:
        number = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE_TYPES
