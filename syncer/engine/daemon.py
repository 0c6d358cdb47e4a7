"""``syncer run``: "sync once" on a schedule (APScheduler 3, ``BlockingScheduler``).

Jobs: one ingest job per source node's stream (every poll_interval of its source; each its own
lease and its own backoff while its source fails, so one source never holds up another) and
one delivery job per target (every ``deliver_interval``), with ``coalesce=True``; ingest jobs
have ``max_instances=1``, delivery jobs see "Wake-up". Every job writes a heartbeat row
(``syncer health`` reads them). Three small state jobs: ``search`` (every
``search_ops.INTERVAL``) reads what ingest wrote into the console's search keys, ``scrub``
(every ``SCRUB_INTERVAL``) removes the personal data of erasures every target acknowledged,
``prune`` (every ``retention.interval``) applies the retention settings
(:mod:`syncer.state.retention_ops`) and rewrites the SQLite file if erasures were scrubbed
since it last did; all are idempotent, so replicas may all run them.

Wake-up: an ingest run that committed new (or reopened) deliveries wakes the targets' delivery
jobs at once instead of leaving the rows to the next delivery tick, so a change reaches its
target about one poll after it was made. One run of a target's delivery job delivers at a time
(a per-target flag, not APScheduler's instance count): a delivery job woken while it delivers
claims once more before it ends instead of starting again. Delivery jobs allow two APScheduler
instances so that a wake-up coming just after a run released the flag, while APScheduler still
counts that run, is started and not refused; a run that finds the flag taken (a tick during a
long run) returns at once. The ticks stay: they deliver retries that fall due and, on a
follower (which does not ingest), everything. A target with a job in progress (an NP6 import
whose next poll is due) is woken when the job is due, not at the next tick.

Leadership: the ingest job polls only while it holds the stream's lease, renewed as it goes
and kept between ticks; a second ``syncer run`` on the same PostgreSQL database finds the lease
held, does not poll, and delivers (rows are claimed with ``FOR UPDATE SKIP LOCKED``). When the
leader stops or dies, the lease is released or expires and a follower takes over.

State database unavailable (PostgreSQL down or restarting, SQLite locked past its busy timeout):
the job's transaction rolls back (so the offset only ever moves with a committed page), one
warning line is logged without a traceback, and that job skips its ticks for a backoff that
doubles up to ``DB_BACKOFF_MAX``; the first tick that works again logs that it is back.

SIGTERM/SIGINT: stop scheduling, tell running jobs to stop (ingest stops between pages, the
deliverer stops claiming and releases what it had queued), wait for them at most
``shutdown_timeout`` seconds, release the lease, record the run, exit 0. Work is committed page
by page and batch by batch, so nothing half-done survives a stop: it is either committed or
rolled back.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.exc import SQLAlchemyError

from .. import logs
from ..config.models import SyncerConfig
from ..console.pause import is_paused
from ..errors import RetryableError, StopError
from ..http import backoff_delay
from ..logs import get_logger
from ..observability import metrics
from ..observability.server import HealthServer, Liveness
from ..source.contacthub import ContacthubClient
from ..state import retention_ops, search_ops
from ..state.db import db_unavailable
from ..state.store import Store
from .apply import Applier, rules_from_config
from .deliver import Deliverer
from .ingest import Ingestor
from .leader import Lease, LeaseLost, new_owner
from .runner import new_run_id

DELIVER_INTERVAL = 2.0
HEARTBEAT_EVERY = 10.0
DB_BACKOFF_MAX = 30.0  # seconds a job waits at most between tries while the database is down
SOURCE_BACKOFF_MAX = 300.0  # seconds an ingest job waits at most while its source keeps failing
SCRUB_INTERVAL = 60.0  # seconds between scrubs of acknowledged erasures
SCRUB_BATCHES = 5  # batches per scrub run: a run ends in time, the rest waits for the next
SEARCH_BATCHES = 20  # inbox batches per search-keys run (100,000 rows), the same reason


class _Stream:
    """One source node's update stream as the daemon polls it: own lease, job, backoff."""

    def __init__(
        self, cfg: SyncerConfig, store: Store, client: ContacthubClient, owner: str, job: str
    ) -> None:
        src = cfg.sources[client.source]
        self.client, self.job = client, job
        self.poll_interval, self.page_size = src.poll_interval, src.page_size
        self.lease = Lease(store, client.stream, owner, max(60.0, 3 * self.poll_interval))
        self.applier = Applier(rules_from_config(cfg, client.source))
        self.problem: str | None = None  # why the last source call failed (readiness)


