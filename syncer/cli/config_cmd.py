"""CLI commands about the config file: ``syncer validate`` and ``syncer config schema``."""

from __future__ import annotations

import json

import typer

from syncer.cli.common import EXIT_CONFIG, ConfigOption
from syncer.config import ConfigError, SyncerConfig, load_config, resolve_config_path

__all__ = ["register"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def validate(
    config: str | None = ConfigOption,
    offline: bool = typer.Option(
        False,
        "--offline",
        help="Check everything but the credentials' values, which need not be set (for CI).",
    ),
    online: bool = typer.Option(
        False,
        "--online",
        help="Also check event types, fields and consents against the Contacthub workspace.",
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Check a config file and report every problem with its key path (exit 2 if any)."""
    try:
        path = resolve_config_path(config)
        cfg = load_config(path, offline=offline)
    except ConfigError as exc:
        if as_json:
            typer.echo(json.dumps({"ok": False, "problems": exc.lines()}, indent=2))
        for line in exc.lines():
            typer.echo(line, err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    problems: list[str] = []
    if online and not offline:
        problems = _online(cfg)
    if as_json:
        doc = {
            "ok": not problems,
            "config": str(path),
            "sources": len(cfg.sources),
            "targets": len(cfg.targets),
            "pipelines": len(cfg.pipelines),
            "offline": offline,
            "online": online and not offline,
            "problems": problems,
        }
        typer.echo(json.dumps(doc, indent=2))
        if problems:
            raise typer.Exit(EXIT_CONFIG)
        return
    if problems:
        for line in problems:
            typer.echo(f"{path}: {line}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    sources = _plural(len(cfg.sources), "source")
    targets = _plural(len(cfg.targets), "target")
    pipelines = _plural(len(cfg.pipelines), "pipeline")
    note = " (offline: credentials' values not checked)" if offline else ""
    if online and not offline:
        note = " (online: checked against the Contacthub workspace)"
    typer.echo(f"OK: {path}: {sources}, {pipelines}, {targets}{note}")


def _online(cfg: SyncerConfig) -> list[str]:
    """The problems :func:`online_problems` finds; Contacthub failing is one line + exit."""
    from .common import fail_for
    from .discover_cmd import discover_workspace, online_problems

    try:
        # each source's workspace checks that source's nodes and pipelines
        return [
            problem
            for name in cfg.sources
            for problem in online_problems(cfg, discover_workspace(cfg, name))
        ]
    except Exception as exc:
        fail_for(exc)


def config_schema() -> dict[str, object]:
    """The JSON Schema of the config file (for editors: yaml-language-server, IDEs)."""
    schema: dict[str, object] = {"$schema": JSON_SCHEMA_DIALECT}
    schema.update(SyncerConfig.model_json_schema(by_alias=True))
    return schema


def schema() -> None:
    """Print the JSON Schema of the config file."""
    typer.echo(json.dumps(config_schema(), indent=2))


def register(app: typer.Typer) -> None:
    """Add ``validate`` and the ``config`` group (``config schema``) to ``app``."""
    app.command("validate")(validate)
    config_app = typer.Typer(help="Config file tools.", no_args_is_help=True)
    config_app.command("schema")(schema)
    app.add_typer(config_app, name="config")
