"""``syncer dlq list|retry`` (the dead-letter store) and ``syncer plan`` (dry run).

``plan`` classifies every open delivery with the same code as the real run
(:func:`syncer.engine.planner.plan_pending`) and writes nothing; it makes no target call.
"""

from __future__ import annotations

import difflib
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import typer
from sqlalchemy import Connection

from ..config import SyncerConfig
from ..engine.planner import PLAN_KINDS, plan_pending
from ..logs import mask_values, redactor
from ..source.contacthub import id_prefix
from ..source.sources import check_source_name
from ..state import dlq_ops, ingest_ops
from ..state.store import Store
from .common import (
    EXIT_CONFIG,
    ConfigOption,
    check_pipeline,
    clean_errors,
    fail,
    load,
    open_store,
)
from .plan_checks import target_problems
from .status_view import invalid_ids

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


@dataclass
class _Group:
    pipeline: str
    target: str
    kind: str  # invalid (rejected before sending) or dead (refused by the target)
    reason: str
    count: int = 0
    example_id: int = 0
    example_entity_id: str = ""
    example_error: str = ""
    last_at: float = 0.0


def dead_groups(conn: Connection, pipeline: str | None, source: str | None = None) -> list[_Group]:
    """Every dead delivery (of ``source`` if given), grouped by pipeline, target, kind and
    reason (its record-specific values masked, as in the log lines), the largest group first;
    the example is the newest."""
    invalid = invalid_ids(conn, pipeline)
    prefix = id_prefix(source) if source is not None else None
    sql = (
        "SELECT id, pipeline, target, entity_id, updated_at, last_error FROM deliveries "
        "WHERE state = 'dead'"
    )
    params: tuple[str, ...] = ()
    if pipeline is not None:
        sql += " AND pipeline = ?"
        params = (pipeline,)
    sql += " ORDER BY updated_at DESC, id DESC"
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    groups: dict[tuple[str, str, str, str], _Group] = {}
    for id_, pipe, target, entity_id, at, error in conn.exec_driver_sql(sql, params):
        # Same rule as dlq_ops.of_source: ids are "<source>:<id>" except in "default".
        if prefix is not None and not (
            entity_id.startswith(prefix) if prefix else ":" not in entity_id
        ):
            continue
        kind = "invalid" if int(id_) in invalid else "dead"
        reason = mask_values(error or "no reason recorded")
        group = groups.get((pipe, target, kind, reason))
        if group is None:
            group = groups[(pipe, target, kind, reason)] = _Group(
                pipe, target, kind, reason, 0, int(id_), entity_id, error or "", float(at)
            )
        group.count += 1
    return sorted(groups.values(), key=lambda g: (-g.count, g.pipeline, g.reason))


@clean_errors
def dlq_list(
    config: Path | None = ConfigOption,
    pipeline: str | None = PipelineOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    every: bool = typer.Option(
        False, "--all", help="Every dead delivery (newest first), not only the groups."
    ),
    limit: int = typer.Option(
        1000, "--limit", min=1, help="With --all: at most this many rows (the total stays exact)."
    ),
    source: str | None = SourceOption,
) -> None:
    """Dead deliveries grouped by reason, with counts and an example (``--all``: each one).

    invalid = rejected before sending (mapping or the target's own rules); dead = refused by
    the target."""
    store, cfg = _store(config, pipeline, stored_too=True)
    try:
        check_source_name(cfg, source)
        with store.reader() as conn:
            groups = dead_groups(conn, pipeline, source)
            rows = dlq_ops.dlq_list(conn, pipeline, limit, source=source) if every else []
            invalid = invalid_ids(conn, pipeline) if every else set()
    finally:
        store.close()
    total = sum(g.count for g in groups)
    if as_json:
        doc: dict[str, object] = {
            "total": total,
            "invalid": sum(g.count for g in groups if g.kind == "invalid"),
            "dead": sum(g.count for g in groups if g.kind == "dead"),
            "groups": [asdict(g) for g in groups],
        }
        if every:
            doc["records"] = [_record(r, r.id in invalid) for r in rows]
        typer.echo(json.dumps(doc, indent=2))
        return
    if not total:
        typer.echo("no dead deliveries")
        return
    if every:
        for r in rows:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.updated_at))
            kind = "invalid" if r.id in invalid else "dead"
            typer.echo(
                f"{r.id:>8}  {stamp}Z  {r.pipeline}/{r.entity_id}  {r.action}  {kind}  "
                f"attempts={r.attempts}  {r.last_error or ''}"
            )
        shown = f" ({len(rows)} shown, --limit {limit})" if len(rows) < total else ""
        typer.echo(f"{total} dead deliveries{shown}")
    else:
        typer.echo(f"{'count':>7}  {'kind':<8} {'pipeline -> target':<28} reason (example)")
        for g in groups:
            where = f"{g.pipeline} -> {g.target}"
            typer.echo(
                f"{g.count:>7}  {g.kind:<8} {where:<28} {g.reason} "
                f"(e.g. #{g.example_id} {g.example_entity_id})"
            )
        typer.echo(f"{total} dead deliveries in {len(groups)} groups; each one: --all")
    typer.echo("retry with: syncer dlq retry [--pipeline P] [--id N]")


