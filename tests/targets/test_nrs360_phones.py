"""360NRS phones are normalised with ``phonenumbers`` (:mod:`syncer.targets.phones`): a
national number gets its country's prefix from ``countryIso``, so the contact is stored as
360NRS wants it (S004:L3023 ``"phone": "34666666666"``: international prefix, no ``+``) and a
lookup by phone finds it again. A number that is not valid is an invalid change with a one-line
reason, not a 422 round trip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.mapping.mapper import MappedRecord
from syncer.sandbox.nrs360 import Nrs360Simulator
from syncer.sandbox.serve import ServedApp
from syncer.targets.base import Change, Known
from syncer.targets.nrs360.client import Nrs360Client
from syncer.targets.nrs360.target import Nrs360Target

USER, PASSWORD = "sandbox-user", "sandbox-api-password"


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[Nrs360Simulator, str]]:
    simulator = Nrs360Simulator(username=USER, api_password=PASSWORD)
    with ServedApp(simulator.asgi()) as app:
        yield simulator, app.url


@pytest.fixture
def target(sim: tuple[Nrs360Simulator, str]) -> Iterator[Nrs360Target]:
    simulator, url = sim
    simulator.reset()
    http = httpx.Client(base_url=url + "/api/rest", auth=(USER, PASSWORD), timeout=10)
    yield Nrs360Target("nrs", Nrs360Client(http))
    http.close()


class Ctx:
    def __init__(self) -> None:
        self.kv: dict[str, str] = {}

    def kv_get(self, key: str) -> str | None:
        return self.kv.get(key)

    def kv_set(self, key: str, value: str) -> None:
        self.kv[key] = value

    def kv_lock(self, key: str) -> Any:
        import contextlib

        return contextlib.nullcontext()


def upsert(n: int, **fields: Any) -> Change:
    record = MappedRecord(dict(fields), ("Newsletter",), None, None)
    return Change(n, "p1", f"c{n}", "upsert", "ignore", record, Known())


def stored(sim: tuple[Nrs360Simulator, str]) -> list[dict[str, Any]]:
    return [
        {k: c[k] for k in ("phone", "landline", "countryIso")}
        for c in sim[0].dump_state()["contacts"]
    ]


@pytest.mark.parametrize(
    "given", ["666 555 444", "666-555-444", "(+34) 666 555 444", "+34666555444", "0034666555444"]
)
def test_a_mobile_in_any_spelling_is_stored_with_its_prefix(
    target: Nrs360Target, sim: tuple[Nrs360Simulator, str], given: str
) -> None:
    [out] = target.apply([upsert(1, phone=given, countryIso="es")], Ctx())
    assert (out.status, out.error) == ("done", None)
    assert stored(sim) == [{"phone": "34666555444", "landline": None, "countryIso": "ES"}]
    assert out.target_key == "p:34666555444:ES"


def test_a_national_number_is_found_again_by_phone(
    target: Nrs360Target, sim: tuple[Nrs360Simulator, str]
) -> None:
    ctx = Ctx()
    [first] = target.apply([upsert(1, phone="666 555 444", countryIso="ES", name="A")], ctx)
    assert first.detail == "created"
    again = upsert(1, phone="666555444", countryIso="ES", name="B")
    again = dataclasses.replace(again, resent=True)
    [second] = target.apply([again], ctx)
    assert (second.status, second.detail, second.target_id) == ("done", "updated", first.target_id)
    assert len(sim[0].dump_state()["contacts"]) == 1


def test_a_landline_is_sent_in_the_documented_national_form(
    target: Nrs360Target, sim: tuple[Nrs360Simulator, str]
) -> None:
    [out] = target.apply([upsert(1, landline="+34 900 22 22 22", countryIso="ES")], Ctx())
    assert out.status == "done", out.error
    assert stored(sim) == [{"phone": None, "landline": "900222222", "countryIso": "ES"}]


@pytest.mark.parametrize("given", ["12", "not a phone", "+34 123"])
def test_an_invalid_number_is_an_invalid_change(
    target: Nrs360Target, sim: tuple[Nrs360Simulator, str], given: str
) -> None:
    [out] = target.apply([upsert(1, phone=given, countryIso="ES")], Ctx())
    assert out.status == "invalid"
    assert out.error is not None and "\n" not in out.error
    assert f"'{given}'" in out.error and "phone" in out.error
    assert sim[0].dump_state()["contacts"] == []
