"""Upgrade: a state database at revision 0007 (the release before sources) synced by a
single-``source:`` config, upgraded (0008) and run with the ``sources:`` form (the former
source named ``default``, plus a new source): it resumes at the same offset and re-delivers
nothing; only the new source's customers go out.

Migration 0008 only adds an index: the ``default`` source keeps its stream key
(``<ws>/<node>``) and its plain customer ids, so the stored checkpoint, entities, id map and
deliveries stay valid as they are."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from alembic import command
from chub_kit import ENV, NODE, STREAM, TOKEN, WS

from syncer.config.loader import load_config
from syncer.engine.runner import sync_once
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.nrs360 import Nrs360Simulator
from syncer.sandbox.serve import ServedApp
from syncer.source.sources import source_clients
from syncer.state import db
from syncer.state.store import Store

SYNCER = str(Path(sys.executable).with_name("syncer"))
WS2, NODE2 = "ws-agency", "node-agency"

SOURCE = """\
  type: contacthub
  base_url: {ch}/hub/v1
  workspace_id: {ws}
  node_id: {node}
  token: ${{CH_TOKEN}}
  page_size: 7
"""
REST = """\
targets:
  nrs:
    type: 360nrs
    base_url: {nrs}/api/rest
    username: ${{NRS_USER}}
    api_password: ${{NRS_PASSWORD}}
pipelines:
  - name: everyone
    target: nrs
    entity: customer
    fields: {{email: base.contacts.email, name: base.firstName}}
    groups: [All]
engine: {{backoff_base: 0.1s, backoff_max: 1s}}
"""


def _customers(prefix: str, node: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{i}",  # the same ids in both workspaces: different customers
            "nodeId": node,
            "externalId": f"{prefix}{i}",
            "updatedAt": "2026-01-01T00:00:00.000+0000",
            "base": {"firstName": f"{prefix}{i}", "contacts": {"email": f"{prefix}{i}@x.org"}},
        }
        for i in range(n)
    ]


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "SYNCER_CONFIG": str(cfg)}
    return subprocess.run([SYNCER, *args], env=env, capture_output=True, text=True, timeout=120)


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the state database at ``url`` to ``revision`` with alembic."""
    engine = db.create_state_engine(url)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()


def _counts(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        out = {
            "revision": conn.execute(text("SELECT version_num FROM alembic_version")).scalar(),
            "offsets": dict(conn.execute(text('SELECT stream, "offset" FROM checkpoints')).all()),
            "deliveries": conn.execute(
                text("SELECT count(*) FROM deliveries WHERE entity_id NOT LIKE '%:%'")
            ).scalar(),
            "sent": conn.execute(
                text("SELECT count(*) FROM delivery_log WHERE entity_id NOT LIKE '%:%'")
            ).scalar(),
            "ids": set(conn.execute(text("SELECT entity_id FROM entities")).scalars()),
        }
    engine.dispose()
    return out


def test_single_source_state_resumes_under_sources_without_redelivery(tmp_path: Path) -> None:
    ch = ContacthubSimulator(token=TOKEN, extra_workspaces={WS2: [NODE2]})
    ch.load({"customers": _customers("old", NODE, 20), "append_updates": True})
    ch.load({"workspace_id": WS2, "customers": _customers("new", NODE2, 5), "append_updates": True})
    with ServedApp(ch.asgi()) as chs, ServedApp(Nrs360Simulator().asgi()) as nrs:
        state = f"sqlite:///{tmp_path / 'state.db'}"
        head = f"version: 1\nstate: {{url: '{state}'}}\nmetrics: {{address: '127.0.0.1:0'}}\n"
        rest = REST.format(nrs=nrs.url)
        old = tmp_path / "old.yaml"
        old.write_text(
            head + "source:\n" + SOURCE.format(ch=chs.url, ws=WS, node=NODE) + textwrap.dedent(rest)
        )
        # the database as the single-source release left it: synced, then taken back to
        # schema 0007 (the downgrades drop what 0008 and later added: this code writes
        # columns 0007 lacks, so it cannot sync on 0007 itself)
        _migrate(state, "head")
        cfg_old = load_config(old, env=ENV)
        store = Store(state, migrate=False)
        clients = source_clients(cfg_old)
        try:
            assert sync_once(cfg_old, store, clients).clean
        finally:
            for c in clients:
                c.http.close()
            store.close()
        _migrate(state, "0007", down=True)
        before = _counts(state)
        assert before["revision"] == "0007"
        assert before["offsets"] == {STREAM: 20}
        assert before["deliveries"] == 20 and before["sent"] >= 20
        contacts = httpx.get(nrs.url + "/_sandbox/state").json()["contacts"]
        assert sorted(c["email"] for c in contacts) == sorted(f"old{i}@x.org" for i in range(20))

        new = tmp_path / "new.yaml"
        indent = lambda block: textwrap.indent(block, "  ")  # noqa: E731
        new.write_text(
            head
            + "sources:\n  default:\n"
            + indent(SOURCE.format(ch=chs.url, ws=WS, node=NODE))
            + "  agency:\n"
            + indent(SOURCE.format(ch=chs.url, ws=WS2, node=NODE2))
            + rest
        )
        upgraded = _cli(new, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        assert _counts(state)["revision"] == db.head_revision()  # 0008 and every later one
        second = _cli(new, "sync", "--once")
        assert second.returncode == 0, second.stderr
        after = _counts(state)
        contacts = httpx.get(nrs.url + "/_sandbox/state").json()["contacts"]
    # the old stream resumed at its offset and read nothing again; nothing old was re-sent
    assert after["offsets"] == {STREAM: 20, f"agency:{WS2}/{NODE2}": 5}
    assert (after["deliveries"], after["sent"]) == (before["deliveries"], before["sent"])
    assert before["ids"] < after["ids"]
    assert after["ids"] - before["ids"] == {f"agency:c{i}" for i in range(5)}
    # the new source's customers went out once each, next to the old ones
    emails = sorted(c["email"] for c in contacts)
    assert emails == sorted(
        [f"old{i}@x.org" for i in range(20)] + [f"new{i}@x.org" for i in range(5)]
    )
    assert f"ingest {STREAM}: 0 updates in 0 pages, offset 20" in second.stdout
    assert f"ingest agency:{WS2}/{NODE2}: 5 updates" in second.stdout
