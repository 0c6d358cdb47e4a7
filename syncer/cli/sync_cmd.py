"""Commands that move data and watch it: ``sync --once``, ``run``, ``backfill``, ``status``,
``offsets show|set|reset`` and ``health``."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ..config.models import SyncerConfig
from ..engine.backfill import BackfillResult
from ..engine.runner import SyncReport
from ..errors import PermanentError, StateError, SyncerError
from ..source.contacthub import ContacthubClient
from ..source.sources import check_source_name, source_clients
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
from .progress import backfill_progress, sync_progress
from .status_view import (
    collect_status,
    dumps,
    oldest_unread_at,
    plain_status,
    render_status,
    stream_label,
)

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


JsonOption = typer.Option(False, "--json", help="One JSON document on stdout.")
QuietOption = typer.Option(
    False, "--quiet", "-q", help="No progress display or progress lines (errors still shown)."
)


def sync(
    once: bool = typer.Option(False, "--once", help="Read the stream to its end, deliver, exit."),
    config: Path | None = ConfigOption,
    quiet: bool = QuietOption,
    as_json: bool = JsonOption,
) -> None:
    """Ingest to the end of the stream, deliver everything deliverable, exit (0 clean, 1 not)."""
    if not once:
        fail("use `syncer sync --once` for one pass, or `syncer run` for the daemon", 2)
    from ..engine.runner import sync_once

    with _session(config, exclusive=True, create=True) as s:
        _refuse_refused_credentials(s.cfg)
        with sync_progress(s.store, [c.stream for c in s.clients], quiet=quiet):
            report = sync_once(s.cfg, s.store, s.clients, stop=s.stop)
    if as_json:
        doc = {"run_id": report.run_id, "clean": report.clean, **report.counts()}
        typer.echo(dumps(doc))
    else:
        for line in summary_lines(report):
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


def summary_lines(report: SyncReport) -> list[str]:
    """The end of ``sync --once``: the ingest, then one line per target in the status
    vocabulary (invalid: rejected before sending; dead: refused by the target)."""
    lines = [line for line in report.summary() if line.startswith(("ingest", "result"))]
    result = lines.pop() if lines and lines[-1].startswith("result") else None
    for name, t in sorted(report.targets.items()):
        line = (
            f"{name}: {t.done} done ({t.created} created, {t.updated} updated, "
            f"{t.unchanged} unchanged, {t.left} left, {t.deleted} deleted), {t.invalid} invalid, "
            f"{t.dead} dead, {t.waiting} still open"
        )
        lines.append(line + (f"; stopped: {t.error}" if t.error else ""))
    return [*lines, *([result] if result else [])]


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
    quiet: bool = QuietOption,
    as_json: bool = JsonOption,
) -> None:
    """Scan every customer (and wanted events) into the inbox, then stream from the recorded
    offset. Resumable: run it again after an interruption. With several sources, each
    source node's stream in turn (``--source``: one source's)."""
    since = None if since is None else parse_since(since)
    with _session(config, exclusive=True, create=True) as s:
        check_pipeline(s.cfg, pipeline)
        check_source_name(s.cfg, source)
        docs: list[dict[str, Any]] = []
        for client in s.clients:
            if source in (None, client.source):
                doc = _backfill_stream(s, client, pipeline, since, page_size, quiet, as_json)
                if doc is not None:
                    docs.append(doc)
    if as_json:
        # the first stream's document (the only one of the single source form), and with
        # several sources every stream's, as in `status`
        first = docs[0] if docs else {}
        typer.echo(dumps({**first, "streams": docs} if len(docs) != 1 else first))


def _backfill_stream(
    s: _Session,
    client: ContacthubClient,
    pipeline: str | None,
    since: str | None,
    page_size: int,
    quiet: bool,
    as_json: bool,
) -> dict[str, Any] | None:
    """Backfill one source node's stream, then stream it to its end (one lease), recorded as
    a run; its document (None: no chosen pipeline reads this source)."""
    from ..engine.apply import Applier, rules_from_config
    from ..engine.backfill import Backfill
    from ..engine.leader import Lease, new_owner
    from ..engine.runner import LEASE_TTL, ingest_to_end, new_run_id

    chosen = [p for p in s.cfg.pipelines_of(client.source) if pipeline in (None, p.name)]
    if not chosen:
        return None
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
    if len(s.clients) > 1 and not as_json:
        typer.echo(f"backfill of source {client.source}, stream {client.stream}")
    totals = {} if quiet else _backfill_totals(client, since, types, bool(events))
    jobs: list[Backfill] = []

    def queued() -> int:
        return jobs[0].result.stats.deliveries_created if jobs else 0

    run_id = new_run_id("backfill")
    s.store.run_started(run_id, "backfill")
    done: dict[str, Any] = {}
    try:
        with backfill_progress(totals, queued, quiet=quiet) as report:
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
            jobs.append(job)
            result = job.run()
        lease.release()
        done = _backfill_doc(result, pipeline, since)
        streamed = ingest_to_end(
            s.store,
            client,
            applier,
            page_size=s.cfg.sources[client.source].page_size,
            lease=lease,
            stop=s.stop,
        )
        if streamed is not None:
            done["stream"] = {"updates": streamed.updates, "offset": streamed.offset}
    except BaseException as exc:
        s.store.run_finished(run_id, "failed", {"backfill": done}, f"{type(exc).__name__}")
        raise
    s.store.run_finished(run_id, "ok" if result.finished else "stopped", {"backfill": done})
    if as_json:
        return {"run_id": run_id, "source": client.source, "stream_key": client.stream, **done}
    if result.replaced:
        typer.echo("an interrupted backfill with other arguments was dropped (not resumed)")
    typer.echo(
        f"backfill {'resumed and ' if result.resumed else ''}finished: {result.customers} "
        f"customer and {result.events} event documents scanned in {result.queries} searches "
        f"({result.splits} slice splits), {result.stats.deliveries_created} deliveries queued; "
        f"stream continues from offset {result.recorded_offset}"
    )
    if "stream" in done:
        typer.echo(
            f"stream: {done['stream']['updates']} updates since the backfill, offset "
            f"{done['stream']['offset']}; deliver with `syncer sync --once` or `syncer run`"
        )
    return {"run_id": run_id, "source": client.source, "stream_key": client.stream, **done}


def _backfill_doc(
    result: BackfillResult, pipeline: str | None, since: str | None
) -> dict[str, Any]:
    """The backfill's outcome: its ``--json`` document and its ``runs`` counts."""
    return {
        "pipeline": pipeline,
        "since": since,
        "resumed": result.resumed,
        "replaced": result.replaced,
        "finished": result.finished,
        "customers": result.customers,
        "events": result.events,
        "searches": result.queries,
        "splits": result.splits,
        "queued": result.stats.deliveries_created,
        "coalesced": result.stats.deliveries_coalesced,
        "offset": result.recorded_offset,
    }


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


