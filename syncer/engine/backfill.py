"""Backfill: feed every existing customer (and wanted events) through the ingest path.

1. Record the stream's last offset ``L`` (``checkpoints.backfill_offset``) and mark the
   backfill running, with one open slice per entity kind.
2. Scan customers by ``registeredAt`` slices ``[lo, hi)``, sorted ascending, with a moving
   value cursor (keyset paging): each query asks for ``registeredAt >= cursor``, so customers
   deleted or created meanwhile cannot shift pages and hide others. A query that reaches the
   10,000-match cap (or that the API refuses as too broad) halves its slice until it is under
   the cap. Events go the same way by ``date`` (newest first, the API's only order).
3. Each search page is applied like a stream page (:class:`~syncer.engine.apply.Applier`,
   origin ``backfill``) in one transaction together with the slice's new cursor, so an
   interrupted backfill resumes at its last completed page. A scanned customer never replaces
   a newer stored version.
4. Done: the backfill is marked done; a stream never read (offset 0) jumps to ``L`` (the scan
   covered everything before it), otherwise it continues from its committed offset. Either
   way the stream after ``L`` brings what changed during the scan.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ..logs import get_logger
from ..source.contacthub import ContacthubClient, SearchPage, SearchTooBroad
from ..state import ingest_ops as ops
from ..state.store import Store
from .apply import Applier, ApplyStats, Incoming

NULL_SLICE = "null"  # customers without registeredAt, scanned with page numbers
ONE_MS = 1


def to_ms(value: str) -> int:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


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
    version (default: all); ``since``: only customers updated since this ISO date.
    """

    def __init__(
        self,
        store: Store,
        client: ContacthubClient,
        applier: Applier,
        *,
        page_size: int = 50,
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
        self._start()
        self._scan("customer")
        if self.scan_events and not self.stop.is_set():
            self._scan("event")
        if not self.stop.is_set():
            self._finish()
        return self.result

    # -- phases ---------------------------------------------------------------------------
    def _start(self) -> None:
        with self.store.transaction() as conn:
            self.store.ensure_checkpoint(conn, self.stream)
        cp = self.store.checkpoint(self.stream)
        if cp is not None and cp.backfill_state == "running":
            self.result.resumed = True
            self.result.recorded_offset = int(cp.backfill_offset or 0)
            self.log.info("resuming backfill", recorded_offset=self.result.recorded_offset)
            return
        last = self.client.last_offset()
        hi = iso_ms(int((time.time() + 86_400) * 1000))
        with self.store.transaction() as conn:
            ops.clear_slices(conn, self.stream)
            ops.put_slices(conn, self.stream, "customer", [("1970-01-01T00:00:00.000Z", hi)])
            ops.put_slices(conn, self.stream, "customer", [(NULL_SLICE, NULL_SLICE)])
            if self.scan_events:
                ops.put_slices(conn, self.stream, "event", [("1970-01-01T00:00:00.000Z", hi)])
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
        self.log.info("backfill done", customers=self.result.customers, events=self.result.events)

    def _scan(self, kind: str) -> None:
        while not self.stop.is_set():
            with self.store.engine.connect() as conn:
                todo = ops.slices_todo(conn, self.stream, kind)
            if not todo:
                return
            lo, hi = todo[0]
            if kind == "customer":
                self._customer_step(lo, hi)
            else:
                self._event_step(lo, hi)

    # -- customers ------------------------------------------------------------------------
    def _customer_query(self, lo: str, hi: str) -> dict[str, Any]:
        if lo == NULL_SLICE:
            conds = [_atomic("registeredAt", "IS_NULL", None)]
        else:
            conds = [_atomic("registeredAt", "GTE", lo), _atomic("registeredAt", "LT", hi)]
        if self.since:
            conds.append(_atomic("updatedAt", "GTE", self.since))
        return _query(conds)

    def _customer_step(self, lo: str, hi: str) -> None:
        """One search page of slice ``[lo, hi)``: split it, or apply the page and move on."""
        if lo == NULL_SLICE:
            self._null_slice()
            return
        try:
            page = self._search_customers(lo, hi, 0)
        except SearchTooBroad:
            page = None
        if page is None or page.total >= page.max_elements:
            start = to_ms(lo)
            if page is not None and page.elements:  # nothing in the slice before the first
                start = max(start, to_ms(str(page.elements[0]["registeredAt"])))
            self._split("customer", lo, start, to_ms(hi))
            return
        elements = page.elements
        if len(elements) < self.page_size:
            self._apply("customer", elements, lo, hi, hi, finished=True)
            return
        cursor = iso_ms(to_ms(str(elements[-1]["registeredAt"])))
        if cursor <= lo:  # a full page sharing one registeredAt: page through that instant
            cursor = iso_ms(to_ms(lo) + ONE_MS)
            elements = self._all_pages(lo, cursor)
        self._apply("customer", elements, lo, cursor, hi, finished=cursor >= hi)

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
    def _event_step(self, lo: str, hi: str) -> None:
        """Events of ``[lo, hi]`` (both inclusive), newest first: ``hi`` moves down."""
        self.result.queries += 1
        try:
            page = self.client.search_events(
                0, self.page_size, types=self.event_types, date_from=lo, date_to=hi
            )
        except SearchTooBroad:
            page = None
        if page is None or page.total >= page.max_elements:
            self._split("event", lo, to_ms(lo), to_ms(hi))
            return
        elements = page.elements
        if len(elements) < self.page_size:
            self._apply("event", elements, lo, lo, hi, finished=True)
            return
        cursor = iso_ms(to_ms(str(elements[-1]["date"])))
        if cursor >= hi:  # a full page of one instant: fetch that instant page by page
            elements, cursor = self._event_instant(hi), iso_ms(to_ms(hi) - ONE_MS)
        self._apply("event", elements, lo, lo, cursor, finished=cursor < lo)

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
    def _split(self, kind: str, lo: str, start: int, end: int) -> None:
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
        """Apply one search page and record the slice's progress, in one transaction."""
        if self.on_page is not None:
            self.on_page()
        offset = self.result.recorded_offset
        items = [
            Incoming("backfill", kind, "UPDATE", doc, orjson.dumps(doc).decode(), offset, n)
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
