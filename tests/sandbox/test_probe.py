"""``syncer probe`` against the simulators: under each switch setting it reports that reading,
and it leaves no scratch record behind."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from syncer.cli.main import app
from syncer.cli.probe_cmd import SCRATCH_PHONE, probe_all
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
    ("np6", "execution_body", ["full", "state"]),
    ("np6", "no_execution", ["not_found_404", "empty_200"]),
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
        if sim == "np6":
            assert state["imports"] == [] and state["targets"] == [], state
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


# -- the behaviour: block, --apply, production, interrupts ---------------------------------------
def write_config(
    urls: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **targets: Any
) -> Path:
    """The config file (secrets from the environment); ``targets`` entries are merged into
    the target of that name (``nrs={"production": True}``)."""
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    doc = config_doc(urls, f"sqlite:///{tmp_path / 's.db'}")
    for name, extra in targets.items():
        doc["targets"][name].update(extra)
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def stored_behaviour(tmp_path: Path) -> dict[tuple[str, str], str]:
    from sqlalchemy import select

    from syncer.state.schema import target_kv
    from syncer.state.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with store.reader() as conn:
            rows = conn.execute(select(target_kv)).all()
    finally:
        store.close()
    return {(r.target, r.key): r.value for r in rows if r.key.startswith("behaviour.")}


def new_state(tmp_path: Path) -> None:
    from syncer.state.store import Store

    Store(f"sqlite:///{tmp_path / 's.db'}").close()


def test_probe_prints_a_behaviour_block_the_config_accepts(
    sims: dict[str, ServedApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {name: s.url for name, s in sims.items()}
    set_only(sims, "np6", "execution_body", "state")
    try:
        cfg = write_config(urls, tmp_path, monkeypatch)
        done = CliRunner().invoke(app, ["probe", "--config", str(cfg)])
        assert done.exit_code == 0, done.output
        _, _, block = done.output.partition(
            "# the behaviour: block of each target, for the config:"
        )
        pasted = yaml.safe_load(block)
        assert pasted == {
            "targets": {
                "nrs": {"behaviour": {"duplicate_email": "refuse", "put_groups": "replace"}},
                "octo": {
                    "behaviour": {
                        "invalid_number": "refuse_call",
                        "missing_list": "error",
                        "existing_list": "error",
                    }
                },
                "np6": {
                    "behaviour": {
                        "unknown_delete": "empty_200",
                        "bulk_delete_response": "list",
                        "execution_body": "state",
                        "no_execution": "not_found_404",
                    }
                },
            }
        }, done.output
        # pasted into the config, it validates and sets the switches
        doc = config_doc(urls, f"sqlite:///{tmp_path / 's.db'}")
        for name, extra in pasted["targets"].items():
            doc["targets"][name].update(extra)
        doc["source"]["token"] = DEFAULT_TOKEN
        for name, key in (("nrs", "api_password"), ("octo", "api_key"), ("np6", "api_key")):
            doc["targets"][name][key] = "x"
        validated = SyncerConfig.model_validate(doc)
        assert validated.targets["np6"].behaviour.execution_body == "state"
    finally:
        httpx.put(urls["np6"] + "/_sandbox/behaviour", json={"execution_body": "full"})


def test_apply_records_only_probed_readings_and_the_engine_uses_them(
    sims: dict[str, ServedApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--apply`` stores what was found (never ``not probed``); a target built by the engine
    takes an unset switch from there, and a switch set in the config wins."""
    from syncer.config.loader import load_config
    from syncer.engine.deliver import Deliverer
    from syncer.state.store import Store

    urls = {name: s.url for name, s in sims.items()}
    set_only(sims, "nrs360", "put_groups", "add")
    try:
        # NP6 in upsert mode: no binding, so execution_body is "not probed" and not recorded
        cfg_path = write_config(urls, tmp_path, monkeypatch, np6={"mode": "upsert", "import": None})
        doc = yaml.safe_load(cfg_path.read_text())
        del doc["targets"]["np6"]["import"]
        cfg_path.write_text(yaml.safe_dump(doc))
        runner = CliRunner()
        missing = runner.invoke(app, ["probe", "--config", str(cfg_path), "--apply"])
        assert missing.exit_code == 3, missing.output  # no state database: made by nobody
        assert "no state database" in missing.output
        new_state(tmp_path)
        done = runner.invoke(app, ["probe", "--config", str(cfg_path), "--apply"])
        assert done.exit_code == 0, done.output
        stored = stored_behaviour(tmp_path)
        assert stored[("nrs", "behaviour.put_groups")] == "add"
        assert stored[("nrs", "behaviour.duplicate_email")] == "refuse"
        assert stored[("np6", "behaviour.no_execution")] == "not_found_404"
        assert ("np6", "behaviour.execution_body") not in stored  # it was not probed
        assert not any(key.endswith("rate_limit") for _, key in stored)
        assert {t for t, _ in stored} == {"nrs", "octo", "np6"}  # never the source

        cfg = load_config(cfg_path)
        store = Store(cfg.state.url)
        try:
            with Deliverer(cfg, store, run_id="t") as deliverer:
                assert deliverer.worker("nrs").target.put_adds_groups is True  # type: ignore[attr-defined]
            # the config says otherwise: it wins over the probed reading
            doc["targets"]["nrs"]["behaviour"] = {"put_groups": "replace"}
            cfg_path.write_text(yaml.safe_dump(doc))
            explicit = load_config(cfg_path)
            with Deliverer(explicit, store, run_id="t") as deliverer:
                assert deliverer.worker("nrs").target.put_adds_groups is False  # type: ignore[attr-defined]
        finally:
            store.close()
        noted = runner.invoke(app, ["probe", "--config", str(cfg_path), "--target", "nrs"])
        assert noted.exit_code == 0, noted.output
        assert "the config says put_groups: replace, the API answered add" in noted.output
    finally:
        httpx.put(urls["nrs360"] + "/_sandbox/behaviour", json={"put_groups": "replace"})


