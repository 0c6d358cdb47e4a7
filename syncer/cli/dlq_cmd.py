"""``syncer dlq list|retry`` (the dead-letter store) and ``syncer plan`` (dry run).

``plan`` classifies every open delivery with the same code as the real run
(:func:`syncer.engine.planner.plan_pending`) and writes nothing; it makes no target call.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import typer

from ..config import SyncerConfig
from ..engine.planner import PLAN_KINDS, plan_pending
from ..source.sources import check_source_name
from ..state import dlq_ops, ingest_ops
from ..state.store import Store
from .common import ConfigOption, check_pipeline, clean_errors, load, open_store

__all__ = ["register"]

PipelineOption = typer.Option(None, "--pipeline", "-p", help="Only this pipeline.")
SourceOption = typer.Option(None, "--source", help="Only this source's customers and events.")


def _store(
    config: Path | None, pipeline: str | None, *, stored_too: bool = False
) -> tuple[Store, SyncerConfig]:
    """Config and store; a ``--pipeline`` unknown to the config (and, when ``stored_too``,
    to the stored deliveries: dead rows of a pipeline since removed) exits 2 first."""
    cfg = load(config)
    if not stored_too:
        check_pipeline(cfg, pipeline)
    store = open_store(cfg)
    if stored_too and pipeline is not None:
        try:
            with store.reader() as conn:
                stored = ingest_ops.deliveries_by_state(conn)
            check_pipeline(cfg, pipeline, stored)
        except BaseException:
            store.close()
            raise
    return store, cfg


@clean_errors
def dlq_list(
    config: Path | None = ConfigOption,
    pipeline: str | None = PipelineOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    limit: int = typer.Option(1000, "--limit", help="At most this many rows, newest first."),
    source: str | None = SourceOption,
) -> None:
    """List dead deliveries (newest first) with the reason each one died."""
    store, cfg = _store(config, pipeline, stored_too=True)
    try:
        check_source_name(cfg, source)
        with store.transaction() as conn:
            rows = dlq_ops.dlq_list(conn, pipeline, limit, source=source)
    finally:
        store.close()
    if as_json:
        items = [
            {
                "id": r.id,
                "pipeline": r.pipeline,
                "target": r.target,
                "entity_type": r.entity_type,
                "entity_id": r.entity_id,
                "action": r.action,
                "attempts": r.attempts,
                "updated_at": r.updated_at,
                "error": r.last_error,
            }
            for r in rows
        ]
        typer.echo(json.dumps({"dead": items, "count": len(items)}, indent=2))
        return
    if not rows:
        typer.echo("no dead deliveries")
        return
    for r in rows:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.updated_at))
        typer.echo(
            f"{r.id:>8}  {stamp}Z  {r.pipeline}/{r.entity_id}  {r.action}  "
            f"attempts={r.attempts}  {r.last_error or ''}"
        )
    typer.echo(f"{len(rows)} dead deliveries; retry with: syncer dlq retry [--pipeline P] [--id N]")


@clean_errors
def dlq_retry(
    config: Path | None = ConfigOption,
    pipeline: str | None = PipelineOption,
    ids: list[int] | None = typer.Option(None, "--id", help="Only these delivery ids."),
    source: str | None = SourceOption,
) -> None:
    """Move dead deliveries back to the queue (due now, attempts reset)."""
    store, cfg = _store(config, pipeline, stored_too=True)
    try:
        check_source_name(cfg, source)
        with store.transaction() as conn:
            retried, superseded = dlq_ops.dlq_retry(
                conn, time.time(), pipeline, ids or None, source=source
            )
    finally:
        store.close()
    typer.echo(f"{retried} deliveries queued again")
    if superseded:
        typer.echo(f"{superseded} closed: a newer delivery of the same customer is queued")


@clean_errors
def plan(
    config: Path | None = ConfigOption,
    pipeline: str | None = PipelineOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Classify queued deliveries (create, update, unchanged, leave, delete, join/leave group,
    invalid) exactly as a run would, without sending or writing anything."""
    store, cfg = _store(config, pipeline)
    try:
        planned = plan_pending(store, cfg, pipeline)
    finally:
        store.close()
    by_pipeline: dict[str, Counter[str]] = {}
    invalid: list[dict[str, object]] = []
    for p in planned:
        counts = by_pipeline.setdefault(p.row.pipeline, Counter())
        counts[p.kind] += 1
        counts["join group"] += bool(p.joins)
        counts["leave group"] += bool(p.leaves)
        if p.kind == "invalid":
            invalid.append(
                {
                    "id": p.row.id,
                    "pipeline": p.row.pipeline,
                    "entity_id": p.row.entity_id,
                    "error": p.error,
                }
            )
    columns = [*PLAN_KINDS, "join group", "leave group"]
    if as_json:
        doc = {
            "pipelines": {name: {k: c[k] for k in columns} for name, c in by_pipeline.items()},
            "invalid": invalid,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    if not planned:
        typer.echo("nothing queued")
        return
    typer.echo("pipeline".ljust(20) + "".join(k.rjust(12) for k in columns))
    for name, counts in sorted(by_pipeline.items()):
        typer.echo(name.ljust(20) + "".join(str(counts[k]).rjust(12) for k in columns))
    for item in invalid[:20]:
        typer.echo(f"invalid {item['pipeline']}/{item['entity_id']}: {item['error']}")


def register(app: typer.Typer) -> None:
    """Add ``dlq list``, ``dlq retry`` and ``plan`` to ``app``."""
    dlq_app = typer.Typer(help="The dead-letter store.", no_args_is_help=True)
    dlq_app.command("list")(dlq_list)
    dlq_app.command("retry")(dlq_retry)
    app.add_typer(dlq_app, name="dlq")
    app.command("plan")(plan)
