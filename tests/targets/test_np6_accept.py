"""The NP6 client sends ``Accept: application/vnd.mperf.v8.import.v1+json`` on every call of
the imports resource, GETs included (NP6-SLATE ``_imports.md`` L401-403: "imperative"), against
a simulator that refuses any ``/imports`` call without it (406)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from octopush_np6_fakes import MemoryContext, change, settle

from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.serve import ServedApp
from syncer.targets.np6 import ImportRunner, Np6Client, Np6Target
from syncer.targets.np6.client import VND_IMPORT

KEY = "sandbox-np6-key"


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    with ServedApp(Np6Simulator().asgi()) as app:
        yield app


@pytest.fixture
def seen() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture
def http(served: ServedApp, seen: list[tuple[str, str, str]]) -> Iterator[httpx.Client]:
    def record(request: httpx.Request) -> None:
        seen.append((request.method, request.url.path, request.headers.get("accept", "")))

    with httpx.Client(timeout=10, event_hooks={"request": [record]}) as client:
        client.post(served.url + "/_sandbox/reset").raise_for_status()
        client.post(
            served.url + "/_sandbox/load", json={"behaviour": {"processing_seconds": 0.0}}
        ).raise_for_status()
        seen.clear()
        yield client


def test_every_client_call_on_imports_sends_the_vnd_accept(
    served: ServedApp, http: httpx.Client, seen: list[tuple[str, str, str]]
) -> None:
    client = Np6Client(http, served.url, KEY)
    assert client.list_imports() == []
    import_id = client.create_import({"name": "n", "binding": 1234})
    assert client.last_execution(import_id) is None  # 404 before a start, not 406
    client.upload_source(
        import_id, b"email;orderId;amount;orderDate\na@x.com;1;2;2024-01-01\n", "f.csv"
    )
    client.start_execution(import_id, 1234)
    execution = client.last_execution(import_id)
    assert execution is not None and execution["state"] in (0, 1)
    assert [d["id"] for d in client.list_imports()] == [import_id]
    imports = [(m, p, a) for m, p, a in seen if p.startswith("/imports")]
    assert len(imports) == 7
    assert all(a == VND_IMPORT for _, _, a in imports), imports


def test_a_whole_delivery_works_against_the_strict_simulator(
    served: ServedApp, http: httpx.Client, seen: list[tuple[str, str, str]]
) -> None:
    client = Np6Client(http, served.url, KEY)
    runner = ImportRunner(client, first_poll_base=0.01, poll_base=0.01, poll_cap=0.05)
    target = Np6Target("np6", client, runner=runner, binding=1234)
    rows = [change(f"e{i}", {"1001": f"u{i}@example.com", "1002": f"o{i}"}) for i in range(3)]
    outcomes = settle(target, rows, MemoryContext())
    assert [o.status for o in outcomes] == ["done"] * 3, [o.error for o in outcomes]
    methods = {(m, p.rsplit("/", 1)[-1]) for m, p, _ in seen if p.startswith("/imports")}
    assert ("GET", "imports") in methods and ("GET", "executions") in methods
