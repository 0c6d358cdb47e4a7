"""The terminal rendering of ``syncer status``."""

from __future__ import annotations

from rich.console import Console

from syncer.cli.status_view import render_status


def test_status_tables_show_every_section() -> None:
    data = {
        "source": {
            "stream": "ws/node",
            "offset": 40,
            "last_offset": 52,
            "lag": 12,
            "lease_owner": None,
        },
        "pipelines": {"newsletter": {"done": 7, "dead": 2}, "orders-np6": {}},
        "runs": [{"run_id": "sync-1", "kind": "sync", "status": "failed", "counts": {"dead": 2}}],
        "dead_total": 2,
        "dead_letters": [
            {
                "id": 9,
                "pipeline": "newsletter",
                "entity_id": "c-1",
                "last_error": "422: The email must be a valid email address.",
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
        "orders-np6",
        "sync-1",
        "Dead letters: 2",
        "c-1",
        "valid email address",
    ):
        assert expected in text, expected
    newsletter_row = next(line for line in text.splitlines() if "newsletter" in line)
    assert newsletter_row.split("│")[5].strip() == "7"  # the done column
