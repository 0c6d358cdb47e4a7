"""NP6 simulator: the vnd ``Accept`` header is enforced on every call of ``/imports``.

Source: NP6-SLATE ``_imports.md`` L401-403 ("It is imperative to add the Accept request-header
field: ``Accept: application/vnd.mperf.v8.import.v1+json``", said of the imports resource as a
whole) and ``np6-imports.txt`` (every import operation answers that media type, GETs included).
The NP6 docs give no status for a wrong ``Accept``: 406 Not Acceptable (RFC 9110 §15.5.7) is our
choice. ``Np6Behaviour.require_import_accept=False`` turns the check off.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from syncer.sandbox.np6 import DEFAULT_FORMAT_ID, Np6Behaviour, Np6Simulator
from syncer.sandbox.serve import ServedApp

VND = "application/vnd.mperf.v8.import.v1+json"
KEY = {"X-Key": "sandbox-np6-key"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Np6Simulator, ServedApp]]:
    sim = Np6Simulator()
    with ServedApp(sim.asgi()) as app:
        yield sim, app


@pytest.fixture
def client(served: tuple[Np6Simulator, ServedApp]) -> Iterator[httpx.Client]:
    sim, app = served
    with httpx.Client(base_url=app.url, headers=KEY, timeout=30) as c:
        c.post("/_sandbox/reset").raise_for_status()
        sim.behaviour = Np6Behaviour(processing_seconds=0.0)
        yield c


def started_import(client: httpx.Client) -> int:
    vnd = {"Accept": VND}
    created = client.post("/imports", json={"name": "n", "binding": DEFAULT_FORMAT_ID}, headers=vnd)
    import_id: int = created.json()["id"]
    upload = client.put(
        f"/imports/{import_id}/source",
        content=b"email;orderId;amount;orderDate\na@x.com;1;2;2024-01-01\n",
        headers={**vnd, "Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 200
    assert client.post(f"/imports/{import_id}/executions", json={}, headers=vnd).status_code == 200
    return import_id


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
def test_every_imports_call_without_the_vnd_accept_is_406(
    client: httpx.Client, accept: str | None
) -> None:
    import_id = started_import(client)
    headers = {"Accept": accept} if accept else {"Accept": ""}
    calls = [
        ("GET", "/imports"),
        ("GET", f"/imports/{import_id}"),
        ("GET", f"/imports/{import_id}/executions"),
        ("DELETE", f"/imports/{import_id}"),
    ]
    for method, path in calls:
        answer = client.request(method, path, headers=headers)
        assert (method, path, answer.status_code, answer.content) == (method, path, 406, b"")
    # nothing was deleted by the refused DELETE
    assert client.get(f"/imports/{import_id}", headers={"Accept": VND}).status_code == 200


def test_the_same_calls_with_the_vnd_accept_answer(client: httpx.Client) -> None:
    import_id = started_import(client)
    vnd = {"Accept": f"application/json;q=0.5, {VND}"}
    assert [d["id"] for d in client.get("/imports", headers=vnd).json()] == [import_id]
    assert client.get(f"/imports/{import_id}", headers=vnd).json()["id"] == import_id
    last = client.get(f"/imports/{import_id}/executions", headers=vnd)
    assert last.status_code == 200 and last.headers["content-type"].startswith(VND)
    assert client.delete(f"/imports/{import_id}", headers=vnd).status_code == 204


def test_the_check_can_be_switched_off(
    client: httpx.Client, served: tuple[Np6Simulator, ServedApp]
) -> None:
    sim, _ = served
    sim.behaviour = Np6Behaviour(processing_seconds=0.0, require_import_accept=False)
    assert client.get("/imports").status_code == 200


def test_other_resources_do_not_need_it(client: httpx.Client) -> None:
    assert client.get("/fields").status_code == 200
    assert client.get(f"/importFormats/{DEFAULT_FORMAT_ID}").status_code == 200
    assert client.get("/targets/count").status_code == 200
