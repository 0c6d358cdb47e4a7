"""The stream commands as a user runs them: backfill, status, offsets, sync --once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import ENV, STREAM, TOKEN, served_contacthub, write_config

from syncer.state.store import Store

SYNCER = str(Path(sys.executable).with_name("syncer"))


def cli(
    cfg: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **ENV, **(env or {}), "SYNCER_CONFIG": str(cfg)}
    return subprocess.run([SYNCER, *args], env=full, capture_output=True, text=True, timeout=120)


def test_backfill_status_offsets_and_sync_once(sqlite_url: str, tmp_path: Path) -> None:
    with served_contacthub() as (sim, served):
        sim.load({"generate": {"customers": 300, "events": 0, "seed": 8}})
        cfg = write_config(
            tmp_path,
            served.url,
            sqlite_url,
            pipelines="""
            - name: nobody
              target: nrs
              entity: customer
              when: {match: {extra: "never"}}
              fields: {email: base.contacts.email}
        """,
        )
        done = cli(cfg, "backfill")
        assert done.returncode == 0, done.stderr
        assert "backfill finished: 300 customer and 0 event documents scanned" in done.stdout
        assert "customer and 0 event documents scanned" in done.stdout
        # off a TTY, progress log lines (here the closing one, with the search's total)
        assert "backfill finished: customers: 300/300" in done.stderr
        status = json.loads(cli(cfg, "status", "--json").stdout)
        assert status["source"]["backfill"]["state"] == "done" and status["source"]["lag"] == 0
        assert [(q["pipeline"], q["open"], q["done"]) for q in status["queues"]] == [
            ("nobody", 0, 0)
        ]
        # offsets: set refuses while a live lease is held, unless --force
        store = Store(sqlite_url)
        assert store.acquire_lease(STREAM, "someone-else:1:x", ttl=60)
        refused = cli(cfg, "offsets", "set", "5")
        assert refused.returncode == 3 and "--force" in refused.stderr
        assert cli(cfg, "offsets", "set", "5", "--force").returncode == 0
        store.release_lease(STREAM, "someone-else:1:x")
        assert cli(cfg, "offsets", "reset").returncode == 0
        shown = cli(cfg, "offsets", "show")
        assert "offset 0" in shown.stdout and "lag 0" in shown.stdout
        once = cli(cfg, "sync", "--once")
        assert once.returncode == 0, once.stderr
        assert "result: all records delivered" in once.stdout
        store.close()


def test_a_refused_token_stops_with_a_clear_message_and_no_secret(
    sqlite_url: str, tmp_path: Path
) -> None:
    with served_contacthub() as (_sim, served):
        cfg = write_config(tmp_path, served.url, sqlite_url)
        wrong = "wrong-token-0123456789"
        result = cli(cfg, "sync", "--once", env={"CH_TOKEN": wrong})
        assert result.returncode == 3
        assert "workspace" in result.stderr and "node" in result.stderr
        assert wrong not in result.stderr + result.stdout and TOKEN not in result.stderr
