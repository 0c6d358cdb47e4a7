"""NP6 simulator over real HTTP: import formats, import definitions, executions and CSV."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncer.sandbox.np6 import DEFAULT_FORMAT_ID, Np6Behaviour, Np6Simulator
from syncer.sandbox.serve import ServedApp

VND = "application/vnd.mperf.v8.import.v1+json"
KEY = {"X-Key": "sandbox-np6-key"}
HEADER = "email;orderId;amount;orderDate\n"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Np6Simulator, ServedApp]]:
    sim = Np6Simulator()
    with ServedApp(sim.asgi()) as app:
        yield sim, app


@pytest.fixture
def sim(served: tuple[Np6Simulator, ServedApp]) -> Np6Simulator:
    simulator, _ = served
    simulator.behaviour = Np6Behaviour(processing_seconds=0.05)
    return simulator


@pytest.fixture
def client(sim: Np6Simulator, served: tuple[Np6Simulator, ServedApp]) -> Iterator[httpx.Client]:
    _, app = served
    with httpx.Client(base_url=app.url, headers=KEY, timeout=60) as c:
        c.post("/_sandbox/reset").raise_for_status()
        yield c


def create_import(client: httpx.Client, features: list[dict[str, Any]] | None = None) -> int:
    body: dict[str, Any] = {"name": "sync", "binding": DEFAULT_FORMAT_ID}
    if features is not None:
        body["features"] = features
    response = client.post("/imports", json=body, headers={"Accept": VND})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(VND)
    import_id: int = response.json()["id"]
    return import_id


def upload(client: httpx.Client, import_id: int, text: str) -> httpx.Response:
    return client.put(
        f"/imports/{import_id}/source",
        content=text.encode(),
        headers={
            "Content-Type": "application/octet-stream",
            "Accept": VND,
            "Content-Disposition": "form-data; filename=batch.csv",
        },
    )


def execute(
    client: httpx.Client, import_id: int, body: dict[str, Any] | None = None
) -> httpx.Response:
    return client.post(
        f"/imports/{import_id}/executions",
        json=body or {"binding": DEFAULT_FORMAT_ID},
        headers={"Accept": VND},
    )


def wait(client: httpx.Client, import_id: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        result: dict[str, Any] = client.get(
            f"/imports/{import_id}/executions", headers={"Accept": VND}
        ).json()
        if result["state"] != 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def run_import(
    client: httpx.Client, text: str, features: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    import_id = create_import(client, features)
    assert upload(client, import_id, text).status_code == 200
    assert execute(client, import_id).status_code == 200
    return wait(client, import_id)


def targets(client: httpx.Client) -> dict[str, dict[str, Any]]:
    dumped = client.get("/_sandbox/state").json()["targets"]
    return {t["fields"]["1001"]: t["fields"] for t in dumped}


# -- formats -----------------------------------------------------------------------------------
def test_default_format_and_format_crud(client: httpx.Client) -> None:
    default = client.get(f"/importFormats/{DEFAULT_FORMAT_ID}").json()
    assert default == {
        "identifier": {"guid": 1234},
        "name": "Default sandbox format",
        "separator": 59,
        "startAt": 1,
        "binds": [{"columnIndex": i, "fieldId": 1001 + i} for i in range(4)],
        "savedImportFormat": True,
    }
    body = {
        "name": "contacts",
        "separator": 44,
        "startAt": 0,
        "binds": [{"columnIndex": 0, "fieldId": 1001}, {"columnIndex": 1, "fieldId": -10}],
        "savedImportFormat": True,
    }
    created = client.post("/importFormats", json=body)
    assert created.status_code == 200
    guid = created.json()["identifier"]["guid"]
    assert client.get(f"/importFormats/{guid}").json()["binds"] == body["binds"]
    assert len(client.get("/importFormats").json()) == 2
    duplicate = client.post("/importFormats", json=body)
    assert (duplicate.status_code, duplicate.content) == (409, b"")
    bad = {**body, "name": "x", "binds": [{"columnIndex": 0, "fieldId": 4242}]}
    assert client.post("/importFormats", json=bad).status_code == 400
    assert client.get("/importFormats/9999").status_code == 404


# -- definitions -------------------------------------------------------------------------------
def test_import_definition_crud_and_accept_header(client: httpx.Client) -> None:
    body = {"name": "sync", "binding": DEFAULT_FORMAT_ID}
    assert client.post("/imports", json=body).status_code == 406
    assert client.post("/imports", json=body, headers={"Accept": "*/*"}).status_code == 406
    import_id = create_import(client, [{"type": "duplicate", "rules": {"first": True}}])
    definition = client.get(f"/imports/{import_id}", headers={"Accept": VND}).json()
    assert definition["name"] == "sync"
    assert definition["binding"] == DEFAULT_FORMAT_ID
    assert definition["features"] == [{"type": "duplicate", "rules": {"first": True}}]
    assert [d["id"] for d in client.get("/imports", headers={"Accept": VND}).json()] == [import_id]
    bad_feature = {"name": "x", "features": [{"type": "teleport"}]}
    assert client.post("/imports", json=bad_feature, headers={"Accept": VND}).status_code == 400
    assert (
        client.post("/imports", json={"binding": 1234}, headers={"Accept": VND}).status_code == 400
    )
    assert client.delete(f"/imports/{import_id}", headers={"Accept": VND}).status_code == 204
    assert client.get(f"/imports/{import_id}", headers={"Accept": VND}).status_code == 404


def test_source_upload_requirements(client: httpx.Client) -> None:
    import_id = create_import(client)
    answer = upload(client, import_id, HEADER + "a@x.com;1;2;2024-01-01\n")
    assert answer.status_code == 200
    source = answer.json()
    assert source["type"] == "file"
    assert source["filename"].endswith("_batch.csv")
    assert set(source) >= {"id", "creationDate", "updateDate", "data"}
    as_json = client.put(
        f"/imports/{import_id}/source",
        content=b"a;b",
        headers={"Content-Type": "application/json", "Accept": VND},
    )
    assert as_json.status_code == 415
    no_accept = client.put(
        f"/imports/{import_id}/source",
        content=b"a;b",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert no_accept.status_code == 406
    assert upload(client, 999999, "x").status_code == 404


def test_execution_requirements(client: httpx.Client) -> None:
    import_id = create_import(client)
    assert execute(client, import_id).status_code == 400  # no source yet
    upload(client, import_id, HEADER + "a@x.com;1;2;2024-01-01\n")
    no_accept = client.post(f"/imports/{import_id}/executions", json={"binding": 1234})
    assert no_accept.status_code == 406
    assert execute(client, import_id, {"binding": 4321}).status_code == 400
    assert execute(client, 999999).status_code == 404
    assert (
        client.get(f"/imports/{import_id}/executions", headers={"Accept": VND}).status_code == 404
    )


# -- execution flow ----------------------------------------------------------------------------
def test_full_flow_state_0_then_1(client: httpx.Client, sim: Np6Simulator) -> None:
    sim.behaviour.processing_seconds = 0.3
    import_id = create_import(client)
    upload(client, import_id, HEADER + "A@x.com;o-1;12.50;2024-05-01\nb@x.com;o-2;3;01/02/2024\n")
    started = execute(client, import_id)
    assert started.status_code == 200
    execution = started.json()
    assert execution["state"] == 0
    assert execution["content"]["identifier"] == {"guid": 1234}
    assert execution["source"]["filename"].endswith("_batch.csv")
    assert (
        client.get(f"/imports/{import_id}/executions", headers={"Accept": VND}).json()["state"] == 0
    )
    assert targets(client) == {}

    concurrent = execute(client, import_id)
    assert (concurrent.status_code, concurrent.content) == (409, b"")
    assert client.delete(f"/imports/{import_id}", headers={"Accept": VND}).status_code == 409

    done = wait(client, import_id)
    assert done["state"] == 1
    assert targets(client) == {
        "a@x.com": {"1001": "a@x.com", "1002": "o-1", "1003": 12.5, "1004": "2024-05-01T00:00:00Z"},
        "b@x.com": {"1001": "b@x.com", "1002": "o-2", "1003": 3, "1004": "2024-02-01T00:00:00Z"},
    }
    found = client.get("/targets", params={"unicity": "a@x.com"})
    assert found.json()["fields"]["1002"] == "o-1"

    # A new execution of the same import is allowed once the first one finished, and counted.
    assert execute(client, import_id).status_code == 200
    wait(client, import_id)
    dumped = client.get("/_sandbox/state").json()
    assert dumped["executionCount"] == 2
    executions = dumped["imports"][0]["executions"]
    assert [(e["state"], e["rows"], e["created"], e["updated"]) for e in executions] == [
        (1, 2, 2, 0),
        (1, 2, 0, 2),
    ]


@pytest.mark.parametrize(
    "bad_line",
    [
        "c@x.com;o-3;12",  # wrong column count
        "not-an-email;o-3;1;2024-01-01",  # invalid unicity email
        "c@x.com;o-3;twelve;2024-01-01",  # non-numeric amount
        "c@x.com;o-3;1;2024-02-30",  # impossible date
        ";o-3;1;2024-01-01",  # empty unicity
    ],
)
def test_malformed_file_state_2_applies_nothing(client: httpx.Client, bad_line: str) -> None:
    upsert = client.put("/targets", params={"unicity": "a@x.com"}, json={"1002": "keep"})
    assert upsert.status_code == 200
    text = HEADER + "a@x.com;o-1;1;2024-01-01\n" + bad_line + "\nb@x.com;o-2;2;2024-01-02\n"
    result = run_import(client, text)
    assert result["state"] == 2
    assert result["sandboxDetails"]["badLines"] == [3]
    assert targets(client) == {"a@x.com": {"1001": "a@x.com", "1002": "keep"}}
    summary = client.get("/_sandbox/state").json()["imports"][0]["executions"][0]
    assert (summary["state"], summary["created"], summary["updated"]) == (2, 0, 0)


def test_header_only_and_quoted_separators(client: httpx.Client) -> None:
    assert run_import(client, HEADER)["state"] == 2
    result = run_import(client, HEADER + 'a@x.com;"o;1";1;2024-01-01\r\n\r\n')
    assert result["state"] == 1
    assert targets(client)["a@x.com"]["1002"] == "o;1"


def rows(*lines: str) -> str:
    return HEADER + "".join(line + "\n" for line in lines)


DUPES = rows("a@x.com;first;1;", "b@x.com;only;2;", "A@x.com;last;3;")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (None, {"a@x.com": "last", "b@x.com": "only"}),
        ("last", {"a@x.com": "last", "b@x.com": "only"}),
        ("first", {"a@x.com": "first", "b@x.com": "only"}),
        ("ignore", {"b@x.com": "only"}),
    ],
)
def test_duplicate_rules(client: httpx.Client, rule: str | None, expected: dict[str, str]) -> None:
    features = None if rule is None else [{"type": "duplicate", "rules": {rule: True}}]
    assert run_import(client, DUPES, features)["state"] == 1
    assert {k: v["1002"] for k, v in targets(client).items()} == expected


def test_update_existing_false_leaves_existing_targets(client: httpx.Client) -> None:
    client.put("/targets", params={"unicity": "a@x.com"}, json={"1002": "old"})
    features = [{"type": "database", "updateExisting": False, "crushData": False}]
    result = run_import(client, rows("a@x.com;new;1;", "b@x.com;new;2;"), features)
    assert result["state"] == 1
    assert {k: v["1002"] for k, v in targets(client).items()} == {
        "a@x.com": "old",
        "b@x.com": "new",
    }


@pytest.mark.parametrize(("crush", "expected"), [(False, "old"), (True, None)])
def test_crush_data_controls_empty_cells(
    client: httpx.Client, crush: bool, expected: str | None
) -> None:
    client.put("/targets", params={"unicity": "a@x.com"}, json={"1002": "old", "1003": 1})
    features = [{"type": "database", "updateExisting": True, "crushData": crush}]
    assert run_import(client, rows("a@x.com;;5;"), features)["state"] == 1
    fields = targets(client)["a@x.com"]
    assert fields.get("1002") == expected
    assert fields["1003"] == 5


def test_execution_features_override_definition(client: httpx.Client) -> None:
    import_id = create_import(client, [{"type": "duplicate", "rules": {"first": True}}])
    upload(client, import_id, DUPES)
    body = {"binding": 1234, "features": [{"type": "duplicate", "rules": {"last": True}}]}
    assert execute(client, import_id, body).status_code == 200
    assert wait(client, import_id)["state"] == 1
    assert targets(client)["a@x.com"]["1002"] == "last"


# -- faults ------------------------------------------------------------------------------------
def test_lost_execution_response_still_runs_once(client: httpx.Client) -> None:
    import_id = create_import(client)
    upload(client, import_id, rows("a@x.com;o;1;"))
    client.put("/_sandbox/faults", json={"lost_response_rate": 1.0})
    with pytest.raises(httpx.TransportError):
        execute(client, import_id)
    client.put("/_sandbox/faults", json={})
    assert wait(client, import_id)["state"] == 1
    assert client.get("/_sandbox/state").json()["executionCount"] == 1


def test_fault_before_execution_applies_nothing(client: httpx.Client) -> None:
    import_id = create_import(client)
    upload(client, import_id, rows("a@x.com;o;1;"))
    client.put("/_sandbox/faults", json={"error_rate": 1.0})
    assert execute(client, import_id).status_code >= 500
    client.put("/_sandbox/faults", json={"outage": True})
    assert execute(client, import_id).status_code == 503
    client.put("/_sandbox/faults", json={})
    assert client.get("/_sandbox/state").json()["executionCount"] == 0


# -- performance -------------------------------------------------------------------------------
def test_large_import_applies_every_row(client: httpx.Client) -> None:
    size = 50_000  # how fast: bench/scenarios/np6_imports.py (no wall-clock limit here)
    text = HEADER + "".join(f"user{i}@example.com;o-{i};{i}.5;2024-05-01\n" for i in range(size))
    result = run_import(client, text)
    assert result["state"] == 1
    assert result["sandboxDetails"]["created"] == size
    assert client.get("/targets/count").json() == {"targetsCount": size}
