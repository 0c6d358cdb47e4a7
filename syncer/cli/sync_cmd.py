"""Commands that move data and watch it: ``sync --once``, ``run``, ``backfill``, ``status``,
``offsets show|set|reset`` and ``health``."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ..config.models import SyncerConfig
from ..engine.backfill import BackfillProgress
from ..errors import StateError, SyncerError
from ..source.contacthub import ContacthubClient
from ..source.sources import check_source_name, source_clients
from ..state import ingest_ops as ops
from ..state.store import Store
from .common import (
    EXIT_CANNOT_START,
    EXIT_CONFIG,
    EXIT_FAILED_RECORDS,
    ConfigOption,
    check_pipeline,
    clean_errors,
    fail,
    load,
    open_store,
    refuse_missing_database,
)
from .status_view import render_status

__all__ = ["register", "source_client"]


def source_client(cfg: SyncerConfig, stop: threading.Event | None = None) -> ContacthubClient:
    """The Contacthub client of ``cfg``'s first source node (see ``source_clients``)."""
    first, *rest = source_clients(cfg, stop)
    for other in rest:
        other.http.close()
    return first


@dataclass
class _Session:
    cfg: SyncerConfig
    store: Store
    client: ContacthubClient  # the first stream's
    stop: threading.Event
    clients: list[ContacthubClient]  # one per source node, in config order


@contextmanager
def _session(config: Path | None, *, exclusive: bool, create: bool = False) -> Iterator[_Session]:
    """Config, store (and, when ``exclusive``, the SQLite process lock) and source client;
    ``create``: a missing SQLite state database may be created (see ``open_store``)."""
    from ..engine.leader import ProcessLock

    cfg = load(config)
    if not create:
        refuse_missing_database(cfg)  # before the lock, which would leave its file behind
    lock = ProcessLock(cfg.state.url)
    if exclusive:
        lock.acquire()
    try:
        store = open_store(cfg, create=create)
    except BaseException:
        lock.release()
        raise
    stop = threading.Event()
    clients = source_clients(cfg, stop)
    try:
        yield _Session(cfg, store, clients[0], stop, clients)
    finally:
        for client in clients:
            client.http.close()
        store.close()
        lock.release()


def sync(
    once: bool = typer.Option(False, "--once", help="Read the stream to its end, deliver, exit."),
    config: Path | None = ConfigOption,
) -> None:
    """Ingest to the end of the stream, deliver everything deliverable, exit (0 clean, 1 not)."""
    if not once:
        fail("use `syncer sync --once` for one pass, or `syncer run` for the daemon", 2)
    from ..engine.runner import sync_once

    with _session(config, exclusive=True, create=True) as s:
        _refuse_refused_credentials(s.cfg)
        report = sync_once(s.cfg, s.store, s.clients, stop=s.stop)
    for line in report.summary():
        typer.echo(line)
    stopped = {name: s.error for name, s in sorted(report.targets.items()) if s.error}
    if stopped:
        # a target that refused its credentials (the worker stops it on an AuthError) is not
        # "records failed": nothing more can be sent to it until the operator acts
        for name, error in stopped.items():
            typer.echo(f"error: target {name} stopped: {error}", err=True)
        fail("fix the credentials (or account) named above and run again", EXIT_CANNOT_START)
    if report.exit_code:
        raise typer.Exit(EXIT_FAILED_RECORDS)


def refused_credentials(cfg: SyncerConfig) -> list[str]:
    """One cheap authenticated call per target a pipeline uses (``Target.check``): the
    refusals (401/403), so a run with a refused credential exits 3 at once, even when nothing
    is queued for that target yet. Any other failure of the check is left to the delivery,
    which retries it."""
    from ..errors import AuthError
    from ..logs import get_logger
    from ..targets.registry import build_client, spec_for

    refused = []
    for name in sorted({p.target for p in cfg.pipelines}):
        tcfg = cfg.targets[name]
        client = build_client(tcfg)
        try:
            spec_for(tcfg.type).build(name, tcfg, client).check()
        except AuthError as exc:
            refused.append(str(exc))
        except Exception as exc:  # down or slow: not a reason to refuse the run
            get_logger(target=name).warning("credential check failed", error=str(exc))
        finally:
            client.close()
    return refused


