"""The terminal rendering of ``syncer status``."""

from __future__ import annotations

from rich.console import Console

from syncer.cli.status_view import plain_status, render_status


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
    ):
        assert expected in text, expected
    row = next(line for line in text.splitlines() if "newsletter" in line)
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
    assert "stream last -, lag -" in text and "backfill none" in text
