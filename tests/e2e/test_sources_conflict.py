"""Two sources' versions of one e-mail in one 360NRS target: one contact, holding the version
with the newest ``updatedAt``, whichever source was delivered last (docs/sources.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import ENV, TOKEN

from syncer.config.loader import load_config
from syncer.engine.runner import sync_once
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.serve import ServedApp
from syncer.source.sources import source_clients
from syncer.state.store import Store

SOURCE = """\
  {name}:
    type: contacthub
    base_url: {ch}/hub/v1
    workspace_id: ws-{name}
    node_id: node-{name}
    token: ${{CH_TOKEN}}
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
"""


def _customer(name: str, updated: str) -> dict[str, Any]:
    return {
        "id": "same-id",
        "nodeId": f"node-{name}",
        "externalId": name,
        "updatedAt": updated,
        "base": {"firstName": f"from {name}", "contacts": {"email": "one@x.org"}},
    }


def _sync(cfg_path: Path, only: str | None) -> None:
    cfg = load_config(cfg_path, env=ENV)
    store = Store(cfg.state.url)
    clients = source_clients(cfg, only=only)
    try:
        assert sync_once(cfg, store, clients, retry_window=5).clean
    finally:
        for c in clients:
            c.http.close()
        store.close()


@pytest.mark.parametrize("first", ["new", "old"])
def test_the_newest_updated_at_wins_whatever_the_order(tmp_path: Path, first: str) -> None:
    ch = ContacthubSimulator(
        workspace_id="ws-new",
        node_ids=["node-new"],
        token=TOKEN,
        extra_workspaces={"ws-old": ["node-old"]},
    )
    ch.load(
        {"customers": [_customer("new", "2026-02-01T00:00:00.000+0000")], "append_updates": True}
    )
    ch.load(
        {
            "workspace_id": "ws-old",
            "customers": [_customer("old", "2026-01-01T00:00:00.000+0000")],
            "append_updates": True,
        }
    )
    nrs_sim = Nrs360Simulator(behaviour=Nrs360Behaviour(duplicates="allow"))  # doubles show
    with ServedApp(ch.asgi()) as chs, ServedApp(nrs_sim.asgi()) as nrs:
        state = f"sqlite:///{tmp_path / 'state.db'}"
        path = tmp_path / "syncer.yaml"
        path.write_text(
            f"version: 1\nstate: {{url: '{state}'}}\nsources:\n"
            + SOURCE.format(name="new", ch=chs.url)
            + SOURCE.format(name="old", ch=chs.url)
            + REST.format(nrs=nrs.url)
        )
        _sync(path, first)  # one source delivered alone first
        alone = httpx.get(nrs.url + "/_sandbox/state").json()["contacts"]
        assert [c["name"] for c in alone] == [f"from {first}"]
        _sync(path, None)  # then both: the other one's write lands last
        contacts = httpx.get(nrs.url + "/_sandbox/state").json()["contacts"]
    assert [(c["email"], c["name"]) for c in contacts] == [("one@x.org", "from new")]
    engine = create_engine(state)
    with engine.connect() as conn:
        sent = dict(
            conn.execute(
                text(
                    "SELECT entity_id, count(*) FROM delivery_log WHERE outcome IN "
                    "('created', 'updated') GROUP BY entity_id"
                )
            ).all()
        )
    engine.dispose()
    # old first: new overwrites it, nobody is re-sent; new first: old lands, new goes again
    assert sent == (
        {"new:same-id": 1, "old:same-id": 1}
        if first == "old"
        else {
            "new:same-id": 2,
            "old:same-id": 1,
        }
    )
