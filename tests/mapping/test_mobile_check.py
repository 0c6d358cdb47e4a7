"""360NRS takes only mobiles in `phone`: a valid landline is invalid before any call."""

from __future__ import annotations

import pytest

from syncer.config.models import PipelineConfig
from syncer.mapping.errors import InvalidRecord
from syncer.mapping.filters import is_mobile
from syncer.mapping.mapper import compile_pipeline


@pytest.mark.parametrize(
    ("number", "mobile"),
    [("+393471234567", True), ("34612345678", True), ("+390645470163", False), ("junk", False)],
)
def test_is_mobile(number: str, mobile: bool) -> None:
    assert is_mobile(number) is mobile


def test_a_landline_in_phone_is_invalid_for_360nrs_only() -> None:
    pipeline = PipelineConfig.model_validate(
        {
            "name": "p",
            "target": "nrs",
            "entity": "customer",
            "fields": {
                "email": "base.contacts.email",
                "phone": "{{ base.contacts.mobilePhone | phone_e164(default_region='IT') }}",
                "countryIso": "{{ base.contacts.mobilePhone | phone_region(default_region='IT') }}",
            },
        }
    )
    landline = {"base": {"contacts": {"email": "a@b.it", "mobilePhone": "06 4547 0163"}}}
    with pytest.raises(InvalidRecord, match="field 'phone': \\+390645470163 is not a mobile"):
        compile_pipeline(pipeline, "360nrs").map(landline)
    assert compile_pipeline(pipeline).map(landline).fields["phone"] == "+390645470163"
    mobile = {"base": {"contacts": {"email": "a@b.it", "mobilePhone": "347 123 4567"}}}
    assert compile_pipeline(pipeline, "360nrs").map(mobile).fields["countryIso"] == "IT"