def test_build_target_without_a_reading_keeps_the_default() -> None:
    """No config value and nothing probed: 360NRS finds out on the first leave (None)."""
    from syncer.targets.nrs360.spec import Nrs360TargetConfig
    from syncer.targets.registry import build_target, with_probed_behaviour

    tcfg = Nrs360TargetConfig.model_validate(
        {"type": "360nrs", "base_url": "http://127.0.0.1:9", "username": "u", "api_password": "p"}
    )
    built = build_target("nrs", tcfg)
    try:
        assert built.put_adds_groups is None  # type: ignore[attr-defined]
    finally:
        built.close()
    # a stored reading the model does not accept (an older syncer's) is ignored
    merged = with_probed_behaviour(tcfg, {"behaviour.put_groups": "sometimes"}.get)
    assert merged.behaviour.put_groups is None
    merged = with_probed_behaviour(tcfg, {"behaviour.put_groups": "add"}.get)
    assert merged.behaviour.put_groups == "add" and tcfg.behaviour.put_groups is None


def test_probe_refuses_a_production_target_without_yes(
    sims: dict[str, ServedApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {name: s.url for name, s in sims.items()}
    for served in sims.values():
        httpx.post(served.url + "/_sandbox/reset").raise_for_status()
    cfg = write_config(urls, tmp_path, monkeypatch, octo={"production": True})
    runner = CliRunner()
    refused = runner.invoke(app, ["probe", "--config", str(cfg)])
    assert refused.exit_code == 2, refused.output
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and "production target octo" in lines[0] and "--yes" in lines[0]
    assert runner.invoke(app, ["probe", "--config", str(cfg), "--target", "octo"]).exit_code == 2
    # nothing was called before the refusal
    state = httpx.get(urls["nrs360"] + "/_sandbox/state").json()
    assert state["contacts"] == [] and state["groups"] == []
    # another target, or the read-only source, needs no --yes
    other = runner.invoke(app, ["probe", "--config", str(cfg), "--target", "nrs"])
    assert other.exit_code == 0, other.output
    source = runner.invoke(app, ["probe", "--config", str(cfg), "--target", "contacthub"])
    assert source.exit_code == 0, source.output
    agreed = runner.invoke(app, ["probe", "--config", str(cfg), "--target", "octo", "--yes"])
    assert agreed.exit_code == 0, agreed.output
    assert any(
        line.split()[:2] == ["octo", "invalid_number"] for line in agreed.output.splitlines()
    )


# (simulator, target, method, path part): a call after the scratch records exist
INTERRUPTED = [
    ("nrs360", "nrs", "PUT", "/contacts/"),
    ("octopush", "octo", "POST", "/contact/create"),
    ("np6", "np6", "POST", "/executions"),
]


def nothing_left(urls: dict[str, str], sim: str) -> None:
    state = httpx.get(urls[sim] + "/_sandbox/state").json()
    if sim == "nrs360":
        assert state["contacts"] == [] and state["groups"] == [], state
    if sim == "octopush":
        assert state["lists"] == {} and state["contacts"] == {}, state
    if sim == "np6":
        assert state["imports"] == [] and state["targets"] == [], state


def interrupt_on(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    part: str,
    fault: Callable[[], None],
    *,
    after: bool = False,
) -> list[str]:
    """Run ``fault`` at the first ``method`` call whose path has ``part``: instead of it, or
    (``after``) once it has been applied and answered; the calls made are listed."""
    real = httpx.Client.request
    calls: list[str] = []

    def request(self: httpx.Client, verb: str, url: Any, **kwargs: Any) -> httpx.Response:
        calls.append(f"{verb} {url}")
        if verb != method or part not in str(url):
            return real(self, verb, url, **kwargs)
        calls[-1] = "done " + calls[-1]
        monkeypatch.setattr(httpx.Client, "request", real)
        if not after:
            fault()
            return real(self, verb, url, **kwargs)
        answer = real(self, verb, url, **kwargs)
        fault()  # the record exists, its id not yet registered
        return answer

    monkeypatch.setattr(httpx.Client, "request", request)
    return calls


@pytest.mark.parametrize(("sim", "target", "method", "part"), INTERRUPTED, ids=lambda v: str(v))
def test_an_interrupted_probe_removes_its_scratch_records(
    sims: dict[str, ServedApp],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sim: str,
    target: str,
    method: str,
    part: str,
) -> None:
    urls = {name: s.url for name, s in sims.items()}
    for served in sims.values():
        httpx.post(served.url + "/_sandbox/reset").raise_for_status()

    def ctrl_c() -> None:
        raise KeyboardInterrupt

    calls = interrupt_on(monkeypatch, method, part, ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        probe_all(model(urls, tmp_path), target)
    assert any(c.startswith("done ") for c in calls), calls  # the fault did interrupt
    nothing_left(urls, sim)


# (simulator, target, method, path part, after the call): SIGTERM before a PUT once the
# records exist, or just after a create answered (before its id is registered)
TERMINATED = [
    ("nrs360", "nrs", "PUT", "/contacts/", False),
    ("nrs360", "nrs", "POST", "/groups", True),
    ("nrs360", "nrs", "POST", "/contacts", True),
    ("np6", "np6", "POST", "/imports", True),
]


@pytest.mark.parametrize(("sim", "target", "method", "part", "after"), TERMINATED, ids=str)
def test_sigterm_mid_probe_removes_the_scratch_records(
    sims: dict[str, ServedApp],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sim: str,
    target: str,
    method: str,
    part: str,
    after: bool,
) -> None:
    """SIGTERM (a supervisor stopping syncer) mid-probe: the command ends 130 and nothing is
    left on the account."""
    import os
    import signal
    import threading

    assert threading.current_thread() is threading.main_thread()
    urls = {name: s.url for name, s in sims.items()}
    for served in sims.values():
        httpx.post(served.url + "/_sandbox/reset").raise_for_status()
    cfg = write_config(urls, tmp_path, monkeypatch)
    # should the probe not catch SIGTERM, this keeps pytest alive (and the test fails)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        term = lambda: os.kill(os.getpid(), signal.SIGTERM)  # noqa: E731
        calls = interrupt_on(monkeypatch, method, part, term, after=after)
        done = CliRunner().invoke(app, ["probe", "--config", str(cfg), "--target", target])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert any(c.startswith("done ") for c in calls), calls
    assert done.exit_code == 130, done.output
    nothing_left(urls, sim)


def test_a_removal_that_fails_is_named_and_exits_3(
    sims: dict[str, ServedApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every DELETE answered 500: each scratch record is still tried, and named on stderr."""
    urls = {name: s.url for name, s in sims.items()}
    for served in sims.values():
        httpx.post(served.url + "/_sandbox/reset").raise_for_status()
    cfg = write_config(urls, tmp_path, monkeypatch)
    faults = {"error_rate": 1.0, "methods": ["DELETE"], "seed": 1}
    httpx.put(urls["nrs360"] + "/_sandbox/faults", json=faults).raise_for_status()
    try:
        done = CliRunner().invoke(app, ["probe", "--config", str(cfg), "--target", "nrs"])
    finally:
        httpx.put(urls["nrs360"] + "/_sandbox/faults", json={}).raise_for_status()
    assert done.exit_code == 3, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert "probe could not remove from nrs" in lines[0] and "delete them by hand" in lines[0]
    assert lines[0].count("group syncer-probe-") == 2 and "contact " in lines[0], lines[0]
    state = httpx.get(urls["nrs360"] + "/_sandbox/state").json()
    assert len(state["groups"]) == 2 and len(state["contacts"]) == 1  # what the line names


def test_the_np6_import_probe_leaves_existing_targets_alone(
    sims: dict[str, ServedApp], tmp_path: Path
) -> None:
    urls = {name: s.url for name, s in sims.items()}
    for served in sims.values():
        httpx.post(served.url + "/_sandbox/reset").raise_for_status()
    headers = {"X-Key": SECRETS["NP6_KEY"]}
    body = {"1001": "kept@example.com", "1010": "Kept"}
    httpx.put(
        urls["np6"] + "/targets", params={"unicity": "kept@example.com"}, json=body, headers=headers
    ).raise_for_status()
    before = httpx.get(urls["np6"] + "/_sandbox/state").json()["targets"]
    found = {f.switch: f.reading for f in probe_all(model(urls, tmp_path), "np6")}
    assert found["execution_body"] == "full" and found["no_execution"] == "not_found_404"
    after = httpx.get(urls["np6"] + "/_sandbox/state").json()
    assert after["targets"] == before and after["imports"] == []


def test_np6_imports_refused_leave_the_rest_of_the_probe(
    sims: dict[str, ServedApp], tmp_path: Path
) -> None:
    """A key that may not create imports (here: every POST answered 5xx): the import
    readings are "not probed" with the answer, the read-only ones are still found."""
    urls = {name: s.url for name, s in sims.items()}
    for served in sims.values():
        httpx.post(served.url + "/_sandbox/reset").raise_for_status()
    faults = {"error_rate": 1.0, "methods": ["POST"], "seed": 1}
    httpx.put(urls["np6"] + "/_sandbox/faults", json=faults).raise_for_status()
    try:
        found = {f.switch: f for f in probe_all(model(urls, tmp_path), "np6")}
    finally:
        httpx.put(urls["np6"] + "/_sandbox/faults", json={}).raise_for_status()
    assert found["unknown_delete"].reading == "empty_200"
    for switch in ("execution_body", "no_execution"):
        assert found[switch].reading == "not probed", found[switch]
        assert found[switch].how.startswith("POST /imports answered 5"), found[switch]
    assert httpx.get(urls["np6"] + "/_sandbox/state").json()["imports"] == []
