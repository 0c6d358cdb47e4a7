"""Mapping filters: phones, dates, rounding; missing values render empty."""

from __future__ import annotations

from typing import Any

import pytest

from syncer.mapping.errors import InvalidRecord
from syncer.mapping.filters import datetime_filter, phone_e164, phone_region, round_filter
from syncer.mapping.templates import compile_template


@pytest.mark.parametrize(
    ("raw", "country", "e164", "region"),
    [
        ("+39 347 123 4567", None, "+393471234567", "IT"),
        ("+39 347 123 4567", "FR", "+393471234567", "IT"),
        ("3471234567", "IT", "+393471234567", "IT"),
        ("347 123 4567", "Italy", "+393471234567", "IT"),
        ("347-123-4567", "italia", "+393471234567", "IT"),
        ("(347) 1234567", " it ", "+393471234567", "IT"),
        (3471234567, "IT", "+393471234567", "IT"),
        ("0034 612 345 678", "IT", "+34612345678", "ES"),
        ("0034 612 345 678", "US", "+34612345678", "ES"),
        ("00393471234567", None, "+393471234567", "IT"),
        ("612 345 678", "ES", "+34612345678", "ES"),
        ("612345678", "España", "+34612345678", "ES"),
        ("612345678", "Spagna", "+34612345678", "ES"),
        ("06 1234 5678", "IT", "+390612345678", "IT"),
        ("06 12 34 56 78", "France", "+33612345678", "FR"),
        ("0151 23456789", "Germania", "+4915123456789", "DE"),
        ("+1 650-253-0000", None, "+16502530000", "US"),
        ("347 123 4567", "Narnia", "+393471234567", "IT"),  # unknown country: default region
        ("07400 123456", "UK", "+447400123456", "GB"),
        ("+44 20 7946 0958", "United Kingdom", "+442079460958", "GB"),
    ],
)
def test_phones(raw: Any, country: str | None, e164: str, region: str) -> None:
    assert phone_e164(raw, country, default_region="IT") == e164
    assert phone_region(raw, country, default_region="IT") == region


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+39 12", "phone '+39 12' is not a valid number"),
        ("12", "phone '12' is not a valid number"),
        (
            "abc",
            "phone 'abc' is not a valid number (the string supplied did not seem to be a "
            "phone number)",
        ),
        ("+39 347 123 4567 890 12", "phone '+39 347 123 4567 890 12' is not a valid number"),
        (True, "phone True is not a valid number (not text)"),
        ({"n": 1}, "phone {'n': 1} is not a valid number (not text)"),
    ],
)
def test_bad_phones(raw: Any, reason: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        phone_e164(raw, "IT", default_region="IT")
    assert caught.value.reason == reason
    with pytest.raises(InvalidRecord):
        phone_region(raw, "IT", default_region="IT")


def test_national_number_without_any_region_is_invalid() -> None:
    with pytest.raises(InvalidRecord) as caught:
        phone_e164("3471234567")
    assert caught.value.reason == (
        "phone '3471234567' is not a valid number (missing or invalid default region)"
    )


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_empty_phone_renders_empty(empty: Any) -> None:
    assert phone_e164(empty, "IT", default_region="IT") == ""
    assert phone_region(empty, "IT", default_region="IT") == ""


def test_phone_filters_in_templates_with_missing_paths() -> None:
    template = compile_template(
        "{{ base.contacts.mobilePhone | phone_e164(base.address.country, default_region='IT') }}"
    )
    assert template.render({}) == ""
    assert template.render({"base": {"contacts": {"mobilePhone": None}}}) == ""
    assert template.render({"base": {"contacts": {"mobilePhone": "3471234567"}}}) == (
        "+393471234567"
    )
    doc = {"base": {"contacts": {"mobilePhone": "612345678"}, "address": {"country": "ES"}}}
    assert template.render(doc) == "+34612345678"


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("2024-03-01T10:20:30.123+0000", "%Y-%m-%d", "2024-03-01"),
        ("2024-03-01T10:20:30Z", "%Y-%m-%dT%H:%M:%S%z", "2024-03-01T10:20:30+0000"),
        ("2024-03-01T23:20:30+02:00", "%d/%m/%Y %H:%M", "01/03/2024 23:20"),
        ("2024-03-01", "%d/%m/%Y", "01/03/2024"),
        (1709288430123, "%Y-%m-%d %H:%M:%S", "2024-03-01 10:20:30"),
        ("1709288430123", "%Y-%m-%d", "2024-03-01"),
        ("2024-03-01T10:20:30Z", None, "2024-03-01T10:20:30+00:00"),
        (None, "%Y", ""),
        ("", "%Y", ""),
        # Contacthub's "no date" (real documents): a four-digit year, never "1-01-01"
        ("0001-01-01T00:00:00.00+0000", "%Y-%m-%d", "0001-01-01"),
        ("0001-01-01T00:00:00.00+0000", "%F %G", "0001-01-01 0001"),
        ("0001-01-01T00:00:00.00+0000", None, "0001-01-01T00:00:00+00:00"),
        ("0999-12-31T23:59:59Z", "%d/%m/%Y", "31/12/0999"),
        ("2024-03-01T10:20:30Z", "100%% %Y", "100% 2024"),
    ],
)
def test_datetime(value: Any, fmt: str | None, expected: str) -> None:
    assert datetime_filter(value, fmt) == expected


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", True, [2024]])
def test_bad_dates(value: Any) -> None:
    with pytest.raises(InvalidRecord) as caught:
        datetime_filter(value, "%Y")
    assert caught.value.reason == f"date {value!r} is not an ISO 8601 date or epoch milliseconds"