def _record(r: dlq_ops.DeadRow, invalid: bool) -> dict[str, object]:
    return {
        "id": r.id,
        "pipeline": r.pipeline,
        "target": r.target,
        "entity_type": r.entity_type,
        "entity_id": r.entity_id,
        "action": r.action,
        "kind": "invalid" if invalid else "dead",
        "attempts": r.attempts,
        "updated_at": r.updated_at,
        "error": r.last_error,
    }


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


def check_target(cfg: SyncerConfig, name: str | None) -> None:
    """Refuse (exit 2) a ``--target`` the config does not define."""
    if name is None or name in cfg.targets:
        return
    known = sorted(cfg.targets)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    fail(f"unknown target {name!r} (known: {', '.join(known) or 'none'}){hint}", EXIT_CONFIG)


COPY_BATCH = 2000  # rows per insert when the state is copied from PostgreSQL


def _copy_sqlite(store: Store, copy_path: Path) -> Store:
    """A copy of a SQLite state database (the online backup API: consistent while a
    daemon writes)."""
    import sqlite3

    source = store.engine.raw_connection()
    try:
        target = sqlite3.connect(copy_path)
        try:
            source.driver_connection.backup(target)  # type: ignore[union-attr]
        finally:
            target.close()
    finally:
        source.close()
    return Store(f"sqlite:///{copy_path}", migrate=False)


def _copy_postgres(store: Store, copy_path: Path) -> Store:
    """A SQLite copy of a PostgreSQL state database: the same schema (the migrations), then
    every table's rows read in one read-only REPEATABLE READ transaction (one consistent
    snapshot while a daemon writes; nothing is written to PostgreSQL). The schema's types
    are portable (schema.py), so the rows go across as they are."""
    from sqlalchemy import delete, insert, select

    from ..state.schema import metadata

    preview = Store(f"sqlite:///{copy_path}", migrate=True)
    try:
        with (
            store.engine.connect().execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            ) as source,
            source.begin(),
            preview.transaction() as target,
        ):
            for table in metadata.sorted_tables:
                target.execute(delete(table))  # rows the migrations wrote (search_cursor)
                rows = source.execution_options(yield_per=COPY_BATCH).execute(select(table))
                for batch in rows.mappings().partitions(COPY_BATCH):
                    target.execute(insert(table), [dict(r) for r in batch])
    except BaseException:
        preview.close()
        raise
    return preview


