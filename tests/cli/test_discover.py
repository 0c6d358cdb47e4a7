"""``syncer discover`` and ``syncer validate --online`` against the sandbox's Contacthub (its
configuration listings: syncer/sandbox/contacthub/api_configuration.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from cli_helpers import Sandbox, human_lines, run


def test_discover_lists_fields_consents_event_types_and_nodes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = sandbox.write(tmp_path)
    done = run(["discover", "--json", "-c", str(config)], cwd=tmp_path, env=sandbox.env())
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    fields = {f["path"]: f["type"] for f in data["fields"]}
    assert fields["base.contacts.email"] == "string" and fields["base.dob"] == "date"
    assert "extended.loyaltyTier" in fields  # from the workspace's extended schema
    assert "marketing.automatic.email" in data["consents"]
    types = {e["type"]: e for e in data["event_types"]}
    assert types["completedOrder"]["enabled"] is True and "completed_order" not in types
    assert sandbox.doc["source"]["node_id"] in {n["id"] for n in data["nodes"]}


def test_discover_plain_output(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write(tmp_path)
    done = run(["discover", "-c", str(config)], cwd=tmp_path, env=sandbox.env())
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert ["base.contacts.mobilePhone", "string"] in lines
    assert ["completedOrder", "ACTIVE"] in lines and ["marketing.automatic.sms"] in lines


def test_validate_online_passes_the_sandbox_config(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write(tmp_path)
    done = run(["validate", "--online", "-c", str(config)], cwd=tmp_path, env=sandbox.env())
    assert done.returncode == 0, done.stderr
    assert "online: checked against the Contacthub workspace" in done.stdout


def test_validate_online_reports_every_unknown_name(sandbox: Sandbox, tmp_path: Path) -> None:
    pipelines = copy.deepcopy(sandbox.doc["pipelines"])
    by_name = {p["name"]: p for p in pipelines}
    by_name["orders-np6"]["event_types"] = ["completed_order"]
    by_name["newsletter"]["fields"]["name"] = "base.fristName"
    by_name["newsletter"]["fields"]["surname"] = "{{ extended.loyaltyTeir | upper }}"
    config = sandbox.write(tmp_path, pipelines=pipelines)
    done = run(["validate", "--online", "-c", str(config)], cwd=tmp_path, env=sandbox.env())
    assert done.returncode == 2, done.stdout
    lines = "\n".join(human_lines(done.stderr))
    names = [p["name"] for p in pipelines]
    news, orders = names.index("newsletter"), names.index("orders-np6")
    for expected in (
        f"pipelines[{orders}] (orders-np6).event_types: 'completed_order' is not an enabled",
        f"pipelines[{news}] (newsletter).fields.name: 'base.fristName' is not a field",
        f"pipelines[{news}] (newsletter).fields.surname: 'extended.loyaltyTeir' is not a",
    ):
        assert expected in lines, lines
    as_json = run(
        ["validate", "--online", "--json", "-c", str(config)], cwd=tmp_path, env=sandbox.env()
    )
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 2 and data["ok"] is False and len(data["problems"]) == 3


def test_validate_json_on_success_and_config_errors(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write(tmp_path)
    done = run(["validate", "--json", "-c", str(config)], cwd=tmp_path, env=sandbox.env())
    data = json.loads(done.stdout)
    assert done.returncode == 0 and data["ok"] is True and data["pipelines"] == 3
    bad = sandbox.write(tmp_path, name="bad.yaml", surprise=1)
    done = run(["validate", "--json", "-c", str(bad)], cwd=tmp_path, env=sandbox.env())
    data = json.loads(done.stdout)
    assert done.returncode == 2 and data["ok"] is False
    assert any("surprise" in line for line in data["problems"])