def _backfill_totals(
    client: ContacthubClient, since: str | None, types: list[str] | None, events: bool
) -> dict[str, int | None]:
    """How many customers (and events) the backfill will scan, from one search each
    (``totalElements``); ``None`` at the search cap (10,000: the true count is unknown)."""
    condition = {"type": "atomic", "attribute": "updatedAt", "operator": "GTE", "value": since}
    query = {
        "name": "query",
        "query": {"type": "simple", "name": "query", "are": {"condition": condition}},
    }
    try:
        page = client.search_customers(query if since else None, 0, 1)
    except PermanentError:  # refused: the backfill's own search reports it
        return {}
    totals: dict[str, int | None] = {
        "customer": None if page.total >= page.max_elements else page.total
    }
    if events:
        try:
            found = client.search_events(0, 1, types=types)
        except PermanentError:  # a refused event search fails the backfill itself, in turn
            return totals
        totals["event"] = None if found.total >= found.max_elements else found.total
    return totals


def status(
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    config: Path | None = ConfigOption,
) -> None:
    """Source offset and lag, the queue by state per pipeline and target (oldest due), erasures
    pending, recent runs (kind, start, duration, per-target counts)."""
    with _session(config, exclusive=False) as s:
        data = _status(s)
    if as_json:
        typer.echo(dumps(data))
        return
    console = Console()
    if console.is_terminal:
        render_status(data, console)
        return
    for line in plain_status(data):
        typer.echo(line)


def _last_offset(client: ContacthubClient) -> int | None:
    """The stream's end from Contacthub; ``None`` when it does not answer (the recorded one
    is shown instead): status must work during an outage."""
    try:
        return client.last_offset()
    except SyncerError:
        return None


def _status(s: _Session, pipelines: bool = True, ages: bool = True) -> dict[str, Any]:
    """The status document; ``ages``: also read each stream's oldest unread change (one
    more read-only call per stream that is behind) for the lag in seconds."""
    streams: list[tuple[str, str, int | None, float | None]] = []
    for c in s.clients:
        last = _last_offset(c)
        cp = s.store.checkpoint(c.stream)
        offset = cp.offset if cp else 0
        behind = ages and last is not None and last > offset
        streams.append((c.source, c.stream, last, oldest_unread_at(c, offset) if behind else None))
    targets = {p.name: p.target for p in s.cfg.pipelines} if pipelines else {}
    return collect_status(s.store, streams, targets)


SourceOption = typer.Option(
    None, "--source", help="The source (a key of 'sources'); required with several."
)


def _offsets_app() -> typer.Typer:
    app = typer.Typer(help="The committed offset of the update stream.", no_args_is_help=True)

    @app.command("show")
    @clean_errors
    def show(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
        """Print the committed offset and the stream's last offset."""
        with _session(config, exclusive=False) as s:
            streams = _status(s, pipelines=False, ages=False)["streams"]
        keys = ("source", "stream", "offset", "last_offset", "lag", "checked_at")
        data = [{k: src[k] for k in keys} for src in streams]
        if as_json:
            # the first stream's offsets (the only one of the single source form), and with
            # several sources every stream's, as in `status`
            typer.echo(dumps({**data[0], "streams": data} if len(data) > 1 else data[0]))
            return
        for src in data:
            typer.echo(
                f"{stream_label(src)}: offset {src['offset']}, stream last "
                f"{src['last_offset']}, lag {src['lag']}"
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


def health(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Exit 0 when every job's heartbeat is fresh, 1 when one is stale or missing."""
    with _session(config, exclusive=False) as s:
        beats = {b["job"]: b for b in s.store.heartbeats()}
        jobs = [f"ingest:{c.stream}" for c in s.clients]
        jobs += [
            f"deliver:{t}" for t in s.cfg.targets if any(p.target == t for p in s.cfg.pipelines)
        ]
    now, bad = time.time(), []
    report = []
    for job in jobs:
        beat = beats.get(job)
        age = None if beat is None else round(now - beat["at"], 1)
        fresh = beat is not None and now - beat["at"] <= 2 * beat["interval"] + 30
        report.append(
            {"job": job, "fresh": fresh, "age_seconds": age, "owner": beat and beat["owner"]}
        )
        if beat is None:
            bad.append(f"{job}: no heartbeat yet")
        elif not fresh:
            bad.append(f"{job}: last heartbeat {now - beat['at']:.0f}s ago ({beat['owner']})")
    if as_json:
        typer.echo(dumps({"healthy": not bad, "jobs": report}))
        raise typer.Exit(1 if bad else 0)
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