class Daemon:
    """The scheduler shell around ingest and delivery; :meth:`run` blocks until stopped.

    ``client``: one, or one per source node (:func:`~syncer.source.sources.source_clients`);
    each stream is its own ingest job with its own lease and source backoff, so a slow or
    failing source never delays the others."""

    def __init__(
        self,
        cfg: SyncerConfig,
        store: Store,
        client: ContacthubClient | Sequence[ContacthubClient],
        *,
        stop: threading.Event | None = None,
        owner: str | None = None,
        deliverer: Deliverer | None = None,
        deliver_interval: float = DELIVER_INTERVAL,
        shutdown_timeout: float = 30.0,
        scrub_interval: float = SCRUB_INTERVAL,
    ) -> None:
        clients = [client] if isinstance(client, ContacthubClient) else list(client)
        self.cfg, self.store, self.client = cfg, store, clients[0]
        self.stop = stop or threading.Event()
        self.owner = owner or new_owner()
        self.run_id = new_run_id("daemon")
        self.deliverer = deliverer or Deliverer(cfg, store, run_id=self.run_id)
        self.deliver_interval = deliver_interval
        self.shutdown_timeout = shutdown_timeout
        self.scrub_interval = scrub_interval
        # the single stream keeps its job name "ingest"; several are "ingest:<stream>"
        self.streams = [
            _Stream(
                cfg, store, c, self.owner, "ingest" if len(clients) == 1 else f"ingest:{c.stream}"
            )
            for c in clients
        ]
        first = self.streams[0]
        self.poll_interval, self.lease, self.applier = (
            first.poll_interval,
            first.lease,
            first.applier,
        )
        # a thread per ingest job and two per delivery job: a source stuck in its retries
        # holds only its own thread
        workers = max(10, len(self.streams) + 2 * len(cfg.targets) + 2)  # 10: the default
        self.scheduler = BlockingScheduler(
            timezone="UTC", executors={"default": ThreadPoolExecutor(workers)}
        )
        self.exit_code = 0
        self.dangling = False  # jobs still running after shutdown_timeout
        self.counts: dict[str, Any] = {"ingest_pages": 0, "ingest_updates": 0, "delivered": {}}
        self._running = 0
        self._idle = threading.Condition()
        # Delivery wake-ups (module docstring), guarded by _wake_lock: targets whose delivery
        # job delivers now (one run per target), and targets woken since their last claim.
        self._wake_lock = threading.Lock()
        self._delivering: set[str] = set()
        self._woken: set[str] = set()
        self.log = get_logger(component="daemon", owner=self.owner, run_id=self.run_id)
        self.liveness = Liveness()

    # -- lifecycle -------------------------------------------------------------------------
    def run(self, install_signals: bool = True) -> int:
        """Run until SIGTERM/SIGINT (or :meth:`request_stop`); returns the exit code."""
        logs.prefer_json()  # a service's log goes to an aggregator (unless the user chose)
        health = self._start_health_server()
        try:
            if install_signals:
                signal.signal(signal.SIGTERM, self._on_signal)
                signal.signal(signal.SIGINT, self._on_signal)
            self.store.run_started(self.run_id, "daemon")
            self._schedule()
            self.log.info(
                "daemon started",
                streams=[s.client.stream for s in self.streams],
                poll_interval=self.poll_interval,
            )
            if not self.stop.is_set():
                self.scheduler.start()
            self._finish()
        finally:
            health.stop()
        return self.exit_code

    def _start_health_server(self) -> HealthServer:
        """/metrics, /healthz and /readyz on ``metrics.address``. An address that cannot be
        bound stops the daemon before it does anything (exit 3): a daemon nobody can scrape
        or probe would run unseen, and an orchestrator would restart it as unhealthy."""
        address = self.cfg.metrics.address
        try:
            server = HealthServer(
                self.store,
                address,
                self._lease_state,
                liveness=self.liveness,
                source_problem=self._source_down,
                app=self._console_app(),
            ).start()
        except OSError as exc:
            detail = exc.strerror or str(exc)
            raise StopError(
                f"cannot serve /metrics and health on metrics.address {address}: {detail} "
                "(another process uses the port? free it or change metrics.address)"
            ) from None
        self.log.info("metrics server started", address=address, port=server.port)
        if server.bridge is not None:
            host = address.rpartition(":")[0] or "127.0.0.1"
            self.log.info("console served", url=f"http://{host}:{server.port}/")
        return server

    def _console_app(self) -> Any:
        """The web console for the metrics server (``console.enabled``), or None. Its access
        rules are the console's own: loopback only without a token, actions need the
        operator token (syncer.console.security)."""
        if not self.cfg.console.enabled:
            return None
        from ..console import console_app  # Starlette and Jinja2 only when served

        return console_app(self.store, self.cfg)

    def _source_down(self) -> str | None:
        """Readiness: a stream this process leads cannot read Contacthub (a follower does
        not read it)."""
        for s in self.streams:
            if s.problem is not None and s.lease.holder()[0] == self.owner:
                where = f" ({s.client.stream})" if len(self.streams) > 1 else ""
                return f"source unreachable{where}: {s.problem}"
        return None

    def _source_ok(self, stream: _Stream, ok: bool, problem: str | None = None) -> None:
        stream.problem = None if ok else (problem or "unknown error")
        metrics.SOURCE_UP.labels(stream.client.stream).set(1 if ok else 0)

    def _lease_state(self) -> str:
        """``leader`` while this process holds the polling lease of any stream."""
        leads = any(s.lease.holder()[0] == self.owner for s in self.streams)
        return "leader" if leads else "follower"

    def request_stop(self, code: int | None = None) -> None:
        """Stop taking new work; safe from any thread."""
        if code is not None:
            self.exit_code = code
        if self.stop.is_set():
            return
        self.stop.set()
        self.deliverer.stop()
        # Shutting the scheduler down from its own (main) thread inside a signal handler
        # would re-enter it; a helper thread does it.
        threading.Thread(target=self._shutdown_scheduler, name="daemon-stop").start()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.log.info("stop requested", signal=signal.Signals(signum).name)
        self.request_stop()

    def _shutdown_scheduler(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _finish(self) -> None:
        deadline = time.monotonic() + self.shutdown_timeout
        with self._idle:
            while self._running and time.monotonic() < deadline:
                self._idle.wait(0.1)
            self.dangling = self._running > 0
        if self.dangling:
            self.log.warning(
                "jobs still running at the shutdown deadline; uncommitted work rolls back",
                running=self._running,
            )
        if not self.dangling:
            self.deliverer.close()
        status = "ok" if self.exit_code == 0 else "failed"
        try:
            for s in self.streams:
                s.lease.release()
            self.store.run_finished(self.run_id, status, self.counts)
        except SQLAlchemyError as exc:  # the lease expires by itself; nothing else is lost
            self.log.error(
                "could not record the end of the run: the state database is unavailable",
                error=db_unavailable(exc) or type(exc).__name__,
            )
        self.log.info("daemon stopped", exit_code=self.exit_code)

    # -- jobs -----------------------------------------------------------------------------
    def _schedule(self) -> None:
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        now = datetime.now(UTC)
        # every loop is alive from the start; one that never runs goes stale (liveness)
        for s in self.streams:
            self.liveness.beat(s.job, s.poll_interval)
            self.scheduler.add_job(
                self._guard(s.job, s.poll_interval, self._ingest_job, s),
                "interval",
                seconds=s.poll_interval,
                id=s.job,
                next_run_time=now,
                **common,
            )
        for name in self.deliverer.target_names:
            self.liveness.beat(f"deliver:{name}", self.deliver_interval)
        for name in self.deliverer.target_names:
            self.scheduler.add_job(
                self._guard(f"deliver:{name}", self.deliver_interval, self._deliver_job, name),
                "interval",
                seconds=self.deliver_interval,
                id=f"deliver:{name}",
                next_run_time=now,
                **{**common, "max_instances": 2},  # see "Wake-up" in the module docstring
            )
        prune_every = self.cfg.retention.interval
        for job, interval, fn in (
            ("scrub", self.scrub_interval, self._scrub_job),
            ("prune", prune_every, self._prune_job),
            ("search", search_ops.INTERVAL, self._search_job),
        ):
            self.liveness.beat(job, interval)
            self.scheduler.add_job(
                self._guard(job, interval, fn),
                "interval",
                seconds=interval,
                id=job,
                next_run_time=now,
                **common,
            )

    def _guard(
        self, job: str, interval: float, fn: Callable[..., bool | None], *args: Any
    ) -> Callable[[], None]:
        """Run ``fn`` counted as in flight, with errors logged instead of killing the job.
        ``fn`` returns ``False`` when it did nothing (another run of the job is the live one).
        Every run that ends, however, beats the job's liveness: a failing loop is alive."""

        failures = 0  # the state database's
        source_failures = 0  # RetryableError: the source's (or a target's)
        not_before = 0.0

        def run() -> None:
            nonlocal failures, source_failures, not_before
            if self.stop.is_set():
                return
            if time.monotonic() < not_before:  # backing off from a database outage: alive
                self.liveness.beat(job, interval)
                return
            with self._idle:
                self._running += 1
            skipped = False
            try:
                if fn(*args) is False:
                    skipped = True
                    return
                if failures:
                    self.log.info("state database reachable again", job=job)
                failures = source_failures = 0
            except SQLAlchemyError as exc:
                reason = db_unavailable(exc)
                if reason is None:
                    self.log.exception("job crashed, retried next time", job=job)
                    return
                # Nothing was committed: the offset and the outcomes move only with a commit.
                failures += 1
                wait = backoff_delay(failures, 1.0, DB_BACKOFF_MAX)
                not_before = time.monotonic() + wait
                self.log.warning(
                    "state database unavailable; job backs off",
                    job=job,
                    error=reason,
                    retry_in=round(wait, 1),
                    failures=failures,
                )
            except StopError as exc:
                self.log.error("job stopped: the operator must act", job=job, error=str(exc))
                self.request_stop(code=3)
            except RetryableError as exc:
                # a source that keeps failing is polled less often (its own backoff, up to
                # SOURCE_BACKOFF_MAX); the other jobs are not touched
                source_failures += 1
                wait = backoff_delay(source_failures, interval, SOURCE_BACKOFF_MAX)
                not_before = time.monotonic() + (wait if source_failures > 1 else 0.0)
                self.log.warning(
                    "job failed, retried next time",
                    job=job,
                    error=str(exc),
                    failures=source_failures,
                )
            except Exception:
                self.log.exception("job crashed, retried next time", job=job)
            finally:
                if not skipped:
                    self.liveness.beat(job, interval)
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()

        return run

    def _ingest_job(self, s: _Stream) -> None:
        stream = s.client.stream
        job = f"ingest:{stream}"
        if not s.lease.acquire():
            holder, _ = s.lease.holder()
            self.log.debug(
                "not polling: another process holds the lease", holder=holder, stream=stream
            )
            return
        last_beat = [0.0]

        def on_page() -> None:
            self.liveness.beat(s.job, s.poll_interval)  # a long catch-up is alive
            s.lease.renew()
            if time.monotonic() - last_beat[0] > HEARTBEAT_EVERY:
                self.store.heartbeat(job, self.owner, s.poll_interval)
                last_beat[0] = time.monotonic()

        ingestor = Ingestor(
            self.store, s.client, s.applier, page_size=s.page_size, stop=self.stop, on_page=on_page
        )
        started = time.time()
        self.log.info("polling", event_kind="poll_start", at=started, stream=stream)
        try:
            # the stream's end, for syncer_stream_last_offset and the lag gauges
            self.store.record_stream_position(stream, s.client.last_offset())
            result = ingestor.run_to_end()
        except LeaseLost:
            self.log.warning("lease lost while polling; another process reads now", stream=stream)
            return
        except (RetryableError, StopError) as exc:  # raised by the source client
            self._source_ok(s, False, str(exc))
            raise
        finally:
            self.log.info(
                "polling done",
                event_kind="poll_end",
                started=started,
                at=time.time(),
                stream=stream,
            )
        self._source_ok(s, True)
        if result.reason == "caught_up":
            # at the end now: the last offset is the committed one
            self.store.record_stream_position(stream, result.offset)
            metrics.LAST_SUCCESS.labels(s.job).set(time.time())
        self.counts["ingest_pages"] += result.pages
        self.counts["ingest_updates"] += result.updates
        if result.stats.deliveries_created or result.stats.deliveries_coalesced:
            # The stats do not say which targets got rows: wake every target that has a
            # pipeline (one claim query each when it got nothing).
            for name in self.deliverer.target_names:
                self.wake_delivery(name)
        self.store.heartbeat(job, self.owner, s.poll_interval)

    def _scrub_job(self) -> None:
        # the file is rewritten after scrubs by the prune job (every retention.interval): a
        # VACUUM holds the write lock for as long as it takes, not a thing to do every minute
        scrubbed = retention_ops.scrub(self.store, max_batches=SCRUB_BATCHES, compact=False)
        if scrubbed:
            self.log.info("erasures scrubbed from the state database", customers=scrubbed)

    def _search_job(self) -> None:
        # the console's search keys, behind the stream (bounded: a tick ends in time)
        search_ops.catch_up(self.store, max_batches=SEARCH_BATCHES)

    def _prune_job(self) -> None:
        r = self.cfg.retention
        result = retention_ops.prune(
            self.store,
            done_deliveries_days=r.done_deliveries_days,
            inbox_days=r.inbox_days,
            delivery_log_days=r.delivery_log_days,
        )
        if any(result.as_dict().values()):
            self.log.info("state database pruned", **result.as_dict())

    def _deliver_job(self, name: str) -> bool:
        """Deliver what is due for target ``name`` until nothing is; ``False`` when another
        run of the job delivers for it (that run claims again before it ends)."""
        if is_paused(self.store, name):  # an operator paused it (console): claim nothing
            return True
        with self._wake_lock:
            if name in self._delivering:
                return False
            self._delivering.add(name)
        released = False
        try:
            delivered = self.counts["delivered"]
            while not self.stop.is_set():
                with self._wake_lock:
                    self._woken.discard(name)  # this claim sees every row committed until now
                stats = self.deliverer.run_target_once(name)
                self._wake_for_job(name)
                self.liveness.beat(f"deliver:{name}", self.deliver_interval)
                if stats.error is None:
                    metrics.LAST_SUCCESS.labels(f"deliver:{name}").set(time.time())
                delivered[name] = delivered.get(name, 0) + stats.done
                self.store.heartbeat(f"deliver:{name}", self.owner, self.deliver_interval)
                if stats.error:
                    break
                if stats.claimed == 0:
                    with self._wake_lock:  # with the check: a wake-up after it starts a run
                        if name not in self._woken:
                            self._delivering.discard(name)
                            released = True
                            break
        finally:
            if not released:  # error, stop or exception: the next tick or wake-up retries
                with self._wake_lock:
                    self._delivering.discard(name)
        return True

    # -- delivery wake-ups ----------------------------------------------------------------
    def _wake_for_job(self, name: str) -> None:
        """A job in progress (an NP6 import) is resumed when it is due, not at the next tick
        (a poll due in 0.3 s would otherwise wait up to ``deliver_interval``)."""
        due = self.deliverer.job_due(name)
        if due is None or self.stop.is_set():
            return
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.add_job(
                self.wake_delivery,
                "date",
                run_date=datetime.fromtimestamp(due, UTC),
                args=[name],
                id=f"wake:{name}",  # the worker's job_due is its earliest: one wake-up per target
                replace_existing=True,
                misfire_grace_time=None,
            )

    def wake_delivery(self, name: str) -> None:
        """Run target ``name``'s delivery job now (rows were committed for it); safe from any
        thread. A run that is delivering for the target claims again before it ends instead."""
        with self._wake_lock:
            self._woken.add(name)
            if name in self._delivering:
                return
        if self.stop.is_set():
            return
        with contextlib.suppress(JobLookupError):  # shutting down: the jobs are gone
            self.scheduler.modify_job(f"deliver:{name}", next_run_time=datetime.now(UTC))