def _refuse_refused_credentials(cfg: SyncerConfig) -> None:
    refused = refused_credentials(cfg)
    if refused:
        for line in refused:
            typer.echo(f"error: {line}", err=True)
        fail(
            "fix the credentials named above and run again (nothing was read or sent)",
            EXIT_CANNOT_START,
        )


def run(config: Path | None = ConfigOption) -> None:
    """The daemon: poll and deliver on a schedule until SIGTERM/SIGINT."""
    from ..engine.daemon import Daemon

    with _session(config, exclusive=True, create=True) as s:
        _refuse_refused_credentials(s.cfg)  # a restart cannot fix them: exit 3 at once
        daemon = Daemon(s.cfg, s.store, s.clients, stop=s.stop)
        code = daemon.run()
        if daemon.dangling:  # a job ignored the stop: leave without joining its thread
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    raise typer.Exit(code)


def backfill(
    pipeline: str | None = typer.Option(
        None, "--pipeline", "-p", help="Re-send only this pipeline."
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Only customers updated since this ISO 8601 date (2025-01-31, midnight UTC) or "
        "date-time with Z or an offset (2025-01-31T08:00:00Z, 2025-01-31T09:00+01:00).",
    ),
    page_size: int = typer.Option(50, "--page-size", min=1, help="Search page size (API max 50)."),
    source: str | None = typer.Option(
        None, "--source", help="Scan only this source (a key of 'sources'); default: all."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Scan every customer (and wanted events) into the inbox, then stream from the recorded
    offset. Resumable: run it again after an interruption. With several sources, each
    source node's stream in turn (``--source``: one source's)."""
    since = None if since is None else parse_since(since)
    with _session(config, exclusive=True, create=True) as s:
        check_pipeline(s.cfg, pipeline)
        check_source_name(s.cfg, source)
        for client in s.clients:
            if source in (None, client.source):
                _backfill_stream(s, client, pipeline, since, page_size)


def _backfill_stream(
    s: _Session, client: ContacthubClient, pipeline: str | None, since: str | None, page_size: int
) -> None:
    """Backfill one source node's stream, then stream it to its end (one lease)."""
    from ..engine.apply import Applier, rules_from_config
    from ..engine.backfill import Backfill
    from ..engine.leader import Lease, new_owner
    from ..engine.runner import LEASE_TTL, ingest_to_end

    chosen = [p for p in s.cfg.pipelines_of(client.source) if pipeline in (None, p.name)]
    if not chosen:
        return
    events = [p for p in chosen if p.entity == "event"]
    types = (
        None
        if any(p.event_types is None for p in events)
        else sorted({t for p in events for t in p.event_types or []})
    )
    lease = Lease(s.store, client.stream, new_owner(), LEASE_TTL)
    if not lease.acquire():
        holder, _ = lease.holder()
        raise StateError(f"another process holds the polling lease ({holder}); stop it first")
    applier = Applier(rules_from_config(s.cfg, client.source))
    if len(s.clients) > 1:
        typer.echo(f"backfill of source {client.source}, stream {client.stream}")
    with _progress() as report:
        job = Backfill(
            s.store,
            client,
            applier,
            page_size=page_size,
            pipelines=frozenset(p.name for p in chosen),
            event_types=types,
            scan_events=bool(events),
            since=since,
            stop=s.stop,
            on_page=lease.renew,
            progress=report,
        )
        result = job.run()
    lease.release()
    if result.replaced:
        typer.echo("an interrupted backfill with other arguments was dropped (not resumed)")
    typer.echo(
        f"backfill {'resumed and ' if result.resumed else ''}finished: {result.customers} "
        f"customer and {result.events} event documents scanned in {result.queries} searches "
        f"({result.splits} slice splits); stream continues from offset "
        f"{result.recorded_offset}"
    )
    streamed = ingest_to_end(
        s.store,
        client,
        applier,
        page_size=s.cfg.sources[client.source].page_size,
        lease=lease,
        stop=s.stop,
    )
    if streamed is not None:
        typer.echo(
            f"stream: {streamed.updates} updates since the backfill, offset "
            f"{streamed.offset}; deliver with `syncer sync --once` or `syncer run`"
        )


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


def parse_since(value: str) -> str:
    """``--since`` as the instant the search compares with (UTC, milliseconds, like the
    backfill's slices): an ISO 8601 date (midnight UTC) or a date-time with ``Z`` or an
    offset. Anything else exits 2: a wrong date must not silently scan nothing or all."""
    text = value.strip()
    usage = "use 2025-01-31 (midnight UTC), 2025-01-31T08:00:00Z or 2025-01-31T09:00:00+01:00"
    dated = _ISO_DATE_TIME.fullmatch(text)
    if not (_ISO_DATE.fullmatch(text) or dated):
        fail(f"--since {value!r} is not an ISO 8601 date or date-time: {usage}", EXIT_CONFIG)
    if dated is not None and dated.group("zone") is None:
        fail(f"--since {value!r} has no time zone: add Z (UTC) or an offset; {usage}", EXIT_CONFIG)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        fail(f"--since {value!r} is not a valid date: {exc}; {usage}", EXIT_CONFIG)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


@contextmanager
def _progress() -> Iterator[Callable[[BackfillProgress], None]]:
    """A rich progress display on a TTY, plain progress lines otherwise."""
    if sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=False
        ) as bar:
            task = bar.add_task("backfill", total=None)

            def show(p: BackfillProgress) -> None:
                bar.update(
                    task,
                    description=f"backfill {p.entity_type}s: {p.scanned} scanned, "
                    f"slices {p.slices_done} done / {p.slices_open} open",
                )

            yield show
        return
    last = [0.0]

    def line(p: BackfillProgress) -> None:
        if time.monotonic() - last[0] >= 2.0:
            last[0] = time.monotonic()
            typer.echo(
                f"backfill {p.entity_type}s: {p.scanned} scanned, slices "
                f"{p.slices_done} done, {p.slices_open} open",
                err=True,
            )

    yield line


