"""``syncer erasures``: the erasure ledger, the receipt per target of each forgotten customer.

Each customer deleted in Contacthub is one erasure; per pipeline and target it shows when the
target acknowledged it (its ``on_delete``: delete, unsubscribe or list removal, done) or why not
yet (the ``delete`` delivery's state, attempts and last error). Read only.

Customers are shown and picked as the operator knows them: the plain Contacthub id and the
source (``--source NAME``); the state's namespaced id (``<source>:<id>``, plain in the source
named ``default``) is accepted too, and is the JSON's ``entity_id``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from ..config import SyncerConfig
from ..config.models import DEFAULT_SOURCE
from ..source.contacthub import id_prefix
from ..state import erasure_ops
from .common import EXIT_CONFIG, ConfigOption, clean_errors, fail, load, open_store

__all__ = ["register"]


def _stamp(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(at))


def _on_delete(cfg: SyncerConfig, pipeline: str) -> str | None:
    """The pipeline's ``on_delete`` (None: a pipeline no longer in the config)."""
    for p in cfg.pipelines:
        if p.name == pipeline:
            return p.on_delete
    return None


def split_id(entity_id: str) -> tuple[str, str]:
    """(source, plain Contacthub id) of a state id: ``<source>:<id>``, or a plain id of the
    source named ``default`` (the same rule as ``dlq_ops.of_source``)."""
    head, sep, rest = entity_id.partition(":")
    return (head, rest) if sep else (DEFAULT_SOURCE, entity_id)


def _default_source(cfg: SyncerConfig) -> str | None:
    """The source a plain id belongs to without ``--source``: the only one, else the one
    named ``default``; None when that is ambiguous."""
    if len(cfg.sources) == 1:
        return next(iter(cfg.sources))
    return DEFAULT_SOURCE if DEFAULT_SOURCE in cfg.sources else None


def resolve_customer(cfg: SyncerConfig, customer: str, source: str | None) -> tuple[str, str]:
    """(source, plain id) of ``--customer`` (a plain Contacthub id, or a namespaced
    ``<source>:<id>``) and ``--source``; a bad combination ends with one line (exit 2)."""
    from ..source.sources import check_source_name

    check_source_name(cfg, source)
    customer = customer.strip()
    head, sep, rest = customer.partition(":")
    named = sep and head in cfg.sources and head != DEFAULT_SOURCE
    if named:
        if source is not None and source != head:
            fail(
                f"--customer {customer!r} is of source {head!r}, not --source {source!r}: "
                "pass the plain Contacthub id with --source, or the namespaced id alone",
                EXIT_CONFIG,
            )
        source, customer = head, rest
    if source is None:
        source = _default_source(cfg)
        if source is None:
            fail(
                f"several sources are configured: pass --source ({', '.join(cfg.sources)}) "
                f"with the Contacthub id {customer!r}, or the namespaced id <source>:<id>",
                EXIT_CONFIG,
            )
    if not customer:
        fail("--customer needs a Contacthub customer id", EXIT_CONFIG)
    return source, customer


def _as_json(cfg: SyncerConfig, r: erasure_ops.ErasureRecord) -> dict[str, Any]:
    source, plain = split_id(r.entity_id)
    return {
        "customer_id": plain,
        "source": source,
        "entity_id": r.entity_id,
        "reason": r.reason,
        "requested_at": r.requested_at,
        "state": r.state,
        "pending": r.pending,
        "acknowledged_at": r.acknowledged_at,
        "scrubbed_at": r.scrubbed_at,
        "compacted_at": r.compacted_at,
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
    customer: str | None = typer.Option(
        None,
        "--customer",
        help="Only this customer: its Contacthub id (of --source), or <source>:<id>.",
    ),
    source: str | None = typer.Option(
        None,
        "--source",
        help="Only this source's customers (a key of 'sources'); with --customer: its source "
        "(default: the only source, or the one named 'default').",
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many, newest first."),
) -> None:
    """List erasures (customers deleted in Contacthub), newest first, with per target when
    the delete was acknowledged or why not yet."""
    from ..source.sources import check_source_name

    cfg = load(config)
    check_source_name(cfg, source)
    ids: list[str] | None = None
    wanted: tuple[str, str] | None = None
    if customer is not None:
        wanted = resolve_customer(cfg, customer, source)
        ids = [id_prefix(wanted[0]) + wanted[1]]
        source = None  # the id says it all
    store = open_store(cfg)
    try:
        with store.reader() as conn:
            records = erasure_ops.ledger(
                conn, pending_only=pending, limit=limit, ids=ids, source=source
            )
            count, oldest = erasure_ops.pending_summary(conn, source)
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
        what = "no pending erasures" if pending else "no erasures"
        if wanted is not None:
            what += f" of customer {wanted[1]} (source {wanted[0]})"
        elif source is not None:
            what += f" of source {source}"
        typer.echo(what)
        return
    for r in records:
        status = {
            "pending": "pending",
            "dead": "dead: a target gave up (syncer dlq list, then syncer dlq retry)",
            "acknowledged": f"acknowledged {_stamp(r.acknowledged_at)}  not scrubbed yet",
            "scrubbed": f"acknowledged {_stamp(r.acknowledged_at)}  "
            f"scrubbed {_stamp(r.scrubbed_at)}",
        }[r.state]
        of, plain = split_id(r.entity_id)
        typer.echo(f"{plain}  source {of}  requested {_stamp(r.requested_at)}  {status}")
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
    of_source = f" of source {source}" if source is not None else ""
    typer.echo(f"{len(records)} erasures shown; {count} pending{of_source}")


def register(app: typer.Typer) -> None:
    """Add ``erasures`` to ``app``."""
    app.command("erasures")(erasures)
