"""``sync --once``: ingest to the end of the stream, deliver everything due, report.

The daemon (:mod:`.daemon`) runs the same two halves on a schedule. Both take the polling
lease before reading; a process that does not get it (another one is polling) skips ingest and
only delivers.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config.models import SyncerConfig
from ..logs import get_logger
from ..source.contacthub import ContacthubClient
from ..state import retention_ops
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
    """The outcome of one ``sync --once``."""

    run_id: str
    ingest: IngestResult | None = None
    ingest_skipped: str | None = None
    targets: dict[str, TargetStats] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return all(stats.clean for stats in self.targets.values())

    @property
    def exit_code(self) -> int:
        return 0 if self.clean else 1

    def counts(self) -> dict[str, Any]:
        out: dict[str, Any] = {"targets": {n: s.as_dict() for n, s in self.targets.items()}}
        if self.ingest is not None:
            out["ingest"] = {
                "pages": self.ingest.pages,
                "updates": self.ingest.updates,
                "offset": self.ingest.offset,
                "reason": self.ingest.reason,
                **self.ingest.stats.as_dict(),
            }
        if self.ingest_skipped:
            out["ingest_skipped"] = self.ingest_skipped
        return out

    def summary(self) -> list[str]:
        lines = []
        if self.ingest is not None:
            i = self.ingest
            lines.append(
                f"ingest: {i.updates} updates in {i.pages} pages, offset {i.offset} ({i.reason}); "
                f"{i.stats.deliveries_created} deliveries created, "
                f"{i.stats.deliveries_coalesced} coalesced"
            )
        elif self.ingest_skipped:
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
    client: ContacthubClient,
    *,
    stop: threading.Event | None = None,
    deliverer_factory: DelivererFactory = default_deliverer,
    owner: str | None = None,
    retry_window: float = RETRY_WINDOW,
) -> SyncReport:
    """Ingest to the end, then deliver until nothing is due; recorded in ``runs``.

    Retries that come due within ``retry_window`` seconds of the queue draining are waited
    for, so a few transient 5xx do not make a one-shot run report failure."""
    report = SyncReport(new_run_id("sync"))
    log = get_logger(component="sync", run_id=report.run_id)
    store.run_started(report.run_id, "sync")
    status, message = "failed", None
    try:
        lease = Lease(store, client.stream, owner or new_owner(), LEASE_TTL)
        applier = Applier(rules_from_config(cfg))
        report.ingest = ingest_to_end(
            store, client, applier, page_size=cfg.source.page_size, lease=lease, stop=stop
        )
        if report.ingest is None:
            holder, _ = lease.holder()
            report.ingest_skipped = f"another process holds the polling lease ({holder})"
            log.warning("ingest skipped: the polling lease is held", holder=holder)
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
        status = "ok" if report.clean else "failed"
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        store.run_finished(report.run_id, status, report.counts(), message)
    return report
