"""Helpers every CLI command shares: loading the config, opening the store, clean failures.

Exit codes (documented in docs/operations.md):

====  =====================================================================
0     success
1     the run finished but records failed or ended dead (see ``syncer dlq list``)
2     bad config or bad command line
3     cannot start: state database unusable, lease held, credentials refused
====  =====================================================================
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from ..errors import StateError, StopError
from ..logs import add_secrets, redactor

if TYPE_CHECKING:
    from ..config.models import SyncerConfig
    from ..state.store import Store

EXIT_OK = 0
EXIT_FAILED_RECORDS = 1
EXIT_CONFIG = 2
EXIT_CANNOT_START = 3

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


def open_store(cfg: SyncerConfig, *, migrate: bool = True) -> Store:
    """The state store of ``cfg``; a database that cannot be opened is a :class:`StateError`
    naming ``state.url`` with its password hidden (host, port, database and user shown)."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..state.db import is_sqlite, redacted_url
    from ..state.store import Store

    where = f"state.url {redacted_url(cfg.state.url)}"
    try:
        return Store(cfg.state.url, migrate=migrate)
    except StateError as exc:
        if is_sqlite(cfg.state.url):
            raise  # the message already names the database file, and a file has no password
        raise StateError(f"{exc} ({where})") from None
    except SQLAlchemyError as exc:
        raise StateError(f"cannot use the state database ({where}): {db_error(exc)}") from None


def db_error(exc: BaseException) -> str:
    """The first line of a database error: the driver's message, never the SQL statement,
    its parameters or the connection parameters."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def clean_errors(func: F) -> F:
    """Turn syncer's own errors into one clear line on stderr and an exit code, no traceback.
    A database error escaping a command (the server went away meanwhile) is one line too."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        from ..config.loader import ConfigError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EXIT_CONFIG)
        except StopError as exc:
            fail(f"error: {exc}", EXIT_CANNOT_START)
        except SQLAlchemyError as exc:
            fail(f"error: state database (state.url): {db_error(exc)}", EXIT_CANNOT_START)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
