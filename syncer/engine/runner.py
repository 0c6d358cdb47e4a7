"""``sync --once``: ingest to the end of the stream, deliver everything due, report.

The daemon (:mod:`.daemon`) runs the same two halves on a schedule. Both take the polling
lease before reading; a process that does not get it (another one is polling) skips ingest and
only delivers.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config.models import SyncerConfig
from ..errors import AuthError, RetryableError, SyncerError
from ..logs import get_logger
from ..source.contacthub import ContacthubClient
from ..state import retention_ops, search_ops
from ..state.store import Store
from .apply import Applier, rules_from_config
from .deliver import Deliverer, TargetStats
from .ingest import Ingestor, IngestResult
from .leader import Lease, new_owner

LEASE_TTL = 60.0


class DelivererLike(Protocol):
    """What the runner needs of :class:`~syncer.engine.deliver.Deliverer`."""

    def run_all_once(
        self, force_flush: bool = True, *, wait_for_retries: float = 0.0
    ) -> dict[str, TargetStats]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


DelivererFactory = Callable[[SyncerConfig, Store, str], DelivererLike]


def default_deliverer(cfg: SyncerConfig, store: Store, run_id: str) -> DelivererLike:
    return Deliverer(cfg, store, run_id=run_id)


def new_run_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


@dataclass
class SyncReport:
    """The outcome of one ``sync --once``: ``ingest``/``ingest_skipped`` are of the first
    stream (the only one of a single-source config); ``streams`` has every stream's result,
    ``source_errors`` the streams whose source failed (the others went on)."""

    run_id: str
    ingest: IngestResult | None = None
    ingest_skipped: str | None = None
    targets: dict[str, TargetStats] = field(default_factory=dict)
    streams: dict[str, IngestResult | None] = field(default_factory=dict)
    source_errors: dict[str, SyncerError] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return all(stats.clean for stats in self.targets.values())

    @property
    def exit_code(self) -> int:
        return 0 if self.clean else 1

    def counts(self) -> dict[str, Any]:
        out: dict[str, Any] = {"targets": {n: s.as_dict() for n, s in self.targets.items()}}
        if self.ingest is not None:
            out["ingest"] = _ingest_counts(self.ingest)
        if self.ingest_skipped:
            out["ingest_skipped"] = self.ingest_skipped
        if len(self.streams) > 1:
            out["streams"] = {
                s: None if r is None else _ingest_counts(r) for s, r in self.streams.items()
            }
        if self.source_errors:
            out["source_errors"] = {s: str(e) for s, e in self.source_errors.items()}
        return out

    def summary(self) -> list[str]:
        lines = []
        several = len(self.streams) > 1
        for stream, i in self.streams.items():
            head = f"ingest {stream}" if several else "ingest"
            if stream in self.source_errors:
                lines.append(f"{head}: failed: {self.source_errors[stream]}")
            elif i is not None:
                lines.append(
                    f"{head}: {i.updates} updates in {i.pages} pages, offset {i.offset} "
                    f"({i.reason}); {i.stats.deliveries_created} deliveries created, "
                    f"{i.stats.deliveries_coalesced} coalesced"
                )
            else:
                lines.append(f"{head} skipped: another process holds the polling lease")
        if not self.streams and self.ingest_skipped:
            lines.append(f"ingest skipped: {self.ingest_skipped}")
        for name, s in sorted(self.targets.items()):
            line = (
                f"{name}: {s.done} done ({s.created} created, {s.updated} updated, "
                f"{s.unchanged} unchanged, {s.left} left, {s.deleted} deleted), "
                f"{s.dead + s.invalid} dead, {s.waiting} still failing"
            )
            lines.append(line + (f"; stopped: {s.error}" if s.error else ""))
        verdict = "all records delivered" if self.clean else "some records failed or ended dead"
        lines.append(f"result: {verdict} (see `syncer status` and `syncer dlq list`)")
        return lines


def _ingest_counts(i: IngestResult) -> dict[str, Any]:
    return {
        "pages": i.pages,
        "updates": i.updates,
        "offset": i.offset,
        "reason": i.reason,
        **i.stats.as_dict(),
    }


def ingest_to_end(
    store: Store,
    client: ContacthubClient,
    applier: Applier,
    *,
    page_size: int,
    lease: Lease,
    stop: threading.Event | None = None,
) -> IngestResult | None:
    """Ingest while holding the lease; ``None`` when another process holds it."""
    if not lease.acquire():
        return None
    try:
        # the stream's end, so status and the lag gauges are right after a one-shot run too
        store.record_stream_position(client.stream, client.last_offset())
        ingestor = Ingestor(
            store, client, applier, page_size=page_size, stop=stop, on_page=lease.renew
        )
        result = ingestor.run_to_end()
        if result.reason == "caught_up":
            store.record_stream_position(client.stream, result.offset)
        return result
    finally:
        lease.release()


# How long `sync --once` waits for retries due soon after the queue drains (seconds).
RETRY_WINDOW = 60.0


def sync_once(
    cfg: SyncerConfig,
    store: Store,
    client: ContacthubClient | Sequence[ContacthubClient],
    *,
    stop: threading.Event | None = None,
    deliverer_factory: DelivererFactory = default_deliverer,
    owner: str | None = None,
    retry_window: float = RETRY_WINDOW,
) -> SyncReport:
    """Ingest every stream (``client``: one, or one per source node) to its end, then deliver
    until nothing is due; recorded in ``runs``. A stream whose source fails (unreachable,
    refused) is reported and the others are still read and delivered; the first such error is
    raised at the end.

    Retries that come due within ``retry_window`` seconds of the queue draining are waited
    for, so a few transient 5xx do not make a one-shot run report failure."""
    clients = [client] if isinstance(client, ContacthubClient) else list(client)
    report = SyncReport(new_run_id("sync"))
    log = get_logger(component="sync", run_id=report.run_id)
    store.run_started(report.run_id, "sync")
    status, message = "failed", None
    owner = owner or new_owner()
    try:
        appliers: dict[str, Applier] = {}
        for n, c in enumerate(clients):
            if stop is not None and stop.is_set():
                break
            lease = Lease(store, c.stream, owner, LEASE_TTL)
            if c.source not in appliers:
                appliers[c.source] = Applier(rules_from_config(cfg, c.source))
            try:
                result = ingest_to_end(
                    store,
                    c,
                    appliers[c.source],
                    page_size=cfg.sources[c.source].page_size,
                    lease=lease,
                    stop=stop,
                )
            except (RetryableError, AuthError) as exc:  # this source only: read the others
                report.source_errors[c.stream] = exc
                report.streams[c.stream] = None
                log.warning("source failed; other sources go on", stream=c.stream, error=str(exc))
                continue
            report.streams[c.stream] = result
            if n == 0:
                report.ingest = result
            if result is None:
                holder, _ = lease.holder()
                if n == 0:
                    report.ingest_skipped = f"another process holds the polling lease ({holder})"
                log.warning(
                    "ingest skipped: the polling lease is held", holder=holder, stream=c.stream
                )
        if stop is None or not stop.is_set():
            deliverer = deliverer_factory(cfg, store, report.run_id)
            try:
                report.targets = deliverer.run_all_once(
                    force_flush=True, wait_for_retries=retry_window
                )
            finally:
                deliverer.close()
            # erasures every target acknowledged in this run leave the state now (as the
            # daemon's scrub job does): a one-shot run has no later job to do it
            retention_ops.scrub(store)
            search_ops.catch_up(store)  # the console finds what this run ingested by its keys
        status = "ok" if report.clean and not report.source_errors else "failed"
        if report.source_errors:
            raise next(iter(report.source_errors.values()))
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        store.run_finished(report.run_id, status, report.counts(), message)
    return report