def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    config: Path | None = ConfigOption,
) -> None:
    """Offsets and lag, deliveries by state per pipeline, last runs, dead letters."""
    with _session(config, exclusive=False) as s:
        data = _status(s)
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    console = Console()
    if console.is_terminal:
        render_status(data, console)
        return
    for src in data["streams"]:
        typer.echo(
            f"source {_label(src)}: offset {src['offset']}, stream last "
            f"{src['last_offset']}, lag {src['lag']}, lease {src['lease_owner'] or 'free'}"
        )
    for name, states in sorted(data["pipelines"].items()):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
        typer.echo(f"pipeline {name}: {parts or 'no deliveries'}")
    for r in data["runs"]:
        typer.echo(f"run {r['run_id']} ({r['kind']}): {r['status']} {json.dumps(r['counts'])}")
    typer.echo(f"dead letters: {data['dead_total']}")
    for d in data["dead_letters"]:
        typer.echo(f"  #{d['id']} {d['pipeline']} {d['entity_id']}: {d['last_error']}")


def _label(src: dict[str, Any]) -> str:
    """``<ws>/<node>`` of the single source form; ``<source> (<stream>)`` of named ones."""
    return src["stream"] if src["source"] == "default" else f"{src['source']} ({src['stream']})"


def _stream_status(s: _Session, client: ContacthubClient) -> dict[str, Any]:
    cp = s.store.checkpoint(client.stream)
    offset = cp.offset if cp else 0
    try:
        last: int | None = client.last_offset()
    except SyncerError:
        last = cp.stream_last_offset if cp else None
    return {
        "source": client.source,
        "stream": client.stream,
        "offset": offset,
        "last_offset": last,
        "lag": None if last is None else max(0, last - offset),
        "lease_owner": cp.lease_owner if cp else None,
        "lease_expires_at": cp.lease_expires_at if cp else None,
        "backfill": cp.backfill_state if cp else None,
    }


