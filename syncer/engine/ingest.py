"""Ingest: read the update stream from the committed offset, one transaction per page.

Per page, in one transaction: the offset moves from the committed value to ``nextOffset``
with a compare-and-set (first, so that on PostgreSQL a second writer waits on the row and then
finds it moved), and the :class:`~syncer.engine.apply.Applier` records the page (inbox,
entities, matches, suppression, deliveries). A crash anywhere leaves either the whole page
applied with its offset, or nothing: no update is lost and none is applied twice.

While one page is written, the next one is already being fetched and turned into documents
(one page of read-ahead in a helper thread, which runs while SQLite works without the GIL), so
reading and writing overlap; the read-ahead is dropped if the page's transaction does not
commit. Customers that events need and the inbox does not hold are
fetched before the transaction (cached for the run), so no network call runs inside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection

from ..logs import get_logger
from ..source.contacthub import ContacthubClient, UpdatesPage
from ..state import ingest_ops as ops
from ..state.store import Store
from .apply import Applier, ApplyStats, Incoming

_KINDS = {"CUSTOMER": "customer", "EVENT": "event"}
KNOWN_CUSTOMERS_MAX = 500_000


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
        # One connection for the whole run, one transaction per page on it: opening a SQLite
        # connection (pragmas, WAL) costs more than writing a page.
        with (
            self.store.engine.connect() as conn,
            ThreadPoolExecutor(1, thread_name_prefix="ingest-read-ahead") as pool,
        ):
            self._conn = conn
            pending: Future[_Fetched] | None = pool.submit(self._fetch, result.offset)
            while pending is not None:
                page, items = pending.result()
                pending = None
                if page.next_offset <= result.offset:
                    if page.updates:
                        self.log.error(
                            "stream page not applied: its nextOffset does not move forward",
                            committed=result.offset,
                            next_offset=page.next_offset,
                            updates=len(page.updates),
                        )
                        result.reason = "not_increasing"
                    break
                full = len(page.updates) >= self.page_size
                more = full and not self.stop.is_set()
                more = more and (max_pages is None or result.pages + 1 < max_pages)
                if more:
                    pending = pool.submit(self._fetch, page.next_offset)
                try:
                    self._write_page(page, items, result)
                except _OffsetMoved:
                    self.log.warning(
                        "offset moved by another writer; stopping this run", expected=result.offset
                    )
                    result.reason = "conflict"
                    if pending is not None:
                        pending.cancel()
                    break
                if pending is None and full:
                    result.reason = "stopped" if self.stop.is_set() else "max_pages"
        return result

    def _fetch(self, offset: int) -> _Fetched:
        """The page at ``offset`` and its documents (in the read-ahead thread)."""
        page = self.client.updates(offset, self.page_size)
        return page, self._items(page, offset)

    def _write_page(self, page: UpdatesPage, items: list[Incoming], result: IngestResult) -> None:
        old = result.offset
        items = self._fetched_customers(items, old) + items
        if self.on_page is not None:
            self.on_page()
        with self._conn.begin():
            conn = self._conn
            if not ops.advance_offset(conn, self.stream, old, page.next_offset):
                raise _OffsetMoved
            stats = self.applier.apply(conn, self.stream, items)
        result.offset = page.next_offset
        result.pages += 1
        result.updates += len(page.updates)
        result.stats.add(stats)
        self.log.debug("page ingested", offset=page.next_offset, updates=len(page.updates))

    def _items(self, page: UpdatesPage, offset: int) -> list[Incoming]:
        items: list[Incoming] = []
        append, dumps = items.append, orjson.dumps
        for position, update in enumerate(page.updates):
            try:
                entity = update["entity"]
                data, kind, operation = entity["data"], _KINDS[entity["type"]], update["operation"]
                payload = dumps(data).decode()
                append(Incoming("stream", kind, operation[:10], data, payload, offset, position))
            except (KeyError, TypeError, AttributeError):
                # Recorded so the inbox mirrors the stream exactly, but nothing to apply.
                self.log.warning(
                    "malformed stream update recorded, not applied",
                    offset=offset,
                    position=position,
                )
                raw = dumps(update).decode()
                append(Incoming("stream", "unknown", "UNKNOWN", {}, raw, offset, position))
        return items

    def _fetched_customers(self, items: list[Incoming], offset: int) -> list[Incoming]:
        """Customers that events of this page need and nobody has stored (fetched, cached)."""
        if not self.applier.wants_event_customers:
            return []
        known = self.known_customers
        for i in items:
            if i.entity_type == "customer":
                known.add(i.entity_id)
        wanted = {
            str(i.doc["customerId"])
            for i in items
            if i.entity_type == "event" and i.operation != "DELETE" and i.doc.get("customerId")
        } - known
        if not wanted:
            return []
        with self._conn.begin():
            stored = set(ops.entity_versions(self._conn, "customer", wanted))
            stored |= ops.suppressed(self._conn, wanted)
        known.update(stored)
        out: list[Incoming] = []
        for cid in sorted(wanted - stored):
            if cid not in self.customer_cache:
                self.customer_cache[cid] = self.client.get_customer(cid)
            doc = self.customer_cache[cid]
            if doc is not None:
                position = len(items) + len(out)
                payload = orjson.dumps(doc).decode()
                out.append(Incoming("fetch", "customer", "UPDATE", doc, payload, offset, position))
        if len(known) > KNOWN_CUSTOMERS_MAX:  # a cache, not the truth: bound its memory
            known.clear()
        return out
