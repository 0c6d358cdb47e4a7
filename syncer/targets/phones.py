"""Phone numbers for every target, parsed and checked with ``phonenumbers``.

One place for what the targets send: Octopush wants E.164 (``+33612345678``, DIGEST 3.2),
360NRS a mobile as international digits without ``+`` (``34666666666``, S004:L3023) and a
landline as the national number its reference shows (``900222222``, S004:L3025), NP6 takes
the E.164 form of a phone field. ``region`` (an ISO 3166 alpha-2 code, any case) reads a
national number; ``00`` is read as the international prefix. A value that is not a valid
number raises :class:`InvalidPhone` with a one-line reason quoting it.
"""

from __future__ import annotations

from typing import Any

import phonenumbers

__all__ = ["InvalidPhone", "e164", "international_digits", "national_digits", "parse"]


class InvalidPhone(ValueError):
    """A value that is not a valid phone number (the message says which and why)."""


def parse(raw: Any, region: str | None = None) -> phonenumbers.PhoneNumber:
    """The valid number ``raw`` spells, read in ``region`` when it has no international prefix."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidPhone(f"phone {raw!r} is not a valid number (not text)")
    text = str(raw).strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    hint = region.strip().upper() if region and region.strip() else None
    try:
        number = phonenumbers.parse(text, hint)
    except phonenumbers.NumberParseException:
        where = f" for country {hint}" if hint else " (no + prefix and no country)"
        raise InvalidPhone(f"phone '{raw}' is not a valid number{where}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"phone '{raw}' is not a valid number")
    return number


def e164(raw: Any, region: str | None = None) -> str:
    """``+<country code><number>``."""
    return str(phonenumbers.format_number(parse(raw, region), phonenumbers.PhoneNumberFormat.E164))


def international_digits(raw: Any, region: str | None = None) -> str:
    """The E.164 digits without ``+`` (360NRS ``phone``)."""
    return e164(raw, region).removeprefix("+")


def national_digits(raw: Any, region: str | None = None) -> str:
    """The national significant number, digits only (360NRS ``landline``)."""
    return str(phonenumbers.national_significant_number(parse(raw, region)))
