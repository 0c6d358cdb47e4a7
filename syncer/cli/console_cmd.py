"""``syncer console``: the web console, standalone, against a state database (a stopped
daemon's, or a read-only replica's). ``syncer run`` can serve the same app."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import EXIT_CONFIG, ConfigOption, clean_errors, fail, load, open_store

__all__ = ["register"]


@clean_errors
def console(
    config: Path | None = ConfigOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8470, "--port", help="Port (0: a free one)."),
) -> None:
    """Serve the web console (loopback only unless console.token is configured)."""
    import ipaddress
    import socket

    import uvicorn

    from ..console import ConsoleSettings, console_app
    from ..logs import get_logger

    cfg = load(config)
    settings = ConsoleSettings.from_config(cfg)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not settings.token:
        fail(
            f"error: --host {host} is not a loopback address: configure console.token "
            "(e.g. ${SYNCER_CONSOLE_TOKEN}) first; without it only loopback clients are answered",
            EXIT_CONFIG,
        )
    if not 0 <= port <= 65535:
        fail(f"error: --port {port}: must be 0..65535", EXIT_CONFIG)
    store = open_store(cfg, migrate=False)
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            fail(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", 3)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"console serving on http://{shown}:{bound}/", err=True)
        get_logger(component="console").info("console started", host=host, port=bound)
        server = uvicorn.Server(
            uvicorn.Config(
                console_app(store, cfg, settings),
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        server.run(sockets=[sock])
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.command("console")(console)
