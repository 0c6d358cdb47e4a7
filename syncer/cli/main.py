"""The ``syncer`` command line (typer). The outermost layer: nothing imports it."""

from __future__ import annotations

import typer

from .. import __version__, logs, runtime

app = typer.Typer(
    name="syncer",
    help="Sync Contacthub customers and events to 360NRS, Octopush and NP6.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    log_json: bool = typer.Option(
        None,
        "--log-json/--log-console",
        help="Log format on stderr. Default: readable lines; JSON for `syncer run` off a TTY.",
    ),
) -> None:
    runtime.tune_gc()
    try:
        logs.configure(log_level, json=log_json)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-level") from None


@app.command()
def version() -> None:
    """Print the syncer version."""
    typer.echo(__version__)


def _register_commands() -> None:
    from . import (
        check_cmd,
        config_cmd,
        console_cmd,
        db_cmd,
        demo_cmd,
        discover_cmd,
        dlq_cmd,
        erasures_cmd,
        sandbox_cmd,
        sync_cmd,
    )

    for module in (
        config_cmd,
        db_cmd,
        demo_cmd,
        dlq_cmd,
        sandbox_cmd,
        sync_cmd,
        console_cmd,
        erasures_cmd,
        check_cmd,
    ):
        module.register(app)
    discover_cmd.register(app)


_register_commands()


def main() -> None:
    from .common import run_main

    run_main(app)
