"""``syncer plan --from-stream`` on a PostgreSQL state database: it previews the pending stream
updates (on a throwaway SQLite copy of the state) and writes nothing to PostgreSQL.

The real ``syncer`` runs against the sandbox's simulators on 127.0.0.1; PostgreSQL comes from
``tools/with-postgres.sh`` (the test skips without it, and fails in CI).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import Sandbox, human_lines, run
from sqlalchemy import create_engine, inspect, text

from syncer.state.schema import metadata

pytestmark = pytest.mark.postgres


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the database (sorted), and which tables there are."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            assert set(metadata.tables) <= set(names)
            return {
                name: sorted(
                    (tuple(r) for r in conn.execute(text(f'SELECT * FROM "{name}"'))), key=repr
                )
                for name in names
            }
    finally:
        engine.dispose()


def add_customer(sandbox: Sandbox) -> None:
    src = sandbox.doc["source"]
    body = {
        "nodeId": src["node_id"],
        "externalId": "preview-pg-1",
        "base": {
            "firstName": "Preview",
            "contacts": {"email": "preview.pg@example.com"},
            "address": {"country": "IT"},
        },
        "consents": {"marketing": {"automatic": {"email": {"status": True}}}},
    }
    answer = httpx.post(
        f"{src['base_url']}/workspaces/{src['workspace_id']}/customers",
        json=body,
        headers={"Authorization": f"Bearer {sandbox.secrets['CONTACTHUB_TOKEN']}"},
    )
    assert answer.status_code in (200, 201), answer.text


def test_plan_from_stream_on_postgres_writes_nothing(
    sandbox: Sandbox, tmp_path: Path, pg_url: str
) -> None:
    config = sandbox.write(tmp_path, state={"url": pg_url})
    env = sandbox.env()
    done = run(["backfill", "-q", "-c", str(config)], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    add_customer(sandbox)
    before = snapshot(pg_url)
    queued = [r for r in before["deliveries"] if r[1] == "newsletter" and r[6] == "pending"]
    assert queued and before["checkpoints"]  # a real state to copy

    done = run(["plan", "--from-stream", "--json", "-c", str(config)], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert human_lines(done.stderr) == []
    data = json.loads(done.stdout)
    assert data["from_stream"] >= 1
    # the backfill's queued creates, and the customer only the stream has
    assert data["pipelines"]["newsletter"]["create"] == len(queued) + 1, data
    assert snapshot(pg_url) == before  # no row, table or offset changed
