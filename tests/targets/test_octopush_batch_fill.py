"""A batch target's call is filled with sendable records: rows that will not be sent (invalid,
unchanged) do not leave ``contact/create`` short. Real ``Applier`` and ``Deliverer``, the
Octopush simulator over HTTP."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract import TARGET, Harness, one_target_config
from octopush_np6_fakes import OCTOPUSH_KEY, OCTOPUSH_LOGIN, octopush_target

from syncer.config import SyncerConfig
from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp
from syncer.state.store import Store

BATCH = 10


@pytest.fixture
def sim() -> Iterator[str]:
    with ServedApp(OctopushSimulator(api_login=OCTOPUSH_LOGIN, api_key=OCTOPUSH_KEY).asgi()) as app:
        yield app.url


def config(sim: str) -> SyncerConfig:
    pipeline = {
        "name": "a",
        "target": TARGET,
        "entity": "customer",
        "fields": {"phone_number": "base.contacts.mobilePhone"},
        "list": "Everyone",
    }
    target = octopush_target(sim, batch_size=BATCH)
    return one_target_config(target, [pipeline], {"batch_size": BATCH})


def test_invalid_rows_do_not_leave_the_calls_short(sim: str, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    h = Harness(config(sim), store)
    valid = 0
    for n in range(45):
        valid += n % 3 != 0
        phone = {} if n % 3 == 0 else {"mobilePhone": f"+336{n:08d}"}  # no key field: invalid
        doc: dict[str, Any] = {"base": {"contacts": phone}}
        h.put(f"c{n}", doc, set())
    stats = h.run()
    h.deliverer.close()
    store.close()
    assert (stats.created, stats.invalid) == (valid, 45 - valid)
    counts = httpx.get(sim + "/_sandbox/requests").json()["counts"]
    adds = counts["POST /v1/public/contact/create"]
    assert adds == math.ceil(valid / BATCH)  # 3 calls for 30 numbers, not one per claim of 10
