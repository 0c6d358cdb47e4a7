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

from syncer.config.loader import load_config
from syncer.demo.workspace import EXAMPLE_CONFIG, demo_config
from syncer.engine import runner
from syncer.sandbox.cluster import SandboxCluster
from syncer.sandbox.contacthub import DEFAULT_NODE_ID
from syncer.sandbox.datagen import generate_dataset
from syncer.source.contacthub import ContacthubClient
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
        assert f"{cid}  requested " in text.stdout and "scrubbed" in text.stdout
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
