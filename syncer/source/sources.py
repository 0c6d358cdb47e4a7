"""The configured sources as clients: one :class:`ContacthubClient` per (source, entry node).

Each node of a source is its own update stream with its own checkpoint (offset, polling lease,
backfill); the source's name namespaces the ids of its customers and events in the state
(:func:`~syncer.source.contacthub.id_prefix`).
"""

from __future__ import annotations

import difflib
import threading

import httpx

from ..config.issues import ConfigError, ConfigIssue
from ..config.models import ContacthubSourceConfig, SyncerConfig
from .contacthub import ContacthubClient

__all__ = ["check_source_name", "source_clients"]


def _client(
    name: str, src: ContacthubSourceConfig, node: str, stop: threading.Event | None
) -> ContacthubClient:
    http = httpx.Client(
        base_url=src.base_url.rstrip("/"),
        timeout=src.timeout,
        headers={"Authorization": f"Bearer {src.token.get_secret_value()}"},
    )
    return ContacthubClient(http, src.workspace_id, node, stop=stop, source=name)


def check_source_name(cfg: SyncerConfig, name: str | None) -> None:
    """``--source NAME`` names a configured source; else a one-line error (exit 2) with a
    hint."""
    if name is None or name in cfg.sources:
        return
    close = difflib.get_close_matches(name, list(cfg.sources), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    known = ", ".join(cfg.sources)
    message = f"unknown source '{name}'{hint}; known: {known}"
    raise ConfigError("", [ConfigIssue("--source", message)])


def source_clients(
    cfg: SyncerConfig, stop: threading.Event | None = None, only: str | None = None
) -> list[ContacthubClient]:
    """A client per node of every source (of source ``only`` when given), in config order;
    the caller closes their ``http``."""
    check_source_name(cfg, only)
    return [
        _client(name, src, node, stop)
        for name, src in cfg.sources.items()
        if only in (None, name)
        for node in src.nodes
    ]
