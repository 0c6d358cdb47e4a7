"""Helpers every CLI command shares: loading the config, opening the store, clean failures.

Exit codes (documented in docs/operations.md):

====  =====================================================================
0     success
1     the run finished but records failed or ended dead (see ``syncer dlq list``)
2     bad config or bad command line
3     cannot go on until the operator acts: state database unusable or missing, lease
      held, credentials refused, a request refused as sent (Contacthub 400)
4     a service did not answer (Contacthub or a target unreachable, gave up retrying):
      nothing was lost, run again later
5     internal error (a bug): ``SYNCER_DEBUG=1`` prints the traceback
====  =====================================================================

No command ends with a traceback: :func:`describe_error` turns any exception into one line
and one of these codes (:func:`clean_errors` per command, :func:`run_main` around them all).
"""

from __future__ import annotations

import difflib
import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from ..errors import PermanentError, RetryableError, StateError, StopError
from ..logs import add_secrets, redactor

if TYPE_CHECKING:
    from ..config.models import SyncerConfig
    from ..state.store import Store

EXIT_OK = 0
EXIT_FAILED_RECORDS = 1
EXIT_CONFIG = 2
EXIT_CANNOT_START = 3
EXIT_UNREACHABLE = 4
EXIT_INTERNAL = 5
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, the shell convention)

DEBUG_ENV = "SYNCER_DEBUG"

ConfigOption = typer.Option(
    None, "--config", "-c", envvar="SYNCER_CONFIG", help="Config file (or SYNCER_CONFIG)."
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int) -> NoReturn:
    typer.echo(redactor.redact_text(message), err=True)
    raise typer.Exit(code)


def load(config: Path | str | None) -> SyncerConfig:
    """The config from ``--config`` / ``$SYNCER_CONFIG``, its secrets registered with the log
    redactor at once (every ``SecretStr`` and the password of ``state.url``), before anything
    can log or fail with them."""
    from ..config.loader import load_config, resolve_config_path
    from ..config.secrets import secret_values

    cfg = load_config(resolve_config_path(str(config) if config else None))
    add_secrets(secret_values(cfg))
    return cfg


def refuse_missing_database(cfg: SyncerConfig) -> None:
    """A :class:`StateError` when ``state.url`` names a SQLite file that does not exist (in
    a folder that does: a missing folder is reported by the store, which creates nothing)."""
    from sqlalchemy.engine import make_url

    from ..state.db import is_sqlite

    if not is_sqlite(cfg.state.url):
        return
    database = Path(make_url(cfg.state.url).database or "")
    if database.parent.is_dir() and not database.exists():
        raise StateError(
            f"no state database at {database} (state.url; a relative path is relative to "
            "the config file's folder): create it with `syncer db upgrade` or a first "
            "`syncer backfill`, or fix state.url"
        )


def open_store(cfg: SyncerConfig, *, migrate: bool = True, create: bool = False) -> Store:
    """The state store of ``cfg``; a database that cannot be opened is a :class:`StateError`
    naming ``state.url`` with its password hidden (host, port, database and user shown).

    Only ``create`` (``db upgrade``, ``backfill``, ``sync``, ``run``) may start a new SQLite
    file: a command that only reads or fixes state, pointed at the wrong file, would create
    an empty database and report nothing, or let a later ``sync`` replay everything."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..state.db import is_sqlite, redacted_url
    from ..state.store import Store

    if not create:
        refuse_missing_database(cfg)
    where = f"state.url {redacted_url(cfg.state.url)}"
    try:
        return Store(cfg.state.url, migrate=migrate)
    except StateError as exc:
        if is_sqlite(cfg.state.url):
            raise  # the message already names the database file, and a file has no password
        raise StateError(f"{exc} ({where})") from None
    except SQLAlchemyError as exc:
        raise StateError(f"cannot use the state database ({where}): {db_error(exc)}") from None


def check_pipeline(cfg: SyncerConfig, name: str | None, also_known: Iterable[str] = ()) -> None:
    """Refuse (exit 2) a ``--pipeline`` name that is neither in the config nor in
    ``also_known`` (e.g. a pipeline removed from the config whose rows are still stored)."""
    if name is None:
        return
    names = [p.name for p in cfg.pipelines]
    known = list(dict.fromkeys([*names, *also_known]))
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    fail(f"unknown pipeline {name!r} (known: {', '.join(names) or 'none'}){hint}", EXIT_CONFIG)


def db_error(exc: BaseException) -> str:
    """The first line of a database error: the driver's message, never the SQL statement,
    its parameters or the connection parameters."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def describe_error(exc: BaseException) -> tuple[int, str]:
    """The exit code and the message (one line, but a config error has one per problem)
    for an exception that ends a command; secrets are removed later, by :func:`fail`."""
    import httpx
    from sqlalchemy.exc import SQLAlchemyError

    from ..config.loader import ConfigError

    if isinstance(exc, ConfigError):
        return EXIT_CONFIG, str(exc)
    if isinstance(exc, StopError):
        return EXIT_CANNOT_START, f"error: {_one_line(exc)}"
    if isinstance(exc, SQLAlchemyError):
        return EXIT_CANNOT_START, f"error: state database (state.url): {db_error(exc)}"
    if isinstance(exc, RetryableError | httpx.TransportError):
        where = (
            "check source.base_url and the network"
            if "contacthub" in str(exc).lower()
            else "check the service's base_url and the network"
        )
        return (
            EXIT_UNREACHABLE,
            f"error: {_one_line(exc)}; nothing was lost: {where}, then run the command again",
        )
    if isinstance(exc, PermanentError):
        return (
            EXIT_CANNOT_START,
            f"error: {_one_line(exc)}; the request was refused as sent, so retrying cannot "
            "help: fix its cause in the config (e.g. a pipeline's event_types) and run again",
        )
    if isinstance(exc, OSError):
        return EXIT_CANNOT_START, f"error: {_one_line(exc)}"
    return (
        EXIT_INTERNAL,
        f"internal error: {type(exc).__name__}: {_one_line(exc)} (a bug in syncer; run again "
        f"with {DEBUG_ENV}=1 for the traceback and report it)",
    )


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def fail_for(exc: BaseException) -> NoReturn:
    """End the command for ``exc``: the traceback first when ``SYNCER_DEBUG=1``, then the
    one-line message and the exit code of :func:`describe_error`."""
    if debug_enabled():
        text = "".join(traceback.format_exception(exc))
        sys.stderr.write(redactor.redact_text(text))
    code, message = describe_error(exc)
    fail(message, code)


def _is_click_control(exc: BaseException) -> bool:
    """typer's own exits and usage errors: they carry their code and message already."""
    from typer.exceptions import TyperException

    return isinstance(exc, typer.Exit | typer.Abort | TyperException)


def clean_errors(func: F) -> F:
    """Turn every error into one clear line on stderr and an exit code, no traceback
    (:func:`describe_error`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if _is_click_control(exc):
                raise
            fail_for(exc)

    return wrapper  # type: ignore[return-value]


def run_main(app: Callable[[], Any]) -> None:
    """Run the CLI; whatever escapes a command (one without :func:`clean_errors`, or the
    code around the commands) still ends in one line and a documented exit code."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        try:
            fail_for(exc)
        except typer.Exit as done:
            sys.exit(done.exit_code)
