"""``syncer discover`` and ``syncer validate --online`` against the sandbox's Contacthub (its
configuration listings: syncer/sandbox/contacthub/api_configuration.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import Sandbox, human_lines, run

from syncer.sandbox.contacthub import (
    DEFAULT_NODE_ID,
    DEFAULT_TOKEN,
    DEFAULT_WORKSPACE_ID,
    ContacthubSimulator,
)
from syncer.sandbox.serve import ServedApp

WS_FR, NODES_FR = "ws-fr", ["node-fr-a", "node-fr-b"]


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


def _customer(cid: str, node: str, extended: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": cid,
        "nodeId": node,
        "externalId": cid,
        "base": {"contacts": {"email": f"{cid}@example.com"}},
        "extended": extended,
    }


@pytest.fixture(scope="module")
def two_workspaces() -> Iterator[str]:
    """A Contacthub with two workspaces (the second with two entry nodes) whose customers
    have different extended properties; its API base URL."""
    sim = ContacthubSimulator(
        DEFAULT_WORKSPACE_ID, [DEFAULT_NODE_ID], DEFAULT_TOKEN, extra_workspaces={WS_FR: NODES_FR}
    )
    sim.load({"customers": [_customer("it-1", DEFAULT_NODE_ID, {"itOnly": "x"})]})
    sim.load({"workspace_id": WS_FR, "customers": [_customer("fr-1", NODES_FR[1], {"frOnly": 1})]})
    with ServedApp(sim.asgi()) as served:
        yield f"{served.url}/hub/v1"


def _two_sources(sandbox: Sandbox, folder: Path, base_url: str) -> Path:
    single = {**sandbox.doc["source"], "base_url": base_url}
    fr = {k: v for k, v in single.items() if k != "node_id"}
    sources = {
        "brand-it": {**single, "workspace_id": DEFAULT_WORKSPACE_ID},
        "brand-fr": {**fr, "workspace_id": WS_FR, "node_ids": NODES_FR},
    }
    doc = {k: v for k, v in sandbox.doc.items() if k != "source"} | {"sources": sources}
    path = folder / "syncer.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_discover_lists_every_source_by_default(
    sandbox: Sandbox, tmp_path: Path, two_workspaces: str
) -> None:
    config = _two_sources(sandbox, tmp_path, two_workspaces)
    env = sandbox.env(CONTACTHUB_TOKEN=DEFAULT_TOKEN)
    done = run(["discover", "--json", "-c", str(config)], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    by_source = {d["source"]: d for d in data["sources"]}
    assert list(by_source) == ["brand-it", "brand-fr"]  # config order
    it, fr = by_source["brand-it"], by_source["brand-fr"]
    assert (it["workspace_id"], fr["workspace_id"]) == (DEFAULT_WORKSPACE_ID, WS_FR)
    assert [n["id"] for n in it["nodes"]] == [DEFAULT_NODE_ID]
    assert [n["id"] for n in fr["nodes"]] == NODES_FR
    # each workspace's own extended schema, read with its own source's settings
    it_fields = {f["path"] for f in it["fields"]}
    fr_fields = {f["path"] for f in fr["fields"]}
    assert "extended.itOnly" in it_fields and "extended.itOnly" not in fr_fields
    assert "extended.frOnly" in fr_fields and "extended.frOnly" not in it_fields
    assert {k: data[k] for k in it} == it  # the first source's listing at the top, as before

    text = run(["discover", "-c", str(config)], cwd=tmp_path, env=env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("source ")]
    assert [lines[i] for i in heads] == [
        f"source brand-it: workspace {DEFAULT_WORKSPACE_ID}",
        f"source brand-fr: workspace {WS_FR}",
    ]
    it_part, fr_part = lines[heads[0] : heads[1]], lines[heads[1] :]
    assert any("extended.itOnly" in line for line in it_part)
    assert not any("extended.itOnly" in line for line in fr_part)
    assert any("extended.frOnly" in line for line in fr_part)
    assert sum(NODES_FR[1] in line for line in fr_part) == 1


def test_discover_one_source_of_several(
    sandbox: Sandbox, tmp_path: Path, two_workspaces: str
) -> None:
    config = _two_sources(sandbox, tmp_path, two_workspaces)
    env = sandbox.env(CONTACTHUB_TOKEN=DEFAULT_TOKEN)
    done = run(
        ["discover", "--json", "--source", "brand-fr", "-c", str(config)], cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["source"], data["workspace_id"]) == ("brand-fr", WS_FR)
    assert "sources" not in data
    text = run(["discover", "--source", "brand-fr", "-c", str(config)], cwd=tmp_path, env=env)
    assert text.stdout.splitlines()[0] == f"source brand-fr: workspace {WS_FR}"
    assert "extended.itOnly" not in text.stdout
    wrong = run(["discover", "--source", "brand-fx", "-c", str(config)], cwd=tmp_path, env=env)
    assert wrong.returncode == 2
    assert "unknown source 'brand-fx'" in "\n".join(human_lines(wrong.stderr))
