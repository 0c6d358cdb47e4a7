"""Pipeline mappers: conditions, fields, groups, lists, key checks, hashing."""

from __future__ import annotations

from typing import Any

import pytest

from syncer.config.models import PipelineConfig, WhenConfig
from syncer.mapping import (
    InvalidRecord,
    MappedRecord,
    compile_pipeline,
    get_path,
    payload_hash,
)
from syncer.mapping.conditions import compile_when, values_equal


def _pipeline(**overrides: Any) -> PipelineConfig:
    body: dict[str, Any] = {"name": "p", "target": "t", "entity": "customer", "fields": {}}
    body.update(overrides)
    return PipelineConfig.model_validate(body)


def _consent(status: Any, objection: Any = False) -> dict[str, Any]:
    leaf = {"status": status, "limitation": False, "objection": objection}
    return {"consents": {"marketing": {"automatic": {"email": leaf}}}}


def test_get_path() -> None:
    doc = {"base": {"contacts": {"email": "a@b.c"}, "jobs": [{"title": "x"}]}, "n": 0}
    assert get_path(doc, "base.contacts.email") == "a@b.c"
    assert get_path(doc, "base.contacts.phone") is None
    assert get_path(doc, "base.jobs.title") is None  # lists are not indexed
    assert get_path(doc, "base.jobs") == [{"title": "x"}]
    assert get_path(doc, "n") == 0
    assert get_path(None, "n") is None
    assert get_path({"a": "text"}, "a.b") is None


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (_consent(True), True),
        (_consent(True, objection=True), False),
        (_consent(True, objection=None), True),
        (_consent(False), False),
        (_consent("true"), False),
        (_consent(None), False),
        ({}, False),
        ({"consents": {"marketing": None}}, False),
    ],
)
def test_consent(doc: dict[str, Any], expected: bool) -> None:
    when = WhenConfig(consent="marketing.automatic.email")
    assert compile_when(when, "customer")(doc) is expected


def test_consent_and_tags_of_events_come_from_the_customer() -> None:
    when = WhenConfig(consent="marketing.automatic.email", tags_any=["vip"])
    customer = {**_consent(True), "tags": {"auto": [], "manual": ["vip"]}}
    check = compile_when(when, "event")
    assert check({"type": "x", "customer": customer})
    assert not check({"type": "x", "customer": None})
    assert not check({"type": "x", **customer})


@pytest.mark.parametrize(
    ("tags", "any_of", "all_of", "expected"),
    [
        ({"auto": ["vip"], "manual": []}, ["vip", "gold"], [], True),
        ({"auto": [], "manual": ["gold"]}, ["vip", "gold"], [], True),
        ({"auto": ["x"]}, ["vip"], [], False),
        ({"auto": ["vip"], "manual": ["it"]}, [], ["vip", "it"], True),
        ({"auto": ["vip"]}, [], ["vip", "it"], False),
        ({"auto": "vip"}, ["vip"], [], False),
        (None, ["vip"], [], False),
    ],
)
def test_tags(tags: Any, any_of: list[str], all_of: list[str], expected: bool) -> None:
    when = WhenConfig(tags_any=any_of, tags_all=all_of)
    assert compile_when(when, "customer")({"tags": tags}) is expected


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"base": {"contacts": {"email": "a@b.c"}}}, True),
        ({"base": {"contacts": {"email": "  "}}}, False),
        ({"base": {"contacts": {"email": None}}}, False),
        ({}, False),
    ],
)
def test_present(doc: dict[str, Any], expected: bool) -> None:
    when = WhenConfig(present=["base.contacts.email"])
    assert compile_when(when, "customer")(doc) is expected


@pytest.mark.parametrize(
    ("match", "doc", "expected"),
    [
        ({"base.gender": "female"}, {"base": {"gender": "female"}}, True),
        ({"base.gender": "female"}, {"base": {"gender": "male"}}, False),
        ({"base.gender": ["female", "other"]}, {"base": {"gender": "other"}}, True),
        ({"enabled": True}, {"enabled": True}, True),
        ({"enabled": True}, {"enabled": 1}, False),
        ({"version": 1}, {"version": 1.0}, True),
        ({"version": 1}, {"version": "1"}, False),
        ({"extended.segments": "b"}, {"extended": {"segments": ["a", "b"]}}, True),
        ({"base.title": None}, {}, True),
        ({"base.title": None}, {"base": {"title": "Dr"}}, False),
    ],
)
def test_match(match: dict[str, Any], doc: dict[str, Any], expected: bool) -> None:
    when = WhenConfig.model_validate({"match": match})
    assert compile_when(when, "customer")(doc) is expected


def test_values_equal_is_type_aware() -> None:
    assert values_equal(1, 1.0)
    assert not values_equal(True, 1)
    assert not values_equal(0, False)
    assert not values_equal("1", 1)


def test_accepts_entity_and_event_types() -> None:
    orders = compile_pipeline(_pipeline(entity="event", event_types=["completedOrder"]))
    assert orders.accepts("event", {"type": "completedOrder", "customer": None})
    assert not orders.accepts("event", {"type": "abandonedCart"})
    assert not orders.accepts("customer", {"type": "completedOrder"})
    every_event = compile_pipeline(_pipeline(entity="event"))
    assert every_event.accepts("event", {"type": "anything"})
    assert compile_pipeline(_pipeline()).accepts("customer", {})


def test_fields_keep_raw_types_and_skip_nulls() -> None:
    mapper = compile_pipeline(
        _pipeline(
            fields={
                "a": "extended.points",
                "b": "extended.active",
                "c": "extended.missing",
                "d": "extended.empty",
                "e": "{{ extended.points }}",
                "f": "{{ extended.missing }}",
                "g": "extended.name",
            }
        )
    )
    doc = {"extended": {"points": 12, "active": False, "empty": "", "name": " Ada "}}
    record = mapper.map(doc)
    assert record.fields == {"a": 12, "b": False, "e": "12", "g": " Ada "}
    assert list(record.fields) == ["a", "b", "e", "g"]


