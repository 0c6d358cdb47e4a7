"""Progress of ``sync --once`` and ``backfill``: a live rich display on a TTY (stderr), a
progress log line every few seconds otherwise, nothing with ``--quiet``.

``sync --once`` is watched from the outside: a thread reads the state database (the stream
checkpoint and the deliveries each target settled since the run began), so the engine needs
no hook. ``backfill`` reports each page through its ``progress`` callback.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select

from ..logs import get_logger
from ..state.schema import deliveries
from ..state.store import Store

__all__ = ["Tally", "backfill_progress", "sync_progress"]

# Seconds between progress lines off a TTY; SYNCER_PROGRESS_EVERY changes it (0: each poll).
LINE_EVERY = 10.0
POLL_EVERY = 0.5
STREAM = "contacthub stream"  # the tally of updates read (a space: no target has that name)


def line_every() -> float:
    try:
        return max(0.0, float(os.environ.get("SYNCER_PROGRESS_EVERY", LINE_EVERY)))
    except ValueError:
        return LINE_EVERY


@dataclass
class Tally:
    """One line of progress: ``done`` of ``total`` (None: unknown), since ``started``."""

    name: str
    done: int = 0
    total: int | None = None
    failed: int = 0  # dead or invalid
    queued: int = 0  # deliveries created (backfill) or still open (sync)
    started: float = field(default_factory=time.monotonic)
    first_done_at: float | None = None
    first_done: int = 0
    last_change_at: float | None = None

    def rate(self, now: float) -> float | None:
        """Items per second since the first one was seen done (a slow start is not counted)."""
        if self.first_done_at is None:
            return None
        # up to the last change once all is done: a finished line keeps its rate
        until = self.last_change_at if self.finished and self.last_change_at else now
        if until - self.first_done_at < 0.5:
            return None
        return (self.done - self.first_done) / (until - self.first_done_at)

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total

    def eta(self, now: float) -> float | None:
        rate = self.rate(now)
        if self.total is None or not rate:
            return None
        return max(0.0, (self.total - self.done) / rate)

    def set_done(self, done: int, now: float) -> None:
        if self.first_done_at is None and done > 0:
            self.first_done_at, self.first_done = now, 0
        if done != self.done:
            self.last_change_at = now
        self.done = done

    def text(self, now: float) -> str:
        total = "?" if self.total is None else str(self.total)
        parts = [f"{self.name}: {self.done}/{total}"]
        if self.failed:
            parts.append(f"{self.failed} dead")
        if self.queued:
            parts.append(f"{self.queued} queued")
        rate = self.rate(now)
        parts.append("rate -" if rate is None else f"{rate:.1f}/s")
        eta = self.eta(now)
        if self.finished:
            parts.append("done")
        else:
            parts.append("ETA -" if eta is None else f"ETA {_duration(eta)}")
        return ", ".join(parts)


def _duration(value: float) -> str:
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class _Sink(Protocol):
    def show(self, tallies: list[Tally], *, final: bool = False) -> None: ...


class _RichSink:
    """A rich progress bar per tally on stderr (rich computes nothing: our own rate/ETA)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _RichSink:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def show(self, tallies: list[Tally], *, final: bool = False) -> None:
        now = time.monotonic()
        for t in tallies:
            extra = t.text(now).split(", ", 1)[1] if ", " in t.text(now) else ""
            if t.name not in self.tasks:
                self.tasks[t.name] = self.progress.add_task(t.name, total=t.total, extra=extra)
            self.progress.update(
                self.tasks[t.name], completed=t.done, total=t.total, extra=extra, refresh=final
            )


