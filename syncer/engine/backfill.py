"""Backfill: feed every existing customer (and wanted events) through the ingest path.

1. Record the stream's last offset ``L`` (``checkpoints.backfill_offset``) and mark the
   backfill running, with one open slice per entity kind.
2. Scan customers by ``registeredAt`` slices ``[lo, hi)``, sorted ascending, with a moving
   value cursor (keyset paging): each query asks for ``registeredAt >= cursor``, so customers
   deleted or created meanwhile cannot shift pages and hide others. The cursor is the last
   customer's instant, so the next page starts with the customers of that instant already
   applied: their ids are remembered and skipped (the API documents no order among equal
   ``registeredAt``, so there is no id to page after). A full page sharing the cursor's
   instant is read whole by page numbers, then the cursor moves one millisecond on. A query
   that reaches the 10,000-match cap (or that the API refuses as too broad) halves its slice
   until it is under the cap. Events go the same way by ``date`` (newest first, the API's
   only order).
3. Search pages are applied like a stream page (:class:`~syncer.engine.apply.Applier`,
   origin ``backfill``), up to ``batch_size`` documents of one slice per transaction together
   with the slice's new cursor, so an interrupted backfill resumes at its last completed
   batch (the skipped ids are not stored: a resumed scan reads the cursor's instant again,
   harmlessly). A scanned customer never replaces a newer stored version.
4. Done: the backfill is marked done; a stream never read (offset 0) jumps to ``L`` (the scan
   covered everything before it), otherwise it continues from its committed offset. Either
   way the stream after ``L`` brings what changed during the scan.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ..logs import get_logger
from ..source.contacthub import ContacthubClient, SearchPage, SearchTooBroad
from ..state import ingest_ops as ops
from ..state.store import Store
from .apply import Applier, ApplyStats, Incoming

# one backfill_slices row holds the key of the running backfill's arguments (its lo)
ARGS_KIND = "args"
NULL_SLICE = "null"  # customers without registeredAt, scanned with page numbers
ONE_MS = 1


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BATCH_SIZE = 1000  # documents per transaction: fewer commits, a bounded re-read on resume


def to_ms(value: str) -> int:
    """Epoch milliseconds, floored; exact (no float: ``.123`` must not become 122)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def iso_ms(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


@dataclass
class BackfillProgress:
    """Reported after every page: for progress bars and plain progress lines."""

    entity_type: str
    scanned: int
    slices_done: int
    slices_open: int


@dataclass
class BackfillResult:
    resumed: bool = False
    replaced: bool = False  # an interrupted backfill with other arguments was dropped
    recorded_offset: int = 0
    customers: int = 0
    events: int = 0
    queries: int = 0
    splits: int = 0
    finished: bool = False
    stats: ApplyStats = field(default_factory=ApplyStats)


class Backfill:
    """One backfill of one source; see the module docstring.

    ``pipeline``: only this pipeline re-evaluates customers already stored at the same
    version (default: all); ``since``: only customers updated since this ISO date;
    ``batch_size``: customers applied per transaction (whole search pages).
    """

    def __init__(
        self,
        store: Store,
        client: ContacthubClient,
        applier: Applier,
        *,
        page_size: int = 50,
        batch_size: int = BATCH_SIZE,
        pipelines: frozenset[str],
        event_types: list[str] | None,
        scan_events: bool,
        since: str | None = None,
        stop: threading.Event | None = None,
        on_page: Callable[[], None] | None = None,
        progress: Callable[[BackfillProgress], None] | None = None,
    ) -> None:
        self.store, self.client, self.applier = store, client, applier
        self.stream = client.stream
        self.page_size = page_size
        self.batch_size = batch_size
        # per kind: (instant in ms, ids applied at that instant), skipped when read again
        self._seen: dict[str, tuple[int, set[str]]] = {}
        self._writer = _Writer()
        self.resend = pipelines
        self.event_types = event_types
        self.scan_events = scan_events
        self.since = since
        self.stop = stop or threading.Event()
        self.on_page = on_page
        self.progress = progress
        self.result = BackfillResult()
        self.log = get_logger(component="backfill", stream=self.stream)

    def run(self) -> BackfillResult:
        with self._writer:
            self._start()
            self._scan("customer")
            if self.scan_events and not self.stop.is_set():
                self._scan("event")
            self._writer.drain()
            if not self.stop.is_set():
                self._finish()
        return self.result

    def args_key(self) -> str:
        """What this backfill was asked to do, as a key: resuming is for the same request."""
        doc = {
            "pipelines": sorted(self.resend),
            "event_types": None if self.event_types is None else sorted(self.event_types),
            "scan_events": self.scan_events,
            "since": self.since,
        }
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]

    # -- phases ---------------------------------------------------------------------------
    def _start(self) -> None:
        with self.store.transaction() as conn:
            self.store.ensure_checkpoint(conn, self.stream)
        cp = self.store.checkpoint(self.stream)
        key = self.args_key()
        if cp is not None and cp.backfill_state == "running":
            with self.store.reader() as conn:
                stored = [lo for lo, _ in ops.slices_todo(conn, self.stream, ARGS_KIND)]
            if stored == [key]:
                self.result.resumed = True
                self.result.recorded_offset = int(cp.backfill_offset or 0)
                self.log.info("resuming backfill", recorded_offset=self.result.recorded_offset)
                return
            # an interrupted backfill with other arguments: resuming it would not do what
            # these ask (another pipeline, since), so it is dropped and this one starts over
            self.result.replaced = True
            self.log.info("an interrupted backfill with other arguments is dropped")
        last = self.client.last_offset()
        hi = iso_ms(int((time.time() + 86_400) * 1000))
        with self.store.transaction() as conn:
            ops.clear_slices(conn, self.stream)
            ops.put_slices(conn, self.stream, "customer", [("1970-01-01T00:00:00.000Z", hi)])
            ops.put_slices(conn, self.stream, "customer", [(NULL_SLICE, NULL_SLICE)])
            if self.scan_events:
                ops.put_slices(conn, self.stream, "event", [("1970-01-01T00:00:00.000Z", hi)])
            ops.put_slices(conn, self.stream, ARGS_KIND, [(key, key)])
            ops.set_backfill(conn, self.stream, "running", last)
        self.result.recorded_offset = last
        self.log.info("backfill started", recorded_offset=last)

    def _finish(self) -> None:
        last = self.result.recorded_offset
        with self.store.transaction() as conn:
            ops.set_backfill(conn, self.stream, "done", last)
            if ops.read_offset(conn, self.stream) == 0 and last > 0:
                ops.advance_offset(conn, self.stream, 0, last)
        self.result.finished = True
        self.log.info(
            "backfill done",
            customers=self.result.customers,
            events=self.result.events,
            write_wait_s=round(self._writer.waited, 1),
        )

    def _scan(self, kind: str) -> None:
        """Work through the open slices; re-read them (once all writes are in) after a step
        that changed them otherwise than by finishing its slice."""
        step = self._customer_step if kind == "customer" else self._event_step
        while not self.stop.is_set():
            self._writer.drain()
            with self.store.engine.connect() as conn:
                todo = ops.slices_todo(conn, self.stream, kind)
            if not todo:
                return
            for lo, hi in todo:
                if self.stop.is_set() or not step(lo, hi):
                    break

    # -- customers ------------------------------------------------------------------------
    def _customer_query(self, lo: str, hi: str) -> dict[str, Any]:
        if lo == NULL_SLICE:
            conds = [_atomic("registeredAt", "IS_NULL", None)]
        else:
            conds = [_atomic("registeredAt", "GTE", lo), _atomic("registeredAt", "LT", hi)]
        if self.since:
            conds.append(_atomic("updatedAt", "GTE", self.since))
        return _query(conds)

    def _customer_step(self, lo: str, hi: str) -> bool:
        """Scan slice ``[lo, hi)`` to its end, about ``batch_size`` customers per transaction
        (written while the next pages are read). False when the slice had to be split (its
        search reached the cap) or the backfill was stopped."""
        if lo == NULL_SLICE:
            self._null_slice()
            return True
        batch: list[dict[str, Any]] = []
        cursor = lo
        while True:
            try:
                page = self._search_customers(cursor, hi, 0)
            except SearchTooBroad:
                page = None
            if page is None or page.total >= page.max_elements:
                if batch:  # keep what was read: the slice now starts at the cursor
                    self._apply("customer", batch, lo, cursor, hi, finished=False)
                    lo = cursor
                start = to_ms(lo)
                if page is not None and page.elements:  # nothing in the slice before the first
                    start = max(start, to_ms(str(page.elements[0]["registeredAt"])))
                self._split("customer", lo, start, to_ms(hi))
                return False
            elements = page.elements
            if len(elements) < self.page_size:
                batch += self._unseen("customer", cursor, elements)
                self._apply("customer", batch, lo, hi, hi, finished=True)
                return True
            fresh, cursor = self._customer_page(cursor, elements)
            batch += fresh
            if cursor >= hi or len(batch) >= self.batch_size or self.stop.is_set():
                self._apply("customer", batch, lo, cursor, hi, finished=cursor >= hi)
                if cursor >= hi or self.stop.is_set():
                    return cursor >= hi
                lo, batch = cursor, []

    def _customer_page(
        self, cursor: str, elements: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], str]:
        """The new customers of a full page read at ``cursor``, and the next cursor: the last
        one's instant (whose customers are remembered as seen), or one millisecond past the
        cursor when the whole page shares the cursor's instant (then read whole here)."""
        last = to_ms(str(elements[-1]["registeredAt"]))
        if last <= to_ms(cursor):
            after = iso_ms(to_ms(cursor) + ONE_MS)
            fresh = self._unseen("customer", cursor, self._all_pages(cursor, after))
            return fresh, after
        fresh = self._unseen("customer", cursor, elements)
        self._remember("customer", last, elements, "registeredAt")
        return fresh, iso_ms(last)

    def _search_customers(self, lo: str, hi: str, page: int) -> SearchPage:
        self.result.queries += 1
        query = self._customer_query(lo, hi)
        return self.client.search_customers(query, page, self.page_size, "registeredAt,asc")

    def _all_pages(self, lo: str, hi: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        number = 0
        while True:
            page = self._search_customers(lo, hi, number)
            out += page.elements
            if len(page.elements) < self.page_size:
                return out
            number += 1

    def _null_slice(self) -> None:
        elements = self._all_pages(NULL_SLICE, NULL_SLICE)
        self._apply("customer", elements, NULL_SLICE, NULL_SLICE, NULL_SLICE, finished=True)

    # -- events ---------------------------------------------------------------------------
    def _event_step(self, lo: str, hi: str) -> bool:
        """One page of events of ``[lo, hi]`` (both inclusive), newest first: ``hi`` moves
        down. False: the slices changed (the page is applied before they are read again)."""
        self.result.queries += 1
        try:
            page = self.client.search_events(
                0, self.page_size, types=self.event_types, date_from=lo, date_to=hi
            )
        except SearchTooBroad:
            page = None
        if page is None or page.total >= page.max_elements:
            self._split("event", lo, to_ms(lo), to_ms(hi))
            return False
        elements = self._unseen("event", hi, page.elements)
        if len(page.elements) < self.page_size:
            self._apply("event", elements, lo, lo, hi, finished=True)
            return True
        last = to_ms(str(page.elements[-1]["date"]))
        if last >= to_ms(hi):  # a full page of one instant: fetch that instant page by page
            elements = self._unseen("event", hi, self._event_instant(hi))
            cursor = iso_ms(to_ms(hi) - ONE_MS)
        else:
            cursor = iso_ms(last)
            self._remember("event", last, page.elements, "date")
        self._apply("event", elements, lo, lo, cursor, finished=cursor < lo)
        return False

    def _event_instant(self, at: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        number = 0
        while True:
            self.result.queries += 1
            page = self.client.search_events(
                number, self.page_size, types=self.event_types, date_from=at, date_to=at
            )
            out += page.elements
            if len(page.elements) < self.page_size:
                return out
            number += 1

    # -- shared ---------------------------------------------------------------------------
    def _remember(self, kind: str, at: int, elements: list[dict[str, Any]], prop: str) -> None:
        """Remember the ids read at instant ``at``: the next query starts there."""
        ids = {str(e.get("id")) for e in elements if to_ms(str(e[prop])) == at}
        self._seen[kind] = (at, ids)

    def _unseen(
        self, kind: str, bound: str, elements: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """``elements`` of a query bounded at ``bound`` less those already applied there."""
        at, ids = self._seen.get(kind, (-1, set()))
        if not ids or at != to_ms(bound):
            return elements
        return [e for e in elements if str(e.get("id")) not in ids]

    def _split(self, kind: str, lo: str, start: int, end: int) -> None:
        self._writer.drain()  # the slice's last batch first: it moves the slice's lo
        if end - start <= ONE_MS:
            raise SearchTooBroad(
                f"backfill cannot narrow the {kind} slice at {lo}: more than the search cap "
                "share one millisecond"
            )
        mid = start + (end - start) // 2
        spans = [(lo, iso_ms(mid)), (iso_ms(mid), iso_ms(end))]
        if kind == "event":  # inclusive bounds: the halves must not share an instant
            spans = [(lo, iso_ms(mid)), (iso_ms(mid + ONE_MS), iso_ms(end))]
        with self.store.transaction() as conn:
            ops.put_slices(conn, self.stream, kind, spans)
        self.result.splits += 1
        self.log.debug("slice split", entity=kind, lo=lo, mid=iso_ms(mid))

    def _apply(
        self,
        kind: str,
        elements: list[dict[str, Any]],
        lo: str,
        new_lo: str,
        new_hi: str,
        *,
        finished: bool,
    ) -> None:
        """Apply search pages and record the slice's progress, in one transaction on the
        writer thread (after the previous one)."""
        self._writer.submit(lambda: self._write(kind, elements, lo, new_lo, new_hi, finished))

    def _write(
        self,
        kind: str,
        elements: list[dict[str, Any]],
        lo: str,
        new_lo: str,
        new_hi: str,
        finished: bool,
    ) -> None:
        if self.on_page is not None:
            self.on_page()
        offset = self.result.recorded_offset
        items = [
            Incoming(
                "backfill",
                kind,
                "UPDATE",
                doc,
                orjson.dumps(doc).decode(),
                offset,
                n,
                self.client.prefix,
            )
            for n, doc in enumerate(elements)
            if isinstance(doc, dict) and doc.get("id")
        ]
        with self.store.transaction() as conn:
            stats = self.applier.apply(conn, self.stream, items, self.resend)
            ops.update_slice(
                conn,
                self.stream,
                kind,
                lo,
                new_lo=new_lo,
                new_hi=new_hi,
                finished=finished,
                fed=len(items),
            )
        self.result.stats.add(stats)
        if kind == "customer":
            self.result.customers += len(items)
        else:
            self.result.events += len(items)
        if self.progress is not None:
            with self.store.engine.connect() as conn:
                open_, done_ = ops.slice_states(conn, self.stream, kind)
            scanned = self.result.customers if kind == "customer" else self.result.events
            self.progress(BackfillProgress(kind, scanned, done_, open_))


class _Writer:
    """One background thread applying batches in order, one at a time, so the scan reads the
    next pages while a batch is written (a 2-core machine does both at once). Its failure is
    raised in the scan at the next submit or drain."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        self.waited = 0.0  # seconds the scan spent waiting for writes: what bounds the backfill

    def submit(self, write: Callable[[], None]) -> None:
        self.drain()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-write")
        self._pending = self._pool.submit(write)

    def drain(self) -> None:
        """Wait for the batch being written (re-raising its error)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            started = time.perf_counter()
            try:
                pending.result()
            finally:
                self.waited += time.perf_counter() - started

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.drain()
        finally:
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown()


def _atomic(attribute: str, operator: str, value: Any) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": "atomic", "attribute": attribute, "operator": operator}
    if value is not None:
        cond["value"] = value
    return cond


def _query(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    condition = (
        conditions[0]
        if len(conditions) == 1
        else {"type": "composite", "conjunction": "and", "conditions": conditions}
    )
    return {
        "name": "query",
        "query": {"type": "simple", "name": "query", "are": {"condition": condition}},
    }