def _status(s: _Session) -> dict[str, Any]:
    streams = [_stream_status(s, c) for c in s.clients]
    with s.store.reader() as conn:
        pipelines = ops.deliveries_by_state(conn)
        dead = ops.dead_letters(conn)
        dead_total = ops.count_dead(conn)
    for p in s.cfg.pipelines:
        pipelines.setdefault(p.name, {})
    return {
        "source": streams[0],  # the first stream (the only one of the single source form)
        "streams": streams,  # every source node's stream
        "pipelines": pipelines,
        "runs": s.store.last_runs(5),
        "dead_letters": dead,
        "dead_total": dead_total,
    }


SourceOption = typer.Option(
    None, "--source", help="The source (a key of 'sources'); required with several."
)


def _offsets_app() -> typer.Typer:
    app = typer.Typer(help="The committed offset of the update stream.", no_args_is_help=True)

    @app.command("show")
    @clean_errors
    def show(config: Path | None = ConfigOption) -> None:
        """Print the committed offset and the stream's last offset."""
        with _session(config, exclusive=False) as s:
            streams = _status(s)["streams"]
        for data in streams:
            typer.echo(
                f"{_label(data)}: offset {data['offset']}, stream last "
                f"{data['last_offset']}, lag {data['lag']}"
            )

    def _set(s: _Session, offset: int, force: bool, source: str | None) -> None:
        check_source_name(s.cfg, source)
        if source is None and len(s.cfg.sources) > 1:
            fail(
                f"several sources are configured: pass --source ({', '.join(s.cfg.sources)})",
                EXIT_CONFIG,
            )
        chosen = [c for c in s.clients if source in (None, c.source)]
        for client in chosen:
            if s.store.lease_is_live(client.stream) and not force:
                cp = s.store.checkpoint(client.stream)
                raise StateError(
                    f"the polling lease of {client.stream} is held by "
                    f"{cp.lease_owner if cp else '?'}: stop it first, or pass --force"
                )
        for client in chosen:  # every node of the source (offsets are per workspace)
            s.store.set_offset(client.stream, offset)
            typer.echo(f"{client.stream}: offset set to {offset}")

    @app.command("set")
    @clean_errors
    def set_(
        offset: int = typer.Argument(..., min=0, help="The new committed offset."),
        force: bool = typer.Option(False, "--force", help="Even while a lease is live."),
        source: str | None = SourceOption,
        config: Path | None = ConfigOption,
    ) -> None:
        """Set the committed offset (reading continues after it)."""
        with _session(config, exclusive=not force) as s:
            _set(s, offset, force, source)

    @app.command("reset")
    @clean_errors
    def reset(
        force: bool = typer.Option(False, "--force", help="Even while a lease is live."),
        source: str | None = SourceOption,
        config: Path | None = ConfigOption,
    ) -> None:
        """Reset the committed offset to 0 (the whole retained stream is read again)."""
        with _session(config, exclusive=not force) as s:
            _set(s, 0, force, source)

    return app


def health(config: Path | None = ConfigOption) -> None:
    """Exit 0 when every job's heartbeat is fresh, 1 when one is stale or missing."""
    with _session(config, exclusive=False) as s:
        beats = {b["job"]: b for b in s.store.heartbeats()}
        jobs = [f"ingest:{c.stream}" for c in s.clients]
        jobs += [
            f"deliver:{t}" for t in s.cfg.targets if any(p.target == t for p in s.cfg.pipelines)
        ]
    now, bad = time.time(), []
    for job in jobs:
        beat = beats.get(job)
        if beat is None:
            bad.append(f"{job}: no heartbeat yet")
        elif now - beat["at"] > 2 * beat["interval"] + 30:
            bad.append(f"{job}: last heartbeat {now - beat['at']:.0f}s ago ({beat['owner']})")
    for line in bad:
        typer.echo(f"stale: {line}", err=True)
    if bad:
        raise typer.Exit(1)
    typer.echo(f"healthy: {len(jobs)} jobs with fresh heartbeats")


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command("sync")(clean_errors(sync))
    app.command("run")(clean_errors(run))
    app.command("backfill")(clean_errors(backfill))
    app.command("status")(clean_errors(status))
    app.command("health")(clean_errors(health))
    app.add_typer(_offsets_app(), name="offsets")
