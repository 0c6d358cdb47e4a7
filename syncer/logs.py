"""Logging: structlog, JSON lines when stderr is not a TTY, readable console output when it is.

Every event passes :class:`Redactor` last-but-one, which replaces each known secret value (from
the config: tokens, passwords, API keys, and their Basic-auth base64 forms) wherever it appears,
in any field, nested or not, with ``***``. Secrets are registered with :func:`add_secrets` as soon
as the config is loaded.
"""

from __future__ import annotations

import base64
import logging
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

REDACTED = "***"


class Redactor:
    """A structlog processor removing registered secret values from every event."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            for value in values:
                if value and len(value) >= 4:
                    self._secrets.add(value)

    def redact_text(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._walk(v) for v in value)
        if isinstance(value, BaseException):
            return self.redact_text(f"{type(value).__name__}: {value}")
        return value

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event_dict
        return {k: self._walk(v) for k, v in event_dict.items()}


redactor = Redactor()


def add_secrets(values: Iterable[str]) -> None:
    """Register secret values (and derived Basic-auth forms) to redact from every log line."""
    values = [v for v in values if v]
    derived = [base64.b64encode(v.encode()).decode() for v in values]
    redactor.add([*values, *derived])


def add_basic_auth_secret(username: str, password: str) -> None:
    """The base64 ``user:password`` a Basic-auth header carries is a secret too."""
    redactor.add([base64.b64encode(f"{username}:{password}".encode()).decode()])


def configure(level: str = "info", *, json: bool | None = None, stream: Any = None) -> None:
    """Set up structlog once per process; ``json=None`` picks JSON unless stderr is a TTY."""
    stream = stream or sys.stderr
    use_json = (not stream.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; use debug, info, warning or error")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound)