def test_groups_rendered_stripped_deduplicated() -> None:
    mapper = compile_pipeline(
        _pipeline(
            groups=[
                "Newsletter",
                "Country {{ base.address.country | upper }}",
                "{{ extended.segment }}",
                "  Newsletter ",
                "{{ extended.missing }}",
            ]
        )
    )
    record = mapper.map({"base": {"address": {"country": "it"}}, "extended": {"segment": "B"}})
    assert record.groups == ("Newsletter", "Country IT", "B")
    # every value of a template missing: no group at all, not the group "Country"
    assert mapper.map({}).groups == ("Newsletter",)


def test_a_group_of_missing_values_is_no_group_on_real_documents() -> None:
    # the real API writes absent parts as null (fake_response of the official Python SDK)
    mapper = compile_pipeline(
        _pipeline(
            groups=[
                "Country {{ base.address.country | upper }}",
                "{{ base.address.city }} / {{ base.address.zip }}",
                "{{ extended.tier | default('') }}   ",
                "   ",
                "{% if base.address %}Has address{% endif %}",
                "Static",
            ]
        )
    )
    null_address = {"base": {"address": None, "contacts": {"email": "a@b.it"}}, "extended": None}
    assert mapper.map(null_address).groups == ("Static",)
    blank_country = {"base": {"address": {"country": "  ", "city": None, "zip": None}}}
    assert mapper.map(blank_country).groups == ("Has address", "Static")
    # one value of several present: the group is kept, with what is there
    half = {"base": {"address": {"country": "it", "city": "Milano", "zip": None}}}
    assert mapper.map(half).groups == ("Country IT", "Milano /", "Has address", "Static")


def test_list_and_tag() -> None:
    mapper = compile_pipeline(_pipeline(list="VIP {{ base.address.country | upper }}", tag="vip"))
    record = mapper.map({"base": {"address": {"country": "fr"}}})
    assert (record.list_name, record.tag) == ("VIP FR", "vip")
    no_list = (
        "list: no list name (the template rendered blank, or every value it prints is missing)"
    )
    empty = compile_pipeline(_pipeline(list="{{ extended.list }}"))
    with pytest.raises(InvalidRecord) as caught:
        empty.map({})
    assert caught.value.reason == no_list
    # "VIP " alone is no list: the only value the template prints is missing
    with pytest.raises(InvalidRecord) as caught:
        mapper.map({"base": {"address": None}})
    assert caught.value.reason == no_list


def test_invalid_phone_names_the_field() -> None:
    mapper = compile_pipeline(
        _pipeline(fields={"phone": "{{ base.contacts.mobilePhone | phone_e164(none, 'IT') }}"})
    )
    with pytest.raises(InvalidRecord) as caught:
        mapper.map({"base": {"contacts": {"mobilePhone": "+39 12"}}})
    assert caught.value.reason == "field 'phone': phone '+39 12' is not a valid number"


def test_any_template_exception_becomes_invalid_record() -> None:
    mapper = compile_pipeline(_pipeline(fields={"x": "{{ extended.a / extended.b }}"}))
    with pytest.raises(InvalidRecord) as caught:
        mapper.map({"extended": {"a": 1, "b": 0}})
    assert caught.value.reason == "field 'x': division by zero"
    unsafe = compile_pipeline(_pipeline(fields={"x": "{{ ''.__class__.__mro__ }}"}))
    with pytest.raises(InvalidRecord) as caught:
        unsafe.map({})
    assert caught.value.reason == (
        "field 'x': access to attribute '__class__' of 'str' object is unsafe"
    )


def test_key_checks_with_target_type() -> None:
    p = _pipeline(fields={"email": "base.contacts.email", "name": "base.firstName"})
    assert compile_pipeline(p).map({}).fields == {}  # no target type: no key checks
    mapper = compile_pipeline(p, target_type="360nrs")
    with pytest.raises(InvalidRecord) as caught:
        mapper.map({"base": {"firstName": "Ada"}})
    assert caught.value.reason == "no key field: 360NRS needs a value in one of: email, phone"
    phone_only = compile_pipeline(
        _pipeline(fields={"phone": "base.contacts.mobilePhone", "countryIso": "base.cc"}),
        target_type="360nrs",
    )
    with pytest.raises(InvalidRecord) as caught:
        phone_only.map({"base": {"contacts": {"mobilePhone": "+393471234567"}}})
    assert caught.value.reason == "field 'phone' needs 'countryIso', which is empty"


def test_payload_hash_is_stable() -> None:
    a = MappedRecord({"email": "a@b.c", "n": 1}, ("G1", "G2"), None, None)
    b = MappedRecord({"n": 1, "email": "a@b.c"}, ("G2", "G1"), None, None)
    c = MappedRecord({"email": "a@b.c", "n": 2}, ("G1", "G2"), None, None)
    assert payload_hash(a) == payload_hash(b)
    assert payload_hash(a) != payload_hash(c)
    assert payload_hash(a) == (
        # sha256 of the canonical JSON:
        # {"fields":{"email":"a@b.c","n":1},"groups":["G1","G2"],"list_name":null,"tag":null}
        "31bb787510c39ab7eb96d9b6a4c4f6442da78599affd18492b4b0c3557764a4a"
    )


def test_invalid_record_is_a_permanent_error() -> None:
    from syncer.errors import PermanentError

    assert issubclass(InvalidRecord, PermanentError)
    assert InvalidRecord("bad").reason == "bad"
