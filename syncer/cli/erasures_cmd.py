"""``syncer erasures``: the erasure ledger, the receipt per target of each forgotten customer.

Each customer deleted in Contacthub is one erasure; per pipeline and target it shows when the
target acknowledged it (its ``on_delete``: delete, unsubscribe or list removal, done) or why not
yet (the ``delete`` delivery's state, attempts and last error). Read only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from ..config import SyncerConfig
from ..state import erasure_ops
from .common import ConfigOption, clean_errors, load, open_store

__all__ = ["register"]


def _stamp(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(at))


def _on_delete(cfg: SyncerConfig, pipeline: str) -> str | None:
    """The pipeline's ``on_delete`` (None: a pipeline no longer in the config)."""
    for p in cfg.pipelines:
        if p.name == pipeline:
            return p.on_delete
    return None


def _as_json(cfg: SyncerConfig, r: erasure_ops.ErasureRecord) -> dict[str, Any]:
    return {
        "customer_id": r.entity_id,
        "reason": r.reason,
        "requested_at": r.requested_at,
        "state": r.state,
        "pending": r.pending,
        "acknowledged_at": r.acknowledged_at,
        "scrubbed_at": r.scrubbed_at,
        "targets": [
            {
                "target": t.target,
                "pipeline": t.pipeline,
                "on_delete": _on_delete(cfg, t.pipeline),
                "state": t.state,
                "acknowledged_at": t.acked_at,
                "outcome": t.outcome,
                "attempts": t.attempts,
                "updated_at": t.updated_at,
                "last_error": t.last_error,
            }
            for t in r.targets
        ],
    }


@clean_errors
def erasures(
    config: Path | None = ConfigOption,
    pending: bool = typer.Option(
        False, "--pending", help="Only erasures some target has not acknowledged yet."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many, newest first."),
) -> None:
    """List erasures (customers deleted in Contacthub), newest first, with per target when
    the delete was acknowledged or why not yet."""
    cfg = load(config)
    store = open_store(cfg)
    try:
        with store.reader() as conn:
            records = erasure_ops.ledger(conn, pending_only=pending, limit=limit)
            count, oldest = erasure_ops.pending_summary(conn)
    finally:
        store.close()
    if as_json:
        doc = {
            "erasures": [_as_json(cfg, r) for r in records],
            "count": len(records),
            "pending": count,
            "oldest_pending_requested_at": oldest,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    if not records:
        typer.echo("no pending erasures" if pending else "no erasures")
        return
    for r in records:
        status = {
            "pending": "pending",
            "dead": "dead: a target gave up (syncer dlq list, then syncer dlq retry)",
            "acknowledged": f"acknowledged {_stamp(r.acknowledged_at)}  not scrubbed yet",
            "scrubbed": f"acknowledged {_stamp(r.acknowledged_at)}  "
            f"scrubbed {_stamp(r.scrubbed_at)}",
        }[r.state]
        typer.echo(f"{r.entity_id}  requested {_stamp(r.requested_at)}  {status}")
        if not r.targets:
            typer.echo("    (no target had the customer: nothing to tell)")
        for t in r.targets:
            how = _on_delete(cfg, t.pipeline) or "pipeline not in the config"
            where = f"    {t.target}/{t.pipeline} ({how})"
            if t.state == "done":
                typer.echo(f"{where}  acknowledged {_stamp(t.acked_at)}  {t.outcome or ''}")
            else:
                error = f"  {t.last_error}" if t.last_error else ""
                typer.echo(f"{where}  not yet: {t.state}  attempts={t.attempts}{error}")
    typer.echo(f"{len(records)} erasures shown; {count} pending")


def register(app: typer.Typer) -> None:
    """Add ``erasures`` to ``app``."""
    app.command("erasures")(erasures)
