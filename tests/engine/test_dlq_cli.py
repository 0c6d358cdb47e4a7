"""``syncer dlq list|retry`` and ``syncer plan`` through the CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import insert
from typer.testing import CliRunner

from syncer.cli.main import app
from syncer.state.schema import deliveries
from syncer.state.store import Store

CONFIG = """
version: 1
state: {{url: "sqlite:///{db}"}}
source: {{type: contacthub, base_url: "http://ch.invalid", workspace_id: w, node_id: n,
          token: "${{CH_TOKEN}}"}}
targets:
  nrs: {{type: 360nrs, base_url: "http://nrs.invalid/api/rest", username: u,
         api_password: "${{NRS_PASSWORD}}"}}
pipelines:
  - {{name: news, target: nrs, entity: customer, fields: {{email: email}}, groups: [N]}}
"""


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    # The CLI configures structlog on CliRunner's stream, closed after the call: undo it.
    yield
    structlog.reset_defaults()


@pytest.fixture
def cfg_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CH_TOKEN", "secret-token")
    monkeypatch.setenv("NRS_PASSWORD", "secret-password")
    path = tmp_path / "syncer.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "state.db"))
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    now = time.time()
    base = {
        "pipeline": "news",
        "target": "nrs",
        "entity_type": "customer",
        "action": "upsert",
        "attempts": 3,
        "due_at": now,
        "created_at": now,
        "updated_at": now,
    }
    with store.transaction() as conn:
        conn.execute(
            insert(deliveries),
            [
                {
                    **base,
                    "entity_id": "c1",
                    "subject_id": "c1",
                    "state": "dead",
                    "last_error": "360NRS 422: bad phone",
                },
                {
                    **base,
                    "entity_id": "c2",
                    "subject_id": "c2",
                    "state": "dead",
                    "last_error": "360NRS 422: bad email",
                },
            ],
        )
    store.close()
    return path


def test_dlq_list_retry_and_plan(cfg_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["dlq", "list", "--all", "--config", str(cfg_path), "--json"])
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.output)
    assert doc["total"] == 2 and {d["error"] for d in doc["records"]} == {
        "360NRS 422: bad phone",
        "360NRS 422: bad email",
    }
    text = runner.invoke(app, ["dlq", "list", "-c", str(cfg_path), "--pipeline", "news"])
    assert "bad phone" in text.output and "2 dead deliveries" in text.output
    first = min(d["id"] for d in doc["records"])
    retried = runner.invoke(app, ["dlq", "retry", "-c", str(cfg_path), "--id", str(first)])
    assert retried.exit_code == 0 and "1 deliveries queued again" in retried.output
    left = json.loads(runner.invoke(app, ["dlq", "list", "-c", str(cfg_path), "--json"]).output)
    assert left["total"] == 1
    planned = runner.invoke(app, ["plan", "-c", str(cfg_path), "--json"])
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.output)
    # the entity was never ingested: the real run would dead-letter it as invalid
    assert plan["pipelines"]["news"]["invalid"] == 1
    assert "not in the state store" in plan["invalid"][0]["error"]