@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        (129.905, (2,), 129.91),
        (2.675, (2,), 2.68),
        (12, (2,), 12.0),
        ("7.5", (), 8.0),
        (-2.5, (), -3.0),
        (2.11, (1, "ceil"), 2.2),
        (2.19, (1, "floor"), 2.1),
        (None, (2,), ""),
    ],
)
def test_round(value: Any, args: tuple[Any, ...], expected: Any) -> None:
    assert round_filter(value, *args) == expected


@pytest.mark.parametrize("value", ["abc", True, float("nan"), "inf", [1]])
def test_round_rejects_non_numbers(value: Any) -> None:
    with pytest.raises(InvalidRecord) as caught:
        round_filter(value, 2)
    assert caught.value.reason == f"value {value!r} is not a number"


@pytest.mark.parametrize(
    ("source", "doc", "expected"),
    [
        ("{{ a.b | lower | trim }}", {"a": {"b": "  MiXeD@Example.COM "}}, "mixed@example.com"),
        ("{{ a.b | upper }}", {"a": {"b": "it"}}, "IT"),
        ("{{ a.b | lower }}", {"a": {"b": None}}, ""),
        ("{{ a.b | default('friend') }}", {"a": {"b": None}}, "friend"),
        ("{{ a.b | default('friend') }}", {}, "friend"),
        ("{{ a.b.c.d }}", {"a": "text"}, ""),
        ("{{ a.b }}", {"a": {"b": 0}}, "0"),
        ("{{ a.b }}", {"a": {"b": False}}, "False"),
        ("{{ a.items }}", {"a": {"items": 3}}, "3"),
        ("{{ a.keys }}", {"a": {}}, ""),
        ("{{ x | round(2) }}", {}, ""),
        ("{{ x | datetime('%Y') }}", {}, ""),
        ("Hi {{ first }} {{ last }}", {"first": "Ada"}, "Hi Ada "),
        ("{% if vip %}VIP{% else %}std{% endif %}", {"vip": True}, "VIP"),
    ],
)
def test_template_rendering(source: str, doc: dict[str, Any], expected: str) -> None:
    assert compile_template(source).render(doc) == expected


def test_templates_are_compiled_once() -> None:
    assert compile_template("{{ a }}") is compile_template("{{ a }}")
