"""``syncer erasures`` and ``syncer db prune`` as an operator runs them, against the sandbox
(real simulators on 127.0.0.1) and a SQLite state database: customers synced to 360NRS
(``on_delete: delete``) and Octopush (``on_delete: remove_from_list``) are deleted in
Contacthub; after the next sync every target acknowledged, ``syncer erasures`` shows the receipt
per target, and none of their e-mails or phone numbers is in any text column of any table of
the state database (the sync scrubbed them; ``syncer db prune`` then has nothing to do)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from cli_helpers import Sandbox, human_lines, run
from click.testing import Result
from typer.testing import CliRunner

from syncer.cli.main import app
from syncer.config.loader import load_config
from syncer.demo.workspace import EXAMPLE_CONFIG, demo_config
from syncer.engine import runner
from syncer.sandbox.cluster import SandboxCluster
from syncer.sandbox.contacthub import DEFAULT_NODE_ID
from syncer.sandbox.datagen import generate_dataset
from syncer.source.contacthub import ContacthubClient
from syncer.state import erasure_ops
from syncer.state.store import Store


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[SandboxCluster, Sandbox]]:
    with SandboxCluster() as c:
        docs, _ = generate_dataset(40, 0, seed=5, node_id=DEFAULT_NODE_ID)
        c.contacthub.load({"customers": docs, "events": [], "append_updates": True})
        example = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        doc, secrets = demo_config(example, c.connection_info(), "sqlite:///./syncer.db")
        yield c, Sandbox(doc, secrets)


def delete_in_contacthub(c: SandboxCluster, cid: str) -> None:
    hub = c.connection_info()["contacthub"]
    url = f"{hub['api_base']}/workspaces/{hub['workspace_id']}/customers/{cid}"
    httpx.delete(url, headers={"Authorization": f"Bearer {hub['token']}"}).raise_for_status()


def sync_once(config: Path, env: dict[str, str]) -> None:
    """``syncer sync --once`` in-process (the CLI's own test is elsewhere; a subprocess per
    step would make this test slow), waiting for no retry."""
    cfg = load_config(config, env=env)
    store = Store(cfg.state.url)
    token = cfg.source.token.get_secret_value()
    try:
        with httpx.Client(
            base_url=cfg.source.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            client = ContacthubClient(http, cfg.source.workspace_id, cfg.source.node_id)
            runner.sync_once(cfg, store, client, retry_window=0)
    finally:
        store.close()


def text_cells(db: Path) -> list[tuple[str, str, str]]:
    """``(table, column, value)`` of every text cell of every table."""
    out = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            for column in columns:
                for (value,) in conn.execute(f'SELECT "{column}" FROM {table}'):
                    if isinstance(value, str):
                        out.append((table, column, value))
    return out


def contact_keys(payload: str) -> list[str]:
    contacts = json.loads(payload).get("base", {}).get("contacts", {})
    return [v for k, v in contacts.items() if k in ("email", "mobilePhone") and v]


def test_erasures_show_each_targets_receipt_and_prune_scrubs(
    cluster: tuple[SandboxCluster, Sandbox], tmp_path: Path
) -> None:
    c, sandbox = cluster
    config = sandbox.write(tmp_path)
    env = sandbox.env()
    sync_once(config, env)
    db = tmp_path / "syncer.db"
    with sqlite3.connect(db) as conn:
        in_target = {
            t: [r[0] for r in conn.execute("SELECT entity_id FROM id_map WHERE target = ?", (t,))]
            for t in ("nrs", "octo")
        }
        payloads = dict(
            conn.execute("SELECT entity_id, payload FROM entities WHERE entity_type = 'customer'")
        )
    # one customer only in 360NRS, one in Octopush (and 360NRS when it is there too)
    gone = [in_target["nrs"][0], next(i for i in in_target["octo"] if i != in_target["nrs"][0])]
    kept = next(i for i in in_target["nrs"] if i not in gone)
    secrets = [k for cid in gone for k in contact_keys(payloads[cid])]
    assert len(secrets) >= 2
    assert any(k in v for _, _, v in text_cells(db) for k in secrets)  # the check finds them
    for cid in gone:
        delete_in_contacthub(c, cid)

    sync_once(config, env)
    listed = run(["erasures", "--json", "-c", str(config)], cwd=tmp_path, env=env)
    doc = json.loads(listed.stdout)
    by_id = {e["customer_id"]: e for e in doc["erasures"]}
    assert set(by_id) == set(gone) and doc["pending"] == 0
    assert {(e["source"], e["entity_id"]) for e in doc["erasures"]} == {
        ("default", g) for g in gone
    }
    one = run(
        ["erasures", "--json", "--customer", gone[0], "-c", str(config)], cwd=tmp_path, env=env
    )
    assert [e["customer_id"] for e in json.loads(one.stdout)["erasures"]] == [gone[0]]
    for cid in gone:
        record = by_id[cid]
        # the sync scrubbed it right after the last acknowledgement
        assert record["state"] == "scrubbed" and record["acknowledged_at"] is not None
        assert record["scrubbed_at"] >= record["acknowledged_at"]
        told = {t["target"]: t for t in record["targets"]}
        expected = {t for t, members in in_target.items() if cid in members}
        assert set(told) == expected, (cid, told)
        for t in told.values():
            assert t["state"] == "done" and t["acknowledged_at"] is not None
            assert t["on_delete"] == {"nrs": "delete", "octo": "remove_from_list"}[t["target"]]
    pruned = run(["db", "prune", "-c", str(config)], cwd=tmp_path, env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert human_lines(pruned.stderr) == []
    assert pruned.stdout.startswith("scrubbed 0 erasures; deleted 0 done"), pruned.stdout
    cells = text_cells(db)
    leaked = sorted({(t, col) for t, col, v in cells if any(k in v for k in secrets)})
    assert leaked == []
    kept_keys = contact_keys(payloads[kept])
    assert any(kept_keys[0] in v for _, _, v in cells)  # the check finds what is still there
    text = run(["erasures", "-c", str(config)], cwd=tmp_path, env=env)
    assert text.returncode == 0
    assert text.stdout.count("  scrubbed ") == len(gone)
    for cid in gone:
        # the plain Contacthub id and its source (the single `source:` form is 'default')
        assert f"{cid}  source default  requested " in text.stdout and "scrubbed" in text.stdout
    assert "nrs/newsletter (delete)  acknowledged" in text.stdout
    assert "0 pending" in text.stdout


def test_erasures_on_a_database_without_any(
    cluster: tuple[SandboxCluster, Sandbox], tmp_path: Path
) -> None:
    _, sandbox = cluster
    config = sandbox.write(tmp_path)
    env = sandbox.env()
    Store(f"sqlite:///{tmp_path / 'syncer.db'}").close()  # as `syncer db upgrade` leaves it
    done = run(["erasures", "--pending", "-c", str(config)], cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout.strip()) == (0, "no pending erasures")
    missing = sandbox.write(tmp_path, state={"url": "sqlite:///./nothing-here.db"})
    refused = run(["erasures", "-c", str(missing)], cwd=tmp_path, env=env)
    assert refused.returncode == 3
    assert len(human_lines(refused.stderr)) == 1 and "Traceback" not in refused.stderr


def _sources_config(sandbox: Sandbox, folder: Path, names: tuple[str, str]) -> Path:
    """The sandbox config with two sources named ``names`` (the second reads another
    workspace); ``erasures`` reads only the state, never Contacthub."""
    single = sandbox.doc["source"]
    sources = {names[0]: single, names[1]: {**single, "workspace_id": "ws-fr"}}
    doc = {k: v for k, v in sandbox.doc.items() if k != "source"} | {"sources": sources}
    path = folder / f"{names[0]}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_erasures_take_a_source_and_the_plain_contacthub_id(
    cluster: tuple[SandboxCluster, Sandbox], tmp_path: Path
) -> None:
    _, sandbox = cluster
    env = sandbox.env()
    config = _sources_config(sandbox, tmp_path, ("default", "brand-fr"))
    store = Store(f"sqlite:///{tmp_path / 'syncer.db'}")
    with store.transaction() as conn:  # as ingest records a deletion of each source
        erasure_ops.open_erasures(conn, ["c1", "brand-fr:c1", "brand-fr:c9"], "deleted", 1e9)
    store.close()

    def erasures(*args: str, cfg: Path = config) -> Result:
        # in-process (the subprocess runs are the test above's): a dozen would be slow
        return CliRunner().invoke(app, ["erasures", *args, "-c", str(cfg)], env=env)

    def listed(*args: str) -> list[tuple[str, str, str]]:
        done = erasures("--json", *args)
        assert done.exit_code == 0, done.output
        return [
            (e["source"], e["customer_id"], e["entity_id"])
            for e in json.loads(done.stdout)["erasures"]
        ]

    fr_c1 = [("brand-fr", "c1", "brand-fr:c1")]
    assert listed("--customer", "c1", "--source", "brand-fr") == fr_c1
    assert listed("--customer", "brand-fr:c1") == fr_c1  # the namespaced form still works
    assert listed("--customer", "brand-fr:c1", "--source", "brand-fr") == fr_c1
    assert listed("--customer", "c1") == [("default", "c1", "c1")]  # the source named default
    assert sorted(listed("--source", "brand-fr")) == [*fr_c1, ("brand-fr", "c9", "brand-fr:c9")]
    assert listed("--customer", "c9") == []  # c9 is brand-fr's, not default's

    text = erasures("--source", "brand-fr")
    lines = text.stdout.splitlines()
    assert sum(line.startswith("c1  source brand-fr  requested ") for line in lines) == 1
    assert not any("source default" in line for line in lines)
    assert lines[-1] == "2 erasures shown; 0 pending of source brand-fr"
    none = erasures("--customer", "c9")
    assert none.stdout.strip() == "no erasures of customer c9 (source default)"

    wrong = erasures("--customer", "brand-fr:c1", "--source", "default")
    assert wrong.exit_code == 2 and len(wrong.stderr.splitlines()) == 1
    assert "is of source 'brand-fr', not --source 'default'" in wrong.stderr
    unknown = erasures("--source", "brand-fx")
    assert unknown.exit_code == 2 and "unknown source 'brand-fx'" in unknown.stderr

    # no source named default: a plain id needs --source
    named = _sources_config(sandbox, tmp_path, ("brand-it", "brand-fr"))
    done = erasures("--customer", "c1", cfg=named)
    assert done.exit_code == 2 and len(done.stderr.splitlines()) == 1
    assert "several sources are configured: pass --source (brand-it, brand-fr)" in done.stderr
