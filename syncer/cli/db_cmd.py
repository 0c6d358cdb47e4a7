"""``syncer db upgrade|check|prune``: the state database schema and its retention."""

from __future__ import annotations

from pathlib import Path

import typer

from ..state import db, retention_ops
from .common import EXIT_CANNOT_START, ConfigOption, clean_errors, fail, load, open_store


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="State database schema and retention.", no_args_is_help=True)

    @db_app.command("upgrade")
    @clean_errors
    def upgrade(config: Path | None = ConfigOption) -> None:
        """Create or migrate the state database to the newest schema."""
        store = open_store(load(config), migrate=True, create=True)
        typer.echo(f"state database at schema revision {db.current_revision(store.engine)}")
        store.close()

    @db_app.command("check")
    @clean_errors
    def check(config: Path | None = ConfigOption) -> None:
        """Exit 0 when the schema is current, 3 otherwise."""
        store = open_store(load(config), migrate=False)
        current = db.current_revision(store.engine)
        store.close()
        if current != db.head_revision():
            fail(
                f"schema at {current!r}, code expects {db.head_revision()!r}: "
                "run syncer db upgrade",
                EXIT_CANNOT_START,
            )
        typer.echo(f"schema current ({current})")

    @db_app.command("prune")
    @clean_errors
    def prune(config: Path | None = ConfigOption) -> None:
        """Scrub acknowledged erasures and delete what the retention settings no longer keep
        (done deliveries, inbox rows, delivery log); what `syncer run` does every
        retention.interval. Safe while syncer runs."""
        cfg = load(config)
        store = open_store(cfg)
        try:
            r = cfg.retention
            result = retention_ops.prune(
                store,
                done_deliveries_days=r.done_deliveries_days,
                inbox_days=r.inbox_days,
                delivery_log_days=r.delivery_log_days,
            )
        finally:
            store.close()
        typer.echo(
            f"scrubbed {result.scrubbed} erasures; deleted {result.done_deliveries} done "
            f"deliveries, {result.inbox} inbox rows, {result.delivery_log} delivery log rows"
        )

    app.add_typer(db_app, name="db")
