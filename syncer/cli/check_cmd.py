"""``syncer check``: can syncer reach and use the source and every target (read-only).

``syncer probe`` (which reading of each doc-silent behaviour the APIs have) is in
:mod:`.probe_cmd`; :func:`register` adds both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer

from .common import (
    EXIT_CONFIG,
    ConfigOption,
    clean_errors,
    fail,
    load,
)

__all__ = ["check_all", "register"]


def check_all(cfg: Any, only: str | None = None) -> list[tuple[str, int, str]]:
    """``(name, exit code, message)`` per checked API: the source's last stream offset, each
    target's own start-up check (credentials, account, and for NP6 the unicity field)."""
    from .common import EXIT_OK, describe_error
    from .sync_cmd import source_client

    results: list[tuple[str, int, str]] = []

    def one(name: str, call: Callable[[], str]) -> None:
        try:
            results.append((name, EXIT_OK, call()))
        except Exception as exc:  # every failure is one line with its exit code
            code, message = describe_error(exc)
            results.append((name, code, message.removeprefix("error: ")))

    if only in (None, "contacthub"):

        def source() -> str:
            client = source_client(cfg)
            try:
                return f"ok: stream at offset {client.last_offset()}"
            finally:
                client.http.close()

        one("contacthub", source)
    from ..targets.registry import build_target

    for name, tcfg in cfg.targets.items():
        if only not in (None, name):
            continue

        def target(name: str = name, tcfg: Any = tcfg) -> str:
            built = build_target(name, tcfg)
            try:
                built.check()
            finally:
                built.close()
            return f"ok: {tcfg.type} answers and accepts the credentials"

        one(name, target)
    return results


@clean_errors
def check(
    config: str | None = ConfigOption,
    target: str | None = typer.Option(
        None, "--target", help="Check only this target (or 'contacthub' for the source)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Read-only connection test of the source and every target, one line each (exit 3 on a
    refusal, 4 when one does not answer)."""
    cfg = load(config)
    if target is not None and target != "contacthub" and target not in cfg.targets:
        known = ", ".join(["contacthub", *cfg.targets])
        fail(f"unknown target {target!r}; known: {known}", EXIT_CONFIG)
    results = check_all(cfg, target)
    if as_json:
        rows = [{"name": n, "exit": c, "message": m} for n, c, m in results]
        typer.echo(json.dumps(rows, indent=2))
    else:
        width = max(len(n) for n, _, _ in results)
        for name, _, message in results:
            typer.echo(f"{name:<{width}}  {message}")
    worst = max(code for _, code, _ in results)
    if worst:
        raise typer.Exit(worst)


def register(app: typer.Typer) -> None:
    """Add the ``check`` and ``probe`` commands to ``app``."""
    from . import probe_cmd

    app.command("check")(check)
    probe_cmd.register(app)
