"""The demo's config and seed data for the sandbox, without running it: the sources the
sandbox must serve (two-source and single-source examples) and distinct customer bases."""

from __future__ import annotations

from pathlib import Path

import yaml

from syncer.config.loader import load_config
from syncer.demo.orchestrate import email_tags, share, tag_emails
from syncer.demo.workspace import (
    DEMO_CONFIG,
    SourceNode,
    Workspace,
    read_example,
    workspace_layout,
)
from syncer.sandbox.cluster import SandboxCluster

ROOT = Path(__file__).resolve().parents[2]


def written(tmp_path: Path, example: Path) -> tuple[dict[str, object], Workspace]:
    doc, _nodes = read_example(example)
    ws = Workspace(tmp_path)
    ws.prepare()
    with SandboxCluster() as cluster:
        path = ws.write_config(example, cluster.connection_info(), doc)
    return yaml.safe_load(path.read_text()), ws


def test_the_default_example_has_two_sources_each_its_own_workspace(tmp_path: Path) -> None:
    assert DEMO_CONFIG.name == "two-brands.yaml"
    _doc, nodes = read_example(DEMO_CONFIG)
    assert [n.source for n in nodes] == ["brand-it", "brand-fr"]
    layout = workspace_layout(nodes)
    assert len(layout) == 2 and all(len(v) == 1 for v in layout.values())
    _config, ws = written(tmp_path, DEMO_CONFIG)
    cfg = load_config(ws.config_path, env=ws.env)
    assert set(cfg.sources) == {"brand-it", "brand-fr"}
    # the sandbox serves the workspaces and nodes the config names
    assert {s.workspace_id: [s.node_id] for s in cfg.sources.values()} == layout
    assert {p.name: p.source for p in cfg.pipelines} == {
        "newsletter": None,
        "sms-vip": "brand-it",
        "orders-np6": "brand-fr",
    }
    assert "${CONTACTHUB_TOKEN}" in ws.config_path.read_text()
    assert ws.env["CONTACTHUB_TOKEN"] == "sandbox-contacthub-token"


def test_a_single_source_example_keeps_its_form(tmp_path: Path) -> None:
    example = ROOT / "config" / "example.yaml"
    _doc, nodes = read_example(example)
    assert [n.source for n in nodes] == ["default"]
    config, ws = written(tmp_path, example)
    assert "source" in config and "sources" not in config
    # it reads the sandbox's main workspace node, as the tests built on it expect
    with SandboxCluster() as cluster:
        hub = cluster.connection_info()["contacthub"]
    assert config["source"]["workspace_id"] == hub["workspace_id"]  # type: ignore[index]
    assert list(load_config(ws.config_path, env=ws.env).sources) == ["default"]


def test_references_for_ids_become_sandbox_ids(tmp_path: Path) -> None:
    example = tmp_path / "ex.yaml"
    doc = yaml.safe_load((ROOT / "config" / "two-brands.yaml").read_text())
    doc["sources"]["brand-fr"]["workspace_id"] = "${FR_WS}"
    doc["sources"]["brand-fr"].pop("node_id")
    doc["sources"]["brand-fr"]["node_ids"] = ["${FR_NODE}", "n-2"]
    example.write_text(yaml.safe_dump(doc, sort_keys=False))
    got, nodes = read_example(example)
    assert nodes[1:] == [
        SourceNode("brand-fr", "sandbox-ws-2", "sandbox-ws-2-node-1"),
        SourceNode("brand-fr", "sandbox-ws-2", "n-2"),
    ]
    assert got["sources"]["brand-fr"]["node_ids"] == ["sandbox-ws-2-node-1", "n-2"]


def test_each_source_gets_its_own_email_addresses() -> None:
    nodes = [
        SourceNode("brand-it", "w1", "a"),
        SourceNode("brand-fr", "w2", "b"),
        SourceNode("brand-fr", "w2", "c"),
    ]
    assert email_tags(nodes) == ["", "brand-fr", "brand-fr-2"]
    shared = {"email": " Mario.Rossi@Libero.it ", "mobilePhone": None}
    docs = [{"base": {"contacts": shared}}, {"base": {"contacts": {"email": None}}}]
    tag_emails(docs, "brand-fr")
    assert docs[0]["base"]["contacts"]["email"] == " Mario.Rossi+brand-fr@Libero.it "
    assert shared["email"] == " Mario.Rossi@Libero.it "  # a shared part is not changed
    assert docs[1]["base"]["contacts"]["email"] is None
    assert [share(2000, 2, n) for n in range(2)] == [1000, 1000]
    assert [share(5, 3, n) for n in range(3)] == [2, 2, 1]
