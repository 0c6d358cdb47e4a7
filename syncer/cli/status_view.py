"""``syncer status`` as rich tables, for a terminal (``--json`` and pipes get plain output)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ..state.delivery_ops import STATES


def render_status(data: dict[str, Any], console: Console) -> None:
    source = Table(title="Source", title_justify="left")
    for column in ("source", "stream", "committed offset", "stream last offset", "lag", "lease"):
        source.add_column(column)
    for src in data.get("streams", [data["source"]]):
        source.add_row(
            str(src.get("source", "default")),
            str(src["stream"]),
            str(src["offset"]),
            str(src["last_offset"]),
            str(src["lag"]),
            str(src["lease_owner"] or "free"),
        )
    console.print(source)

    pipelines = Table(title="Deliveries by state", title_justify="left")
    pipelines.add_column("pipeline")
    for state in STATES:
        pipelines.add_column(state, justify="right")
    for name, states in sorted(data["pipelines"].items()):
        row = [str(states.get(state, 0)) for state in STATES]
        pipelines.add_row(
            name,
            *[
                f"[red]{v}[/]" if s == "dead" and v != "0" else v
                for s, v in zip(STATES, row, strict=True)
            ],
        )
    console.print(pipelines)

    runs = Table(title="Last runs", title_justify="left")
    for column in ("run", "kind", "status", "counts"):
        runs.add_column(column)
    for r in data["runs"]:
        runs.add_row(str(r["run_id"]), str(r["kind"]), str(r["status"]), json.dumps(r["counts"]))
    console.print(runs)

    dead = Table(title=f"Dead letters: {data['dead_total']}", title_justify="left")
    for column in ("id", "pipeline", "contacthub id", "reason"):
        dead.add_column(column)
    for d in data["dead_letters"]:
        dead.add_row(str(d["id"]), str(d["pipeline"]), str(d["entity_id"]), str(d["last_error"]))
    console.print(dead)
