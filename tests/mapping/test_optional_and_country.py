"""Optional fields (an invalid value is left out and counted, the record goes) and the
``country`` filter (names and codes to ISO alpha-2)."""

from __future__ import annotations

from typing import Any

import pytest

from syncer.config.models import PipelineConfig
from syncer.mapping import InvalidRecord, compile_pipeline, payload_hash
from syncer.observability.metrics import OPTIONAL_OMITTED

PHONE = "{{ base.contacts.mobilePhone | phone_e164(base.address.country, default_region='IT') }}"
REGION = "{{ base.contacts.mobilePhone | phone_region(base.address.country, default_region='IT') }}"


def newsletter(optional: bool) -> PipelineConfig:
    fields: dict[str, Any] = {
        "email": "base.contacts.email",
        "phone": {"value": PHONE, "optional": optional},
        "countryIso": {"value": REGION, "optional": optional},
    }
    return PipelineConfig.model_validate(
        {
            "name": "news",
            "target": "nrs",
            "entity": "customer",
            "fields": fields,
            "groups": ["Country {{ base.address.country | country }}"],
        }
    )


def customer(phone: str | None, country: str = "ITALIA") -> dict[str, Any]:
    return {
        "base": {
            "contacts": {"email": "ana@example.com", "mobilePhone": phone},
            "address": {"country": country},
        }
    }


def omitted(pipeline: str, field: str) -> float:
    return OPTIONAL_OMITTED.labels(pipeline, field)._value.get()


def test_an_invalid_optional_value_is_left_out_and_counted() -> None:
    mapper = compile_pipeline(newsletter(optional=True), "360nrs")
    before = omitted("news", "phone"), omitted("news", "countryIso")
    record = mapper.map(customer("12345"))
    assert record.fields == {"email": "ana@example.com"}
    assert record.omitted == ("phone", "countryIso")
    assert (omitted("news", "phone"), omitted("news", "countryIso")) == (
        before[0] + 1,
        before[1] + 1,
    )
    # the same record without the bad phone hashes like one that never had a phone
    assert payload_hash(record) == payload_hash(mapper.map(customer(None)))
    good = mapper.map(customer("+39 347 123 4567"))
    assert good.fields["phone"] == "+393471234567" and good.omitted == ()


def test_a_landline_in_an_optional_mobile_field_is_left_out() -> None:
    mapper = compile_pipeline(newsletter(optional=True), "360nrs")
    record = mapper.map(customer("+39 06 4547 0163"))  # Rome landline: 360NRS takes mobiles
    assert record.fields == {"email": "ana@example.com", "countryIso": "IT"}  # a valid number
    assert record.omitted == ("phone",)


def test_without_optional_the_record_is_rejected_as_before() -> None:
    mapper = compile_pipeline(newsletter(optional=False), "360nrs")
    with pytest.raises(InvalidRecord, match="field 'phone': phone '12345' is not a valid number"):
        mapper.map(customer("12345"))


def test_an_optional_field_never_saves_a_record_without_its_key() -> None:
    mapper = compile_pipeline(newsletter(optional=True), "360nrs")
    doc = customer("12345")
    doc["base"]["contacts"]["email"] = None
    with pytest.raises(InvalidRecord, match="no key field"):
        mapper.map(doc)


@pytest.mark.parametrize("given", ["IT", "ITALIA", "ITALY", "Italy", " italia ", "it"])
def test_country_filter_normalises_names_and_codes(given: str) -> None:
    mapper = compile_pipeline(newsletter(optional=True), "360nrs")
    assert mapper.map(customer(None, given)).groups == ("Country IT",)


def test_an_unknown_country_is_an_invalid_value() -> None:
    mapper = compile_pipeline(newsletter(optional=True), "360nrs")
    with pytest.raises(InvalidRecord, match="'Atlantis' is not a known country"):
        mapper.map(customer(None, "Atlantis"))
    assert mapper.map(customer(None, "")).groups == ()  # no country: no group


def test_the_config_accepts_optional_fields_and_rejects_unknown_options() -> None:
    assert newsletter(optional=True).fields["phone"].optional  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="optionnal"):
        PipelineConfig.model_validate(
            {
                "name": "x",
                "target": "nrs",
                "entity": "customer",
                "fields": {"phone": {"value": PHONE, "optionnal": True}},
            }
        )
