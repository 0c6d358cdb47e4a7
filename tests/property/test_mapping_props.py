"""Properties of the mapping layer (``PipelineMapper``), over random customer and event
documents shaped like Contacthub's but with any value anywhere: nulls, lists, objects, huge
strings, emoji, non-Latin text, dates with ``+0000`` offsets, phones in every format.

* ``accepts`` and ``map`` never raise anything but :class:`InvalidRecord`; ``map`` returns a
  :class:`MappedRecord` whose values are JSON scalars (a template never sends a list or an
  object formatted as Python source, e.g. ``['a@b.c']``).
* Mapping is deterministic and pure: the same document (or an equal copy) gives the same
  record, hash or error; the document is never modified; mapping one document does not change
  how another maps.

Pipelines: those of ``config/example.yaml`` (all three target types) plus one using every
filter and condition.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from syncer.config import SyncerConfig
from syncer.mapping import (
    InvalidRecord,
    MappedRecord,
    PipelineMapper,
    compile_pipeline,
    compile_pipelines,
    payload_hash,
)
from syncer.mapping.templates import ENV

EXAMPLE_PATH = Path(__file__).resolve().parents[2] / "config" / "example.yaml"

EVERY_FILTER = {
    "name": "every-filter",
    "target": "nrs",
    "entity": "customer",
    "when": {
        "present": ["base.contacts.email"],
        "tags_all": ["vip"],
        "match": {"base.address.country": ["IT", "FR", 1, True, None]},
    },
    "fields": {
        "email": "{{ base.contacts.email | trim | lower }}",
        "name": "{{ base.firstName | default('Friend') | upper }}",
        "surname": "base.lastName",
        "phone": "{{ base.contacts.mobilePhone | phone_e164(base.address.country) }}",
        "countryIso": "{{ base.contacts.mobilePhone | phone_region(base.address.country, "
        "default_region='IT') }}",
        "customFields.born": "{{ base.dob | datetime('%Y-%m-%d') }}",
        "customFields.registered": "{{ registeredAt | datetime }}",
        "customFields.points": "{{ extended.points | round(1, 'floor') }}",
        "customFields.raw": "extended",
    },
    "groups": ["All", "{{ base.address.country | upper }}", "{{ tags.manual | join('-') }}"],
}


def _pipelines() -> dict[str, PipelineMapper]:
    data = yaml.safe_load(EXAMPLE_PATH.read_text(encoding="utf-8"))
    data["targets"] = {
        "nrs": {**data["targets"]["nrs"], "username": "u", "api_password": "p"},
        "octo": {**data["targets"]["octo"], "api_login": "l", "api_key": "k"},
        "np6": {**data["targets"]["np6"], "api_key": "k"},
    }
    data["source"]["token"] = "t"
    data["pipelines"].append(EVERY_FILTER)
    cfg = SyncerConfig.model_validate(data)
    return compile_pipelines(cfg)


MAPPERS = _pipelines()

# -- documents ------------------------------------------------------------------------------

weird_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "Дмитрий",
            "山田 太郎",
            "محمد",
            "😀 Smile 🎉",
            "  MiXeD@Example.COM ",
            "a@b.c",
            "not-an-email",
            "x" * 65_536,
            "",
            "   ",
            "{{ 7*7 }}",
            "{% raw %}",
            "\x00\u202e",
        ]
    ),
)
phones = st.sampled_from(
    [
        "+39 347 123 4567",
        "0039 347 1234567",
        "347 123 4567",
        "+39-347-123-4567",
        "(347) 123-4567",
        "06 12 34 56 78",
        "+33 6 12 34 56 78",
        "+1 (415) 555-2671",
        "+44 7911 123456",
        "12",
        "+",
        "phone",
        "+39 06 6982 1234",
        "٠٣٤٧١٢٣٤٥٦٧",
        "3471234567",
        393471234567,
    ]
)
dates = st.sampled_from(
    [
        "2024-05-01T10:00:00.000+0000",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00+02:00",
        "2024-05-01",
        "1714557600000",
        1714557600000,
        -1,
        10**20,
        "yesterday",
        "2024-13-45",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    weird_text,
    phones,
    dates,
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["status", "email", "x", "items", "keys"]), inner, max_size=3
        ),
    ),
    max_leaves=12,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the plausible value, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, anything)


consent = maybe(
    st.fixed_dictionaries(
        {"status": maybe(st.booleans()), "objection": maybe(st.booleans())},
        optional={"limitation": anything},
    )
)
customers = st.fixed_dictionaries(
    {
        "id": maybe(st.uuids().map(str)),
        "base": maybe(
            st.fixed_dictionaries(
                {
                    "firstName": maybe(weird_text),
                    "lastName": maybe(weird_text),
                    "contacts": maybe(
                        st.fixed_dictionaries(
                            {"email": maybe(weird_text), "mobilePhone": maybe(phones)}
                        )
                    ),
                    "address": maybe(
                        st.fixed_dictionaries(
                            {"country": maybe(st.sampled_from(["IT", "it", "France", "XX", ""]))}
                        )
                    ),
                    "dob": maybe(dates),
                },
                optional={"unknownField": anything},
            )
        ),
        "consents": maybe(
            st.fixed_dictionaries(
                {
                    "marketing": maybe(
                        st.fixed_dictionaries(
                            {
                                "automatic": maybe(
                                    st.fixed_dictionaries({"email": consent, "sms": consent})
                                )
                            }
                        )
                    )
                }
            )
        ),
        "tags": maybe(
            st.fixed_dictionaries(
                {
                    "auto": maybe(st.lists(st.sampled_from(["vip", "x"]), max_size=2)),
                    "manual": maybe(st.lists(st.sampled_from(["vip", "y", "😀"]), max_size=3)),
                }
            )
        ),
        "extended": maybe(
            st.fixed_dictionaries(
                {"loyaltyTier": maybe(weird_text), "points": maybe(st.floats() | st.integers())}
            )
        ),
        "registeredAt": maybe(dates),
        "updatedAt": maybe(dates),
    },
    optional={"weird": anything, "version": anything},
)
events = st.fixed_dictionaries(
    {
        "id": maybe(st.uuids().map(str)),
        "type": maybe(st.sampled_from(["completedOrder", "abandonedCart"])),
        "date": maybe(dates),
        "properties": maybe(
            st.fixed_dictionaries(
                {
                    "orderId": maybe(weird_text),
                    "amount": maybe(
                        st.fixed_dictionaries({"total": maybe(st.floats() | st.integers())})
                    ),
                }
            )
        ),
        "customer": st.one_of(st.none(), customers),
    }
)

JSON_SCALARS = (str, int, float, bool)


def outcome(mapper: PipelineMapper, doc: Mapping[str, Any]) -> tuple[str, Any]:
    """("record", record, hash) or ("invalid", reason): anything else fails the test."""
    try:
        record = mapper.map(doc)
    except InvalidRecord as exc:
        assert exc.reason and isinstance(exc.reason, str)
        return ("invalid", exc.reason)
    assert isinstance(record, MappedRecord)
    return ("record", (record, payload_hash(record)))


def check_record(result: tuple[str, Any], specs: Mapping[str, str]) -> None:
    if result[0] != "record":
        return
    record: MappedRecord = result[1][0]
    for name, value in record.fields.items():
        if "{{" in specs[name]:  # templates give scalars, never Python source of a collection
            assert isinstance(value, JSON_SCALARS), (name, value)
    for group in (*record.groups, record.list_name or "x"):
        assert isinstance(group, str) and group.strip() == group and group
        assert not group.startswith(("[", "{")), group


SPECS = {
    **{p["name"]: p["fields"] for p in yaml.safe_load(EXAMPLE_PATH.read_text())["pipelines"]},
    "every-filter": EVERY_FILTER["fields"],
}


def _each(kind: str, doc: dict[str, Any]) -> None:
    original = copy.deepcopy(doc)
    for name, mapper in MAPPERS.items():
        if mapper.entity != kind:
            continue
        accepted = mapper.accepts(kind, doc)
        assert isinstance(accepted, bool)
        first = outcome(mapper, doc)
        check_record(first, SPECS[name])
        # deterministic, and the same for an equal copy
        assert outcome(mapper, doc) == first
        assert outcome(mapper, copy.deepcopy(original)) == first
        assert mapper.accepts(kind, copy.deepcopy(original)) is accepted
    assert doc == original, "mapping modified the document"


@settings(max_examples=150, deadline=None)
@given(doc=customers)
def test_any_customer_maps_or_is_invalid_deterministically_and_purely(doc: dict[str, Any]) -> None:
    _each("customer", doc)


@settings(max_examples=100, deadline=None)
@given(doc=events)
def test_any_event_maps_or_is_invalid_deterministically_and_purely(doc: dict[str, Any]) -> None:
    _each("event", doc)


@settings(max_examples=60, deadline=None)
@given(a=customers, b=customers)
def test_mapping_one_document_does_not_change_how_another_maps(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    mapper = MAPPERS["every-filter"]
    alone = outcome(mapper, b)
    outcome(mapper, a)
    assert outcome(mapper, b) == alone
    fresh = compile_pipeline(
        SyncerConfig.model_validate(
            {**yaml.safe_load(EXAMPLE_PATH.read_text()), "pipelines": [EVERY_FILTER]} | _secrets()
        ).pipelines[0],
        "360nrs",
    )
    assert outcome(fresh, b) == alone


def _secrets() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE_PATH.read_text())
    data["source"]["token"] = "t"
    data["targets"]["nrs"].update(username="u", api_password="p")
    data["targets"]["octo"].update(api_login="l", api_key="k")
    data["targets"]["np6"]["api_key"] = "k"
    return {"source": data["source"], "targets": data["targets"]}


# -- regression: a list or an object is never sent as its Python source ----------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [(["a@example.com"], "a list"), ({"home": "a@example.com"}, "an object"), (("x",), "a list")],
)
def test_a_collection_in_a_text_template_is_invalid_not_its_python_source(
    value: Any, kind: str
) -> None:
    doc = {
        "base": {"contacts": {"email": value}},
        "consents": {"marketing": {"automatic": {"email": {"status": True}}}},
    }
    newsletter = MAPPERS["newsletter"]
    assert newsletter.accepts("customer", doc)
    with pytest.raises(InvalidRecord) as caught:
        newsletter.map(doc)
    assert caught.value.reason == f"field 'email': lower: expected a single value, got {kind}"
    printed = ENV.from_string("{{ base.contacts.email }}")
    with pytest.raises(InvalidRecord, match=f"expected a single value, got {kind}"):
        printed.render(doc)
    # a list is still fine where a filter makes text of it on purpose
    assert ENV.from_string("{{ xs | join(',') }}").render({"xs": ["a", "b"]}) == "a,b"
