"""Ingest: read the update stream from the committed offset, in transactions of whole pages.

Per page, inside the open transaction: the offset moves from its current value to
``nextOffset`` with a compare-and-set (first, so that on PostgreSQL a second writer waits on
the row and then finds it moved), and the :class:`~syncer.engine.apply.Applier` records the
page (inbox, entities, matches, suppression, deliveries). A crash anywhere leaves either whole
pages applied with their offset, or nothing of them: no update is lost and none is applied
twice.

While the stream has a backlog, consecutive pages share one transaction (a *group*): most of
a commit's cost is writing the index pages that a page's random customer ids dirtied, and
consecutive pages dirty mostly the same ones. A run commits its first page alone and each
group may then hold twice the updates of the one before, up to :data:`GROUP_MAX_UPDATES` and
:data:`GROUP_MAX_SECONDS`, so a run that is stopped (or killed) early has still made progress.
The stream's last page always ends its group, so a caught-up stream commits every page at once.

While one page is written, the next one is already being fetched and turned into documents
(one page of read-ahead in a helper thread, which runs while SQLite works without the GIL), so
reading and writing overlap; the read-ahead is dropped if the transaction does not commit.
Customers that events need and the state does not hold are fetched with no transaction open
(cached for the run), so no network call runs while the write lock is held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, RootTransaction

from ..logs import get_logger
from ..source.contacthub import ContacthubClient, UpdatesPage
from ..state import ingest_ops as ops
from ..state.store import Store
from .apply import Applier, ApplyStats, Incoming

_KINDS = {"CUSTOMER": "customer", "EVENT": "event"}
KNOWN_CUSTOMERS_MAX = 500_000
# A group of pages is committed once it holds this many updates or has been open this long
# (other writers, e.g. delivery outcomes, wait for the write lock meanwhile).
GROUP_MAX_UPDATES = 20_000
GROUP_MAX_SECONDS = 2.0


_Fetched = tuple[UpdatesPage, list[Incoming]]


class _OffsetMoved(Exception):
    """The committed offset changed under us (another writer); the page is rolled back."""


@dataclass
class IngestResult:
    """What one :meth:`Ingestor.run_to_end` did and why it stopped."""

    pages: int = 0
    updates: int = 0
    offset: int = 0
    reason: str = "caught_up"  # caught_up | stopped | max_pages | conflict | not_increasing
    stats: ApplyStats = field(default_factory=ApplyStats)


class Ingestor:
    """Reads one source's update stream into the state store.

    ``on_page`` runs before each page is written (the daemon renews its lease there and
    raises when it lost it); ``stop`` ends the run between pages.
    """

    def __init__(
        self,
        store: Store,
        client: ContacthubClient,
        applier: Applier,
        *,
        page_size: int,
        stop: threading.Event | None = None,
        on_page: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.applier = applier
        self.page_size = page_size
        self.stream = client.stream
        self.prefix = client.prefix  # the source's id namespace in the state
        self.stop = stop or threading.Event()
        self.on_page = on_page
        self.customer_cache: dict[str, dict[str, Any] | None] = {}
        self.known_customers: set[str] = set()  # customer ids known to be stored
        self._conn: Connection
        self.log = get_logger(component="ingest", stream=self.stream)

    def committed_offset(self) -> int:
        with self.store.transaction() as conn:
            self.store.ensure_checkpoint(conn, self.stream)
            return ops.read_offset(conn, self.stream)

    def run_to_end(self, max_pages: int | None = None) -> IngestResult:
        """Ingest pages until the stream is exhausted (or stop/max_pages)."""
        self.customer_cache.clear()
        result = IngestResult(offset=self.committed_offset())
        # One connection for the whole run: opening a SQLite connection (pragmas, WAL) costs
        # more than writing a page.
        with (
            self.store.engine.connect() as conn,
            ThreadPoolExecutor(1, thread_name_prefix="ingest-read-ahead") as pool,
        ):
            self._conn = conn
            group = _Group(conn, result, self.log)
            try:
                self._read_pages(pool, group, max_pages)
            finally:
                group.rollback()  # whatever was not committed (an error, a lost lease)
        return result

    def _read_pages(self, pool: ThreadPoolExecutor, group: _Group, max_pages: int | None) -> None:
        result = group.result
        pending: Future[_Fetched] | None = pool.submit(self._fetch, result.offset)
        while pending is not None:
            page, items = self._next_page(pending, group)
            pending = None
            if page.next_offset <= group.offset:
                if page.updates:
                    self.log.error(
                        "stream page not applied: its nextOffset does not move forward",
                        committed=group.offset,
                        next_offset=page.next_offset,
                        updates=len(page.updates),
                    )
                    result.reason = "not_increasing"
                break
            full = len(page.updates) >= self.page_size
            more = full and not self.stop.is_set()
            more = more and (max_pages is None or result.pages + group.pages + 1 < max_pages)
            if more:
                pending = pool.submit(self._fetch, page.next_offset)
            try:
                self._write_page(page, items, group)
            except _OffsetMoved:
                group.rollback()
                self.log.warning(
                    "offset moved by another writer; stopping this run", expected=group.offset
                )
                result.reason = "conflict"
                if pending is not None:
                    pending.cancel()
                break
            if pending is None or group.due():
                group.commit()
            if pending is None and full:
                result.reason = "stopped" if self.stop.is_set() else "max_pages"
        group.commit()  # a page that did not move the offset ends the run: keep the others

    @staticmethod
    def _next_page(pending: Future[_Fetched], group: _Group) -> _Fetched:
        """The next fetched page. An open group waits for it at most until it is due, then
        commits: no write transaction (SQLite's write lock) is held across a fetch that is
        slow or retrying, so delivery outcomes never wait on Contacthub."""
        if group.open and not pending.done():
            try:
                return pending.result(timeout=max(0.0, group.time_left()))
            except TimeoutError:  # concurrent.futures raises the builtin (3.11+)
                group.commit()
        return pending.result()

    def _fetch(self, offset: int) -> _Fetched:
        """The page at ``offset`` and its documents (in the read-ahead thread)."""
        page = self.client.updates(offset, self.page_size)
        return page, self._items(page, offset)

    def _write_page(self, page: UpdatesPage, items: list[Incoming], group: _Group) -> None:
        items = self._fetched_customers(items, group) + items
        if not group.open:
            if self.on_page is not None:
                self.on_page()  # with no transaction open: it writes the lease
            group.begin()
        conn = self._conn
        if not ops.advance_offset(conn, self.stream, group.offset, page.next_offset):
            raise _OffsetMoved
        group.add(page, self.applier.apply(conn, self.stream, items))

    def _items(self, page: UpdatesPage, offset: int) -> list[Incoming]:
        items: list[Incoming] = []
        append, dumps, prefix = items.append, orjson.dumps, self.prefix
        for position, update in enumerate(page.updates):
            try:
                entity = update["entity"]
                data, kind, operation = entity["data"], _KINDS[entity["type"]], update["operation"]
                payload = dumps(data).decode()
                append(
                    Incoming(
                        "stream", kind, operation[:10], data, payload, offset, position, prefix
                    )
                )
            except (KeyError, TypeError, AttributeError):
                # Recorded so the inbox mirrors the stream exactly, but nothing to apply.
                self.log.warning(
                    "malformed stream update recorded, not applied",
                    offset=offset,
                    position=position,
                )
                raw = dumps(update).decode()
                append(Incoming("stream", "unknown", "UNKNOWN", {}, raw, offset, position, prefix))
        return items

    def _fetched_customers(self, items: list[Incoming], group: _Group) -> list[Incoming]:
        """Customers that events of this page need and nobody has stored (fetched, cached)."""
        if not self.applier.wants_event_customers:
            return []
        known = self.known_customers
        for i in items:
            if i.entity_type == "customer":
                known.add(i.entity_id)
        wanted = {
            i.customer_id
            for i in items
            if i.entity_type == "event" and i.operation != "DELETE" and i.customer_id is not None
        } - known
        if not wanted:
            return []
        if group.open:  # the open group's pages count as stored
            stored = self._stored_customers(wanted)
        else:
            with self._conn.begin():
                stored = self._stored_customers(wanted)
        known.update(stored)
        missing = sorted(wanted - stored)
        if any(cid not in self.customer_cache for cid in missing):
            group.commit()  # no network call while the write lock is held
        offset = group.offset
        out: list[Incoming] = []
        for cid in missing:
            if cid not in self.customer_cache:  # the API knows the id without our namespace
                self.customer_cache[cid] = self.client.get_customer(cid[len(self.prefix) :])
            doc = self.customer_cache[cid]
            if doc is not None:
                position = len(items) + len(out)
                payload = orjson.dumps(doc).decode()
                out.append(
                    Incoming(
                        "fetch", "customer", "UPDATE", doc, payload, offset, position, self.prefix
                    )
                )
        if len(known) > KNOWN_CUSTOMERS_MAX:  # a cache, not the truth: bound its memory
            known.clear()
        return out

    def _stored_customers(self, ids: set[str]) -> set[str]:
        stored = set(ops.entity_versions(self._conn, "customer", ids))
        return stored | ops.suppressed(self._conn, ids)


class _Group:
    """Pages written in the open transaction and not committed yet; :meth:`commit` adds them
    to ``result``, which therefore only ever counts committed pages."""

    def __init__(self, conn: Connection, result: IngestResult, log: Any) -> None:
        self.conn, self.result, self.log = conn, result, log
        self._tx: RootTransaction | None = None
        self.max_updates = 1  # the first group is one page; then it doubles (module docstring)
        self._reset()

    def _reset(self) -> None:
        self._tx = None
        self.offset = self.result.offset
        self.pages = self.updates = 0
        self.stats = ApplyStats()
        self.started = time.monotonic()

    @property
    def open(self) -> bool:
        return self._tx is not None

    def begin(self) -> None:
        self._reset()
        self._tx = self.conn.begin()

    def add(self, page: UpdatesPage, stats: ApplyStats) -> None:
        self.offset = page.next_offset
        self.pages += 1
        self.updates += len(page.updates)
        self.stats.add(stats)

    def due(self) -> bool:
        return self.updates >= self.max_updates or self.time_left() <= 0

    def time_left(self) -> float:
        return GROUP_MAX_SECONDS - (time.monotonic() - self.started)

    def commit(self) -> None:
        if self._tx is None:
            return
        self._tx.commit()
        r = self.result
        r.offset, r.pages, r.updates = self.offset, r.pages + self.pages, r.updates + self.updates
        r.stats.add(self.stats)
        self.log.debug("pages ingested", offset=self.offset, pages=self.pages, updates=self.updates)
        self.max_updates = min(GROUP_MAX_UPDATES, max(self.max_updates, 2 * self.updates))
        self._reset()

    def rollback(self) -> None:
        if self._tx is not None:
            self._tx.rollback()
        self._reset()
