"""Served 360NRS simulators for the delivery engine tests (module-scoped, reset per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deliver_helpers import PASSWORD, USER, admin

from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.serve import ServedApp
from syncer.state.store import Store


def _serve() -> Iterator[str]:
    sim = Nrs360Simulator(
        username=USER, api_password=PASSWORD, behaviour=Nrs360Behaviour(duplicates="allow")
    )
    with ServedApp(sim.asgi()) as app:
        yield app.url


@pytest.fixture(scope="module")
def _nrs_a() -> Iterator[str]:
    yield from _serve()


@pytest.fixture(scope="module")
def _nrs_b() -> Iterator[str]:
    yield from _serve()


@pytest.fixture
def nrs_a(_nrs_a: str) -> str:
    admin(_nrs_a, "reset")
    return _nrs_a


@pytest.fixture
def nrs_b(_nrs_b: str) -> str:
    admin(_nrs_b, "reset")
    return _nrs_b


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()