class _LineSink:
    """A progress log line (stderr) at most every :func:`line_every` seconds, and at the end."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.every = line_every()
        self.last = time.monotonic()
        self.log = get_logger(component="progress")

    def __enter__(self) -> _LineSink:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def show(self, tallies: list[Tally], *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every:
            return
        self.last = now
        if tallies:
            label = "finished" if final else "progress"
            self.log.info(f"{self.what} {label}: " + "; ".join(t.text(now) for t in tallies))


class _QuietSink:
    def __enter__(self) -> _QuietSink:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def show(self, tallies: list[Tally], *, final: bool = False) -> None:
        return None


def _sink(what: str, quiet: bool) -> _RichSink | _LineSink | _QuietSink:
    if quiet:
        return _QuietSink()
    if sys.stderr.isatty():
        return _RichSink()
    return _LineSink(what)


# -- sync --once -------------------------------------------------------------------------------


def _sync_tallies(
    store: Store, bases: dict[str, int], since: float, tallies: dict[str, Tally]
) -> None:
    """Refresh ``tallies`` from the database: the streams read (``bases``: each source node's
    stream -> its offset at the start; the end of each is recorded when its ingest starts)
    and per target the rows settled since ``since`` (done, dead) and the rows still open
    (queued): total = settled + open."""
    now = time.monotonic()
    checkpoints = [(store.checkpoint(stream), base) for stream, base in bases.items()]
    with store.reader() as conn:
        d = deliveries.c
        rows = conn.execute(  # portable SQL: the driver's placeholder style differs
            select(d.target, d.state, func.count())
            .where(d.state.in_(("pending", "failed", "in_flight")) | (d.updated_at >= since))
            .group_by(d.target, d.state)
        ).all()
    ends = [(cp, base) for cp, base in checkpoints if cp and cp.stream_last_offset is not None]
    if ends:  # several streams: one tally of every update read (offsets are per stream)
        read = tallies[STREAM]
        read.total = sum(max(0, (cp.stream_last_offset or 0) - base) for cp, base in ends)
        done = sum(max(0, min(cp.offset, cp.stream_last_offset or 0) - base) for cp, base in ends)
        read.set_done(done, now)
    per: dict[str, dict[str, int]] = {}
    for target, state, count in rows:
        per.setdefault(str(target), {})[str(state)] = int(count)
    for target, states in sorted(per.items()):
        t = tallies.setdefault(target, Tally(target))
        open_ = states.get("pending", 0) + states.get("failed", 0) + states.get("in_flight", 0)
        t.failed = states.get("dead", 0)
        t.queued = open_
        t.total = states.get("done", 0) + t.failed + open_
        t.set_done(states.get("done", 0) + t.failed, now)


def _visible(tallies: dict[str, Tally]) -> list[Tally]:
    """Every tally but the stream's while nothing new is in the stream."""
    return [t for t in tallies.values() if t.name != STREAM or t.total]


@contextmanager
def sync_progress(store: Store, streams: list[str], *, quiet: bool) -> Iterator[None]:
    """Show the progress of the ``sync --once`` (reading ``streams``) in the ``with`` body."""
    since = time.time()
    bases = {}
    for stream in streams:
        start = store.checkpoint(stream)
        bases[stream] = start.offset if start else 0
    tallies: dict[str, Tally] = {STREAM: Tally(STREAM)}
    stop = threading.Event()
    with _sink("sync", quiet) as sink:
        if isinstance(sink, _QuietSink):
            yield
            return

        def watch() -> None:
            while not stop.wait(POLL_EVERY):
                try:
                    _sync_tallies(store, bases, since, tallies)
                except Exception:  # a busy or closing database: the next poll will tell
                    continue
                sink.show(_visible(tallies))

        thread = threading.Thread(target=watch, name="sync-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
        try:
            _sync_tallies(store, bases, since, tallies)
        except Exception:
            return
        sink.show(_visible(tallies), final=True)


# -- backfill ----------------------------------------------------------------------------------


@contextmanager
def backfill_progress(
    totals: dict[str, int | None], queued: Callable[[], int], *, quiet: bool
) -> Iterator[Callable[[Any], None]]:
    """A ``progress`` callback for :class:`~syncer.engine.backfill.Backfill`: ``totals`` per
    entity type (``None``: unknown, e.g. over the search cap), ``queued`` the deliveries
    created so far."""
    tallies: dict[str, Tally] = {}
    lock = threading.Lock()
    with _sink("backfill", quiet) as sink:

        def report(p: Any) -> None:
            with lock:
                now = time.monotonic()
                name = f"{p.entity_type}s"
                t = tallies.setdefault(name, Tally(name, total=totals.get(p.entity_type)))
                t.set_done(p.scanned, now)
                if t.total is not None and p.scanned > t.total:  # created meanwhile
                    t.total = p.scanned
                t.queued = queued()
                sink.show(list(tallies.values()))

        yield report
        with lock:
            sink.show(list(tallies.values()), final=True)
