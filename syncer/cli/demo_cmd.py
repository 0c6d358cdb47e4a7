"""``syncer demo``: sandbox + two-source config + backfill + churn + sync + status, summarised."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import clean_errors, fail

__all__ = ["demo", "register"]


def demo(
    customers: int = typer.Option(
        2000, "--customers", min=1, help="Customers to generate, shared out between the sources."
    ),
    events: int | None = typer.Option(
        None, "--events", min=0, help="Events to generate (default: two per customer)."
    ),
    seed: int = typer.Option(
        1, "--seed", help="Seed of the data and churn (next sources: seed+1, ...): same data."
    ),
    churn: int | None = typer.Option(
        None, "--churn", min=0, help="Churn operations between the syncs (default: customers/10)."
    ),
    keep: Path | None = typer.Option(
        None, "--keep", help="Keep config, state database and summary.json in this directory."
    ),
    example: Path | None = typer.Option(
        None,
        "--example",
        help="Config whose sources and pipelines to use (default: config/two-brands.yaml).",
    ),
    serve: bool = typer.Option(
        False, "--serve", help="Keep the sandbox running after the summary (for `syncer run`)."
    ),
    churn_every: float = typer.Option(
        0.0, "--churn-every", min=0.0, help="With --serve: churn a little every N seconds."
    ),
) -> None:
    """Start the sandbox (serving the example's sources), write a config for it, backfill,
    churn, sync and summarise, per pipeline and per source."""
    from ..demo import DemoOptions, run_demo
    from ..demo.workspace import DEMO_CONFIG

    source = example or DEMO_CONFIG
    if not source.is_file():
        fail(f"example config not found: {source} (pass --example PATH)", 2)
    opts = DemoOptions(
        customers=customers,
        events=events,
        seed=seed,
        churn=churn,
        keep=keep,
        example=source,
        serve=serve,
        churn_every=churn_every,
    )
    code = run_demo(opts)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    app.command("demo")(clean_errors(demo))
