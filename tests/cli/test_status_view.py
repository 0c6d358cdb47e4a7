"""``syncer status``: its terminal rendering, and the lag in seconds against the sandbox."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import Sandbox, run
from rich.console import Console

from syncer.cli.status_view import plain_status, render_status
from syncer.demo.workspace import EXAMPLE_CONFIG, demo_config
from syncer.sandbox.cluster import SandboxCluster
from syncer.sandbox.contacthub import DEFAULT_NODE_ID
from syncer.source.contacthub import parse_instant
from syncer.state.store import Store


def test_status_tables_show_every_section() -> None:
    queue = {
        "pipeline": "newsletter",
        "target": "nrs",
        "pending": 3,
        "in_flight": 0,
        "failed": 1,
        "done": 7,
        "invalid": 2,
        "dead": 1,
        "oldest_due_at": 1000.0,
        "overdue_seconds": 300.0,
        "open": 4,
    }
    data = {
        "source": {
            "stream": "ws/node",
            "offset": 40,
            "last_offset": 52,
            "lag": 12,
            "lag_seconds": 185.0,
            "lease_owner": None,
            "backfill": {"state": "done", "slices": {}},
        },
        "queues": [queue],
        "erasures_pending": 2,
        "runs": [
            {
                "run_id": "sync-1",
                "kind": "sync",
                "status": "failed",
                "started_at": 1_800_000_000.0,
                "finished_at": 1_800_000_065.0,
                "duration_seconds": 65.0,
                "targets": {
                    "nrs": {"done": 7, "invalid": 2, "dead": 1, "open": 0, "stopped": None}
                },
            }
        ],
    }
    console = Console(record=True, width=160, force_terminal=True)
    render_status(data, console)
    text = console.export_text()
    for expected in (
        "ws/node",
        "52",
        "free",
        "newsletter",
        "Erasures pending: 2",
        "sync-1",
        "2027-01-15 08:00:00Z",
        "65s",
        "nrs 7 done, 2 invalid, 1 dead",
        "5m ago",
        "behind",  # the lag in time, next to the lag in updates
    ):
        assert expected in text, expected
    row = next(line for line in text.splitlines() if "newsletter" in line)
    source_row = next(line for line in text.splitlines() if "ws/node" in line)
    assert [c.strip() for c in source_row.split("│")[1:-1]][3:6] == ["52", "12", "3m"]
    cells = [c.strip() for c in row.split("│")[1:-1]]
    # the states, discarded (none here) last, then the oldest due
    assert cells == ["newsletter", "nrs", "3", "0", "1", "7", "2", "1", "0", "5m ago"]


def test_plain_status_has_no_none_or_braces() -> None:
    data = {
        "source": {
            "stream": "ws/node",
            "offset": 0,
            "last_offset": None,
            "lag": None,
            "lease_owner": None,
            "backfill": {"state": None, "slices": {}},
        },
        "queues": [],
        "erasures_pending": 0,
        "runs": [
            {
                "run_id": "sync-2",
                "kind": "sync",
                "status": "running",
                "started_at": 1_800_000_000.0,
                "finished_at": None,
                "duration_seconds": None,
                "targets": {},
            }
        ],
    }
    text = "\n".join(plain_status(data))
    assert "None" not in text and "{}" not in text
    assert "stream last -, lag -, lease free" in text and "backfill none" in text
    data["source"] |= {"last_offset": 9, "lag": 0, "lag_seconds": 0.0}
    assert "stream last 9, lag 0, 0s behind, lease free" in plain_status(data)[0]
    data["source"] |= {"lag": 3, "lag_seconds": None}  # the oldest change's time unknown
    assert "stream last 9, lag 3, age unknown, lease free" in plain_status(data)[0]


# Two customers whose changes are the whole stream, one old and one older; their times are
# what the stream's updates carry (the entity's updatedAt), so the lag in seconds is exact.
OLDER, OLD = "2026-01-01T00:00:00.000+0000", "2026-02-01T12:30:00.000+0000"


@pytest.fixture(scope="module")
def dated_stream() -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    with SandboxCluster() as cluster:
        customers = [
            {
                "id": f"lag-{n}",
                "nodeId": DEFAULT_NODE_ID,
                "externalId": f"lag-{n}",
                "updatedAt": stamp,
                "base": {"contacts": {"email": f"lag-{n}@example.com"}},
            }
            for n, stamp in enumerate((OLDER, OLD))
        ]
        cluster.contacthub.load({"customers": customers, "append_updates": True})
        example = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        yield demo_config(example, cluster.connection_info(), "sqlite:///./syncer.db")


def _epoch(stamp: str) -> float:
    moment = parse_instant(stamp)
    assert moment is not None
    return moment.timestamp()


def test_status_shows_the_lag_in_seconds(
    dated_stream: tuple[dict[str, Any], dict[str, str]], tmp_path: Path
) -> None:
    doc, secrets = dated_stream
    sandbox = Sandbox(doc, secrets)
    config, env = sandbox.write(tmp_path), sandbox.env()

    def status() -> dict[str, Any]:
        done = run(["status", "--json", "-c", str(config)], cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        assert data["streams"] == [data["source"]]
        return data

    # the state as `syncer db upgrade` leaves it; offsets moved as `syncer offsets set` does
    # (in-process: a subprocess per step would make this test slow)
    store = Store(f"sqlite:///{tmp_path / 'syncer.db'}")
    stream = f"{doc['source']['workspace_id']}/{DEFAULT_NODE_ID}"
    data = status()
    src = data["source"]
    assert (src["offset"], src["last_offset"], src["lag"]) == (0, 2, 2)
    # nothing read yet: the oldest unread change is the first customer's
    assert src["oldest_unread_at"] == _epoch(OLDER)
    assert src["lag_seconds"] == pytest.approx(data["generated_at"] - _epoch(OLDER), abs=0.1)

    store.set_offset(stream, 1)
    plain = run(["status", "-c", str(config)], cwd=tmp_path, env=env).stdout
    found = re.search(r"stream last 2, lag 1, (\d+)h(\d\d)m behind, lease free", plain)
    assert found, plain
    shown = int(found[1]) * 3600 + int(found[2]) * 60
    # now the second customer's change is the oldest unread (a month younger than the first)
    assert 0 <= (time.time() - _epoch(OLD)) - shown < 120, (shown, plain)

    store.set_offset(stream, 2)
    store.close()
    src = status()["source"]
    assert (src["lag"], src["lag_seconds"], src["oldest_unread_at"]) == (0, 0.0, None)
