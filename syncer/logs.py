"""Logging: structlog on stderr (stdout is for a command's own output), in one of two formats:
readable lines (coloured on a TTY), or JSON lines. ``--log-json``/``--log-console`` choose;
otherwise one-shot commands write readable lines everywhere (a user piping ``sync --once 2>&1``
gets no JSON mixed into its summary), and ``syncer run`` writes JSON when stderr is not a TTY
(a service's log goes to an aggregator): see :func:`prefer_json`.

Records that did not make it are not logged one line each (a first sync can reject thousands):
:class:`RecordProblems` counts them per pipeline and reason and logs one line per group with
the count and an example id; the per-record lines are at debug level, and ``syncer dlq list``
has every detail.

Every event passes :class:`Redactor` last-but-one, which replaces each known secret value (from
the config: tokens, passwords, API keys, and their Basic-auth base64 forms) wherever it appears,
in any field, nested or not, with ``***``. Secrets are registered with :func:`add_secrets` as soon
as the config is loaded.
"""

from __future__ import annotations

import base64
import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
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


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was set up: a
    redirected or replaced stderr (a test runner's capture, a daemon thread started later)
    never leaves logging holding a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        try:
            return sys.stderr.isatty()
        except ValueError:  # closed
            return False


_state: dict[str, Any] = {"level": None, "json": None, "stream": None}


def configure(level: str = "info", *, json: bool | None = None, stream: Any = None) -> None:
    """Set up structlog once per process; ``json=None``: readable lines (see the module
    docstring; :func:`prefer_json` may switch a service to JSON)."""
    stream = stream or _CurrentStderr()
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; use debug, info, warning or error")
    _state.update(level=numeric, json=json, stream=stream)
    _apply(numeric, bool(json), stream)


def prefer_json() -> None:
    """A service (``syncer run``): JSON lines when stderr is not a TTY, unless the user chose."""
    stream = _state["stream"]
    if _state["level"] is None or _state["json"] is not None or stream.isatty():
        return
    _apply(_state["level"], True, stream)


class _StdlibBridge(logging.Handler):
    """Records of libraries that log with :mod:`logging` (APScheduler's "job skipped", say)
    go through structlog: the same format (JSON for a service) and the redactor, instead of
    Python's last-resort handler printing them raw among the JSON lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format arguments: keep the template
            message = str(record.msg)
        structlog.get_logger().log(record.levelno, message, logger=record.name)


def _bridge_stdlib() -> None:
    root = logging.getLogger()
    if not any(isinstance(h, _StdlibBridge) for h in root.handlers):
        root.addHandler(_StdlibBridge())


def _apply(numeric: int, use_json: bool, stream: Any) -> None:
    _bridge_stdlib()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
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


_QUOTED = re.compile(r"'[^']*'")
_NUMBER = re.compile(r"(?<![\w'])\+?\d{6,}(?![\w'])")  # a phone number, an id: record-specific


def mask_values(reason: str) -> str:
    """``reason`` with its record-specific values masked (quoted values but the first, usually
    the field name; long numbers), so the same problem on many records is one group."""
    seen = [0]

    def mask(match: re.Match[str]) -> str:
        seen[0] += 1
        return match.group(0) if seen[0] == 1 else "'…'"

    return _NUMBER.sub("…", _QUOTED.sub(mask, reason))


@dataclass
class _Group:
    count: int
    example_id: str
    example_delivery: int
    example_error: str


_PROBLEM_LINES = {"dead": "records dead", "invalid": "records invalid"}


class RecordProblems:
    """Records that ended dead (or will be retried) since the last :meth:`flush`, counted per
    (state, pipeline, masked reason), with the first record of each group as the example."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str, str], _Group] = {}
        self._lock = threading.Lock()

    def add(self, state: str, pipeline: str, error: str, entity_id: str, delivery_id: int) -> None:
        key = (state, pipeline, mask_values(error))
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                self._groups[key] = _Group(1, entity_id, delivery_id, error)
            else:
                group.count += 1

    def flush(self, log: Any) -> int:
        """One line per group (warning for dead records, info for retries); the lines logged."""
        with self._lock:
            groups, self._groups = self._groups, {}
        for (state, pipeline, reason), g in sorted(groups.items()):
            # one vocabulary: "invalid" = rejected before sending, "dead" = refused by the target
            dead = state in ("dead", "invalid")
            log.log(
                logging.WARNING if dead else logging.INFO,
                _PROBLEM_LINES.get(state, "records will be retried"),
                pipeline=pipeline,
                reason=reason,
                count=g.count,
                example_contacthub_id=g.example_id,
                example_delivery_id=g.example_delivery,
                example_error=g.example_error,
                details=f"syncer dlq list --pipeline {pipeline}" if dead else None,
            )
        return len(groups)


def get_logger(**bound: Any) -> Any:
    """A logger with ``bound`` context that follows the configuration of the moment it logs:
    one bound earlier (at import, in a constructor) renders JSON after :func:`prefer_json`
    too (``.bind()`` would freeze the renderer of the moment it is called)."""
    return structlog.get_logger(**bound)