@contextmanager
def _preview_store(cfg: SyncerConfig, store: Store) -> Iterator[tuple[Store, int]]:
    """A throwaway SQLite copy of the state database (SQLite or PostgreSQL) with the pending
    stream updates ingested into it (the real database and offset are untouched; nothing is
    delivered); and how many updates were read."""
    import tempfile

    from ..engine.apply import Applier, rules_from_config
    from ..engine.ingest import Ingestor
    from ..source.sources import source_clients

    with tempfile.TemporaryDirectory(prefix="syncer-plan-") as folder:
        copy_path = Path(folder) / "preview.db"
        copy = _copy_sqlite if store.is_sqlite else _copy_postgres
        preview = copy(store, copy_path)
        clients = source_clients(cfg)
        try:
            updates = 0
            for client in clients:  # every source node's stream, each with its own rules
                ingestor = Ingestor(
                    preview,
                    client,
                    Applier(rules_from_config(cfg, client.source)),
                    page_size=cfg.sources[client.source].page_size,
                )
                updates += ingestor.run_to_end().updates
            yield preview, updates
        finally:
            for client in clients:
                client.http.close()
            preview.close()


@clean_errors
def plan(
    config: Path | None = ConfigOption,
    pipeline: str | None = PipelineOption,
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target."),
    from_stream: bool = typer.Option(
        False,
        "--from-stream",
        help="Also preview the stream's pending updates (read, not ingested: the offset stays).",
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Classify queued deliveries (create, update, unchanged, leave, delete, join/leave group,
    invalid) as a run would, the target's own validation included, without sending or
    writing anything (NP6's schema is read to check its unicity field)."""
    cfg = load(config)
    check_pipeline(cfg, pipeline)
    check_target(cfg, target)
    store = open_store(cfg)
    streamed: int | None = None
    try:
        if from_stream:
            with _preview_store(cfg, store) as (preview, streamed):
                planned = plan_pending(preview, cfg, pipeline)
        else:
            planned = plan_pending(store, cfg, pipeline)
    finally:
        store.close()
    planned = [p for p in planned if target in (None, p.row.target)]
    problems, unchecked = target_problems(cfg, planned)
    by_pipeline: dict[str, Counter[str]] = {}
    invalid: list[dict[str, object]] = []
    for p in planned:
        counts = by_pipeline.setdefault(p.row.pipeline, Counter())
        kind, error = p.kind, p.error
        if p.row.id in problems:
            kind, error = "invalid", problems[p.row.id]
        counts[kind] += 1
        if kind != "invalid":
            counts["join group"] += bool(p.joins)
            counts["leave group"] += bool(p.leaves)
        if kind == "invalid":
            invalid.append(
                {
                    "id": p.row.id,
                    "pipeline": p.row.pipeline,
                    "target": p.row.target,
                    "entity_id": p.row.entity_id,
                    "error": error,
                    "by": "target" if p.row.id in problems else "mapping",
                }
            )
    columns = [*PLAN_KINDS, "join group", "leave group"]
    if as_json:
        doc = {
            "from_stream": streamed,
            "pipelines": {name: {k: c[k] for k in columns} for name, c in by_pipeline.items()},
            "invalid": invalid,
            "unchecked_targets": unchecked,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    if streamed is not None:
        typer.echo(f"{streamed} stream updates previewed (not ingested; the offset stays)")
    for name, why in sorted(unchecked.items()):
        line = f"warning: target {name} not checked (schema unreadable): {why}"
        typer.echo(redactor.redact_text(line), err=True)
    if not planned:
        typer.echo("nothing queued")
        return
    typer.echo("pipeline".ljust(20) + "".join(k.rjust(12) for k in columns))
    for name, counts in sorted(by_pipeline.items()):
        typer.echo(name.ljust(20) + "".join(str(counts[k]).rjust(12) for k in columns))
    for item in invalid[:20]:
        typer.echo(f"invalid {item['pipeline']}/{item['entity_id']}: {item['error']}")
    if len(invalid) > 20:
        typer.echo(f"... {len(invalid) - 20} more invalid: see --json")


def register(app: typer.Typer) -> None:
    """Add ``dlq list``, ``dlq retry`` and ``plan`` to ``app``."""
    dlq_app = typer.Typer(help="The dead-letter store.", no_args_is_help=True)
    dlq_app.command("list")(dlq_list)
    dlq_app.command("retry")(dlq_retry)
    app.add_typer(dlq_app, name="dlq")
    app.command("plan")(plan)
