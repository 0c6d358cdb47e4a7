"""``syncer probe`` against the simulators: under each switch setting it reports that reading,
and it leaves no scratch record behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from syncer.cli.probe_cmd import SCRATCH_PHONE, probe_all
from syncer.cli.main import app
from syncer.config.models import SyncerConfig
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.contacthub.behaviour import DEFAULT_NODE_ID, DEFAULT_TOKEN, DEFAULT_WORKSPACE_ID
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.nrs360 import Nrs360Simulator
from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp

USER, PASSWORD = "sandbox-user", "sandbox-api-password"
SECRETS = {
    "CH_TOKEN": DEFAULT_TOKEN,
    "NRS_PASSWORD": PASSWORD,
    "OCTO_KEY": "sandbox-octopush-key",
    "NP6_KEY": "sandbox-np6-key",
}
# (simulator, switch, readings): every switch the probe can find out
PROBED: list[tuple[str, str, list[Any]]] = [
    ("contacthub", "default_page_size", [10, 20]),
    ("contacthub", "page_object", ["union", "legacy", "current"]),
    ("nrs360", "duplicate_email", ["refuse", "accept"]),
    ("nrs360", "put_groups", ["replace", "add"]),
    ("octopush", "invalid_number", ["refuse_call", "skip_item"]),
    ("octopush", "missing_list", ["error", "create"]),
    ("octopush", "existing_list", ["error", "ok"]),
    ("np6", "unknown_delete", ["empty_200", "not_found_404"]),
    ("np6", "bulk_delete_response", ["list", "empty"]),
]
TARGET_OF = {"contacthub": "contacthub", "nrs360": "nrs", "octopush": "octo", "np6": "np6"}


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, ServedApp]]:
    apps = {
        "contacthub": ContacthubSimulator(),
        "nrs360": Nrs360Simulator(username=USER, api_password=PASSWORD),
        "octopush": OctopushSimulator(),
        "np6": Np6Simulator(),
    }
    served = {name: ServedApp(sim.asgi()).start() for name, sim in apps.items()}
    try:
        yield served
    finally:
        for one in served.values():
            one.stop()


def config_doc(urls: dict[str, str], state: str) -> dict[str, Any]:
    return {
        "version": 1,
        "state": {"url": state},
        "source": {
            "type": "contacthub",
            "base_url": urls["contacthub"] + "/hub/v1",
            "workspace_id": DEFAULT_WORKSPACE_ID,
            "node_id": DEFAULT_NODE_ID,
            "token": "${CH_TOKEN}",
        },
        "targets": {
            "nrs": {
                "type": "360nrs",
                "base_url": urls["nrs360"] + "/api/rest",
                "username": USER,
                "api_password": "${NRS_PASSWORD}",
            },
            "octo": {
                "type": "octopush",
                "base_url": urls["octopush"] + "/v1/public",
                "api_login": "sandbox@example.com",
                "api_key": "${OCTO_KEY}",
            },
            "np6": {
                "type": "np6",
                "base_url": urls["np6"],
                "api_key": "${NP6_KEY}",
                "import": {"binding": 1234},
            },
        },
        "pipelines": [
            {
                "name": "news",
                "target": "nrs",
                "entity": "customer",
                "fields": {"email": "base.contacts.email"},
                "groups": ["News"],
            },
            {
                "name": "sms",
                "target": "octo",
                "entity": "customer",
                "fields": {"phone_number": "base.contacts.mobilePhone"},
                "list": "sms",
            },
            {
                "name": "crm",
                "target": "np6",
                "entity": "customer",
                "fields": {"1001": "base.contacts.email"},
            },
        ],
    }


def model(urls: dict[str, str], tmp_path: Path) -> SyncerConfig:
    doc = json.loads(json.dumps(config_doc(urls, f"sqlite:///{tmp_path / 's.db'}")))
    doc["source"]["token"] = SECRETS["CH_TOKEN"]
    doc["targets"]["nrs"]["api_password"] = SECRETS["NRS_PASSWORD"]
    doc["targets"]["octo"]["api_key"] = SECRETS["OCTO_KEY"]
    doc["targets"]["np6"]["api_key"] = SECRETS["NP6_KEY"]
    return SyncerConfig.model_validate(doc)


def set_only(sims: dict[str, ServedApp], sim: str, switch: str, value: Any) -> None:
    for served in sims.values():
        httpx.post(served.url + "/_sandbox/reset").raise_for_status()
    httpx.put(sims[sim].url + "/_sandbox/behaviour", json={switch: value}).raise_for_status()


def cases() -> list[tuple[str, str, Any]]:
    return [(sim, switch, value) for sim, switch, values in PROBED for value in values]


@pytest.mark.parametrize(("sim", "switch", "value"), cases(), ids=str)
def test_probe_reports_the_reading_that_is_set(
    sims: dict[str, ServedApp], tmp_path: Path, sim: str, switch: str, value: Any
) -> None:
    urls = {name: s.url for name, s in sims.items()}
    set_only(sims, sim, switch, value)
    try:
        findings = probe_all(model(urls, tmp_path), TARGET_OF[sim])
        got = {f.switch: f.reading for f in findings}
        assert got[switch] == str(value), findings
        assert all(f.target == TARGET_OF[sim] for f in findings)
        # nothing created by the probe is left
        state = httpx.get(urls[sim] + "/_sandbox/state").json()
        if sim == "nrs360":
            assert state["contacts"] == [] and state["groups"] == [], state
        if sim == "octopush":
            assert state["lists"] == {} and SCRATCH_PHONE not in state["contacts"], state
    finally:
        httpx.put(urls[sim] + "/_sandbox/behaviour", json={switch: default_of(sim, switch)})


def default_of(sim: str, switch: str) -> Any:
    return next(values[0] for s, sw, values in PROBED if (s, sw) == (sim, switch))


def test_probe_leaves_a_number_the_account_had(sims: dict[str, ServedApp], tmp_path: Path) -> None:
    """The scratch number already on the account (someone's real contact, in this test): the
    probe's create answers it "updated", and the probe must not delete it."""
    urls = {name: s.url for name, s in sims.items()}
    set_only(sims, "octopush", "invalid_number", "skip_item")
    httpx.put(urls["octopush"] + "/_sandbox/behaviour", json={"missing_list": "create"})
    try:
        body = {"contacts": {SCRATCH_PHONE: {"first_name": "Kept", "lists": ["mine"]}}}
        httpx.post(urls["octopush"] + "/_sandbox/load", json=body).raise_for_status()
        probe_all(model(urls, tmp_path), "octo")
        state = httpx.get(urls["octopush"] + "/_sandbox/state").json()
        assert state["contacts"][SCRATCH_PHONE]["lists"] == ["mine"], state
        assert state["lists"] == {"mine": [SCRATCH_PHONE]}
    finally:
        httpx.put(
            urls["octopush"] + "/_sandbox/behaviour",
            json={"invalid_number": "refuse_call", "missing_list": "error"},
        )


def test_probe_cli_table_and_json(
    sims: dict[str, ServedApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {name: s.url for name, s in sims.items()}
    set_only(sims, "nrs360", "put_groups", "add")
    try:
        for key, value in SECRETS.items():
            monkeypatch.setenv(key, value)
        cfg = tmp_path / "syncer.yaml"
        doc = config_doc(urls, f"sqlite:///{tmp_path / 's.db'}")
        cfg.write_text(yaml.safe_dump(doc), encoding="utf-8")
        runner = CliRunner()
        table = runner.invoke(app, ["probe", "--config", str(cfg)])
        assert table.exit_code == 0, table.output
        lines = table.output.splitlines()
        assert lines[0].split() == ["target", "switch", "reading", "how"]
        assert any(line.split()[:3] == ["nrs", "put_groups", "add"] for line in lines), lines
        as_json = runner.invoke(app, ["probe", "--config", str(cfg), "--target", "np6", "--json"])
        assert as_json.exit_code == 0, as_json.output
        rows = json.loads(as_json.output)
        assert {r["switch"]: r["reading"] for r in rows}["unknown_delete"] == "empty_200"
        assert {r["target"] for r in rows} == {"np6"}
        unknown = runner.invoke(app, ["probe", "--config", str(cfg), "--target", "nope"])
        assert unknown.exit_code == 2
        assert "unknown target 'nope'" in unknown.output
    finally:
        httpx.put(urls["nrs360"] + "/_sandbox/behaviour", json={"put_groups": "replace"})


def test_check_one_line_per_api_and_exit_3_on_a_refusal(
    sims: dict[str, ServedApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {name: s.url for name, s in sims.items()}
    for served in sims.values():
        httpx.post(served.url + "/_sandbox/reset").raise_for_status()
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    cfg = tmp_path / "syncer.yaml"
    cfg.write_text(yaml.safe_dump(config_doc(urls, f"sqlite:///{tmp_path / 's.db'}")))
    runner = CliRunner()
    ok = runner.invoke(app, ["check", "--config", str(cfg)])
    assert ok.exit_code == 0, ok.output
    names = [line.split()[0] for line in ok.output.splitlines()]
    assert names[0] == "contacthub" and sorted(names[1:]) == ["np6", "nrs", "octo"], ok.output
    assert all(" ok: " in line for line in ok.output.splitlines())
    monkeypatch.setenv("NP6_KEY", "wrong-key")
    refused = runner.invoke(app, ["check", "--config", str(cfg), "--json"])
    assert refused.exit_code == 3, refused.output
    rows = {r["name"]: r for r in json.loads(refused.output)}
    assert rows["np6"]["exit"] == 3 and "401" in rows["np6"]["message"], rows
    assert "wrong-key" not in refused.output  # the secret is never shown
    assert rows["nrs"]["exit"] == 0
