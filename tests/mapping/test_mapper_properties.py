"""Property test: no document ever crashes a mapper; it maps or is an InvalidRecord."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncer.config import load_config
from syncer.mapping import InvalidRecord, MappedRecord, PipelineMapper, compile_pipelines

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
KEYS = [
    "base", "contacts", "email", "mobilePhone", "phone", "address", "country", "firstName",
    "lastName", "consents", "marketing", "automatic", "sms", "status", "objection", "tags",
    "auto", "manual", "extended", "loyaltyTier", "customer", "properties", "amount", "total",
    "orderId", "date", "type", "items", "keys", "__class__",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["+39 347 123 4567", "0034612345678", "12", "vip", "IT", "Italia", "2024-03-01Z", "{{ x }}"]
    ),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=6
        ),
    ),
    max_leaves=40,
)
leaf = st.one_of(scalars, documents)
consent_leaf = st.fixed_dictionaries({"status": leaf, "objection": leaf})
customers = st.fixed_dictionaries(
    {
        "base": st.fixed_dictionaries(
            {
                "firstName": leaf,
                "lastName": leaf,
                "contacts": st.fixed_dictionaries({"email": leaf, "mobilePhone": leaf}),
                "address": st.fixed_dictionaries({"country": leaf}),
            }
        ),
        "consents": st.fixed_dictionaries(
            {
                "marketing": st.fixed_dictionaries(
                    {
                        "automatic": st.fixed_dictionaries(
                            {"email": consent_leaf, "sms": consent_leaf}
                        )
                    }
                )
            }
        ),
        "tags": st.fixed_dictionaries(
            {"auto": leaf, "manual": st.lists(st.sampled_from(["vip", "x"]))}
        ),
        "extended": leaf,
    }
)
events = st.fixed_dictionaries(
    {
        "type": st.one_of(st.sampled_from(["completedOrder", "abandonedCart"]), leaf),
        "customer": st.one_of(st.none(), customers),
        "date": leaf,
        "properties": st.one_of(leaf, st.fixed_dictionaries({"orderId": leaf, "amount": leaf})),
    }
)


def _mappers() -> list[PipelineMapper]:
    env = {
        name: "x"
        for name in (
            "CONTACTHUB_TOKEN", "NRS_USERNAME", "NRS_API_PASSWORD", "OCTOPUSH_LOGIN",
            "OCTOPUSH_API_KEY", "NP6_API_KEY",
        )
    }  # fmt: skip
    found: list[PipelineMapper] = []
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        found.extend(compile_pipelines(load_config(path, env=env)).values())
    return found


MAPPERS = _mappers()


def _check(entity: str, doc: Any) -> None:
    for mapper in MAPPERS:
        if not isinstance(doc, dict):
            continue
        mapper.accepts(entity, doc)  # must not raise, whatever it says
        try:
            record = mapper.map(doc)
        except InvalidRecord as exc:
            assert exc.reason
        else:
            assert isinstance(record, MappedRecord)
            assert all(v is not None and v != "" for v in record.fields.values())
            assert all(g == g.strip() and g for g in record.groups)


@pytest.mark.parametrize("entity", ["customer", "event"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.dictionaries(st.sampled_from(KEYS), documents, max_size=8))
def test_random_documents_never_crash(entity: str, doc: dict[str, Any]) -> None:
    _check(entity, doc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=customers)
def test_customer_shaped_documents_never_crash(doc: dict[str, Any]) -> None:
    _check("customer", doc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=events)
def test_event_shaped_documents_never_crash(doc: dict[str, Any]) -> None:
    _check("event", doc)
