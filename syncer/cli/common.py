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
from typing import Any, NoReturn, TypeVar

import typer

from ..errors import StopError
from ..logs import redactor

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


def clean_errors(func: F) -> F:
    """Turn syncer's own errors into one clear line on stderr and an exit code, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..config.loader import ConfigError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EXIT_CONFIG)
        except StopError as exc:
            fail(f"error: {exc}", EXIT_CANNOT_START)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
