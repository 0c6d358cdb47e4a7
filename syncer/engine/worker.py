"""The delivery loop of one target: claim, plan, send (concurrently), record.

Per-record targets get one task per customer (that customer's changes in order, so two
pipelines never race on one contact) on a pool of ``max_in_flight`` threads; batch targets get
one task per claimed batch on a single thread. The loop keeps the pool fed: it claims the next
batch while the previous one is still in flight, and records each batch in one transaction as
soon as all its tasks are back. No database access happens in the pool threads except what a
target does through its context (rare: group creation).
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from logging import DEBUG
from typing import cast

from ..errors import StopError
from ..logs import RecordProblems, get_logger
from ..observability import metrics
from ..state import delivery_ops as ops
from ..state.db import db_unavailable
from ..state.store import Store
from ..targets.base import Change, IdentifyingTarget, KeyedTarget, Outcome, Target, TargetContext
from ..targets.spec import Capabilities
from .breaker import CircuitBreaker
from .context import CallContext
from .leader import owner_is_dead
from .listfill import HOLD_CALLS, split_full
from .outcomes import RetryPolicy, TargetStats, known_after, to_result
from .planner import Planned, Planner
from .ratelimit import RateLimiter

CLAIM_LEASE = 300.0  # seconds a claim lives without renewal (renewed every third of it)
CIRCUIT_CODES = {"closed": 0, "half_open": 1, "open": 2}  # syncer_circuit_state
PRUNE_EVERY = 200  # batches between delivery_log prunes
TOP_UP_ROUNDS = 3  # extra claims that fill a batch target's call (see TargetWorker._claim)

Answer = tuple[Planned, Outcome | None]


@dataclass
class _Batch:
    planned: list[Planned]
    answers: list[Answer] = field(default_factory=list)
    open_tasks: int = 0
    finished_jobs: list[int] = field(default_factory=list)  # dropped when recorded
    tokens: set[str] = field(default_factory=set)  # the claims it holds (renewed, fenced)
    # row id -> position in the order its writes land, when the engine knows that order
    landing: dict[int, int] = field(default_factory=dict)


class TargetWorker:
    """Everything one target's delivery needs; ``drain()`` runs the loop (one thread)."""

    def __init__(
        self,
        name: str,
        target: Target,
        store: Store,
        ctx: TargetContext,
        planner: Planner,
        policy: RetryPolicy,
        *,
        max_in_flight: int,
        batch_size: int,
        limiter: RateLimiter | None,
        breaker: CircuitBreaker,
        run_id: str,
        stopping: threading.Event,
        claim_lease: float = CLAIM_LEASE,
        capabilities: Capabilities | None = None,
        call_size: int | None = None,
    ) -> None:
        self.name = name
        #: what the target declared it can do (its spec): never probed on the object
        self.caps = capabilities or Capabilities(kind="record" if target.per_record else "batch")
        self.call_size = call_size  # records per call of a batch target
        self.claim_lease = claim_lease
        self._live_tokens: set[str] = set()  # claims of batches not recorded yet
        self._tokens_guard = threading.Lock()
        self.target = target
        self.store = store
        self.ctx = ctx
        self.planner = planner
        self.policy = policy
        self.limiter = limiter
        self.breaker = breaker
        self.run_id = run_id
        self.stopping = stopping
        # host:pid first, as lease owners: a claim left by a process that died on this host
        # is taken over at once (see _take_over_dead_claims) instead of after CLAIM_LEASE
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{run_id}:{name}"
        per_record = target.per_record
        self.batch_size = min(batch_size, max(8, 4 * max_in_flight)) if per_record else batch_size
        self.low_water = 2 * max_in_flight if per_record else 2
        self.pool = ThreadPoolExecutor(
            max_in_flight if per_record else 1, thread_name_prefix=f"deliver-{name}"
        )
        self.fatal: StopError | None = None
        self.log = get_logger(target=name, run_id=run_id)
        self.problems = RecordProblems()  # logged once per group at the end of each drain
        self._commits = 0
        # rows claimed but held back for a fuller per-list call (see .listfill)
        self._held: list[Planned] = []
        self._held_keys: dict[int, str | None] = {}  # their batch keys, by row id
        #: the earliest due time of rows re-queued behind a job in progress (JobPending): a
        #: flush target's rows are claimed then, whatever its flush policy says
        self.job_due: float | None = None

    # -- the loop ----------------------------------------------------------------------------
    def drain(
        self,
        *,
        force_flush: bool,
        max_batches: int | None = None,
        budget: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> TargetStats:
        """Deliver until nothing is due (or ``max_batches`` were claimed, or ``budget``
        seconds of claiming passed, or stop)."""
        until = None if budget is None else time.monotonic() + budget
        stats = TargetStats()
        self._take_over_dead_claims()
        renewing = threading.Event()
        renewer = threading.Thread(
            target=self._renew_claims, args=(renewing,), name=f"renew-{self.name}", daemon=True
        )
        renewer.start()
        try:
            return self._drain(stats, force_flush, max_batches, until, clock)
        finally:
            self.problems.flush(self.log)
            self._held = []  # left claimed only after a crash: taken over like any claim
            self._held_keys = {}
            renewing.set()
            renewer.join()
            with self._tokens_guard:  # claims of batches never recorded (a crash): let expire
                self._live_tokens.clear()

    def _drain(
        self,
        stats: TargetStats,
        force_flush: bool,
        max_batches: int | None,
        until: float | None,
        clock: Callable[[], float],
    ) -> TargetStats:
        throttled_before = self.limiter.throttled if self.limiter else 0
        pending: dict[Future[list[Answer]], _Batch] = {}
        # Each task puts its future here when it is done: waiting for the next one is O(1),
        # where concurrent.futures.wait() would hook a waiter onto every pending future (up
        # to 3 batches of tasks) on every turn of the loop, holding the GIL each time.
        done: queue.SimpleQueue[Future[list[Answer]]] = queue.SimpleQueue()
        batches: list[_Batch] = []
        claimed = 0
        more = True

        def may_claim() -> bool:
            return (
                more
                and self._may_claim()
                and (max_batches is None or claimed < max_batches)
                and (until is None or time.monotonic() < until)
            )

        def submit(batch: _Batch) -> None:
            batches.append(batch)
            for task in self._tasks(batch):
                future = self.pool.submit(task)
                pending[future] = batch
                batch.open_tasks += 1
                future.add_done_callback(done.put)

        while True:
            while len(pending) < self.low_water and may_claim():
                batch = self._claim(force_flush, clock(), stats)
                if batch is None:
                    more = False
                    break
                claimed += 1
                submit(batch)
            if self._held and not may_claim():  # no claim will take them along: send them
                held, self._held = self._held, []
                submit(_Batch(held, tokens={p.row.token for p in held}))
            self._record_finished(batches, stats)
            if not pending:
                break
            finished = [done.get()]
            while True:  # everything else that is back by now, in one turn
                try:
                    finished.append(done.get_nowait())
                except queue.Empty:
                    break
            for future in finished:
                batch = pending.pop(future)
                batch.answers.extend(future.result())
                batch.open_tasks -= 1
        self._record_finished(batches, stats)
        if self.limiter is not None:
            stats.throttled = self.limiter.throttled - throttled_before
        if self.fatal is not None:
            stats.error = str(self.fatal)
        return stats

    def _renew_claims(self, done: threading.Event) -> None:
        """Keep this worker's claims alive while their calls run (a long NP6 poll, a slow
        answer): every third of the lease, on the database's clock. A claim that could not be
        renewed (this process was paused past its lease and another worker took the customer)
        is lost: its outcomes will be dropped by the fence in ``record_outcomes``."""
        while not done.wait(self.claim_lease / 3):
            with self._tokens_guard:
                tokens = sorted(self._live_tokens)
            if not tokens:
                continue
            try:
                with self.store.transaction() as conn:
                    held = ops.renew_claims(
                        conn, self.name, tokens, ops.db_now(conn), self.claim_lease
                    )
            except Exception as exc:  # the next turn tries again; the fence keeps it safe
                self.log.warning("could not renew claims", error=db_unavailable(exc) or repr(exc))
                continue
            with self._tokens_guard:  # a batch recorded meanwhile released its claims
                lost = (set(tokens) & self._live_tokens) - held
            if lost:
                self.log.warning("claims lost to another worker", claims=len(lost))

    def _take_over_dead_claims(self) -> None:
        """Make the rows claimed by workers of dead processes (SIGKILL, OOM, power loss on
        this host) due again now, instead of when their claim would have expired."""
        with self.store.transaction() as conn:
            now = ops.db_now(conn)
            dead = [w for w in ops.live_claimers(conn, self.name, now) if owner_is_dead(w)]
            rows = ops.expire_claims(conn, self.name, dead)
        if dead:
            self.log.info("took over the claims of dead workers", workers=dead, rows=rows)

    def _may_claim(self) -> bool:
        return not self.stopping.is_set() and self.fatal is None and self.breaker.state != "open"

    def _claim(self, force_flush: bool, now: float, stats: TargetStats) -> _Batch | None:
        limit = self.batch_size
        policy = self.target.flush_policy()
        if self.breaker.state == "half_open":
            limit = 1  # the probe
        if policy is not None:
            with self.store.reader() as conn:
                count, oldest = ops.due_summary(conn, self.name, now)
            if count == 0:
                return None
            waited = now - oldest if oldest is not None else 0.0
            job_due = self.job_due is not None and self.job_due <= now
            if job_due:
                self.job_due = None  # claimed now (or by another worker)
            if (
                not force_flush
                and not job_due
                and count < policy.max_rows
                and waited < policy.flush_every
            ):
                return None
            limit = max(limit, policy.max_rows)
        planned, full = self._claim_planned(limit, now, stats)
        planned, self._held = self._held + planned, []
        if not planned:
            return None
        if self.caps.batch_key and not self.target.per_record and policy is None and limit > 1:
            key_of = cast(KeyedTarget, self.target).batch_key
            planned = self._fill_per_key(planned, full, limit, now, stats, key_of)
        elif not self.target.per_record and policy is None and limit > 1:
            # A batch target sends `limit` records per call: rows that will not be sent
            # (invalid, unchanged) would leave the call short, so claim more to fill it.
            for _ in range(TOP_UP_ROUNDS):
                short = limit - sum(p.change is not None for p in planned)
                if short <= 0 or not full:
                    break
                more, full = self._claim_planned(short, now, stats)
                planned += more
        return _Batch(planned, tokens={p.row.token for p in planned})

    def _fill_per_key(
        self,
        planned: list[Planned],
        full: bool,
        limit: int,
        now: float,
        stats: TargetStats,
        key_of: Callable[[Change], str | None],
    ) -> list[Planned]:
        """What to send of ``planned`` for a target that batches per list (``batch_key``):
        each list's whole calls; the rest waits in ``self._held`` (see :mod:`.listfill`)."""
        size = max(1, self.call_size or limit)
        while full:  # more rows are due: a list's partial call may still fill up
            send, hold, whole = split_full(planned, key_of, size, self._held_keys)
            if whole:
                self._held = hold
                ids = {p.row.id for p in hold}
                self._held_keys = {i: k for i, k in self._held_keys.items() if i in ids}
                return send
            if len(planned) >= HOLD_CALLS * size:
                break  # too many lists to fill one: send what there is
            more, full = self._claim_planned(limit, now, stats)
            planned += more
        self._held_keys = {}  # everything goes now
        return planned

    def _claim_planned(
        self, limit: int, now: float, stats: TargetStats
    ) -> tuple[list[Planned], bool]:
        """Claim up to ``limit`` due rows and plan them; and whether the claim was full."""
        with self.store.transaction() as conn:
            db_now = ops.db_now(conn)
            rows = ops.claim(conn, self.name, self.worker_id, limit, db_now, self.claim_lease)
            if not rows:
                return [], False
            with self._tokens_guard:
                self._live_tokens.add(rows[0].token)
            keys = {(r.entity_type, r.entity_id) for r in rows}
            found = ops.load_entities(conn, keys)
            customers = {
                ("customer", e.customer_id)
                for e in found.values()
                if e.entity_type == "event" and e.customer_id
            }
            found.update(ops.load_entities(conn, customers - set(found)))
            subjects = {self.planner.subject_of(r, found) for r in rows}
            known, hashes, touched = ops.load_known(conn, self.name, subjects)
        stats.claimed += len(rows)
        planned = self.planner.plan(rows, found, known, hashes, touched)
        self._note_identities(planned, now)
        return planned, len(rows) >= limit

    def _note_identities(self, planned: list[Planned], now: float) -> None:
        """Before creating records, remember the identity each create uses (a target's
        optional ``identity(change)``): if the process dies after the target applied the
        create, the re-send finds the record by it even when the customer's email or phone
        changed meanwhile."""
        if not self.caps.identity:
            return
        identity = cast(IdentifyingTarget, self.target).identity
        intents = [
            (p.subject_id, key)
            for p in planned
            if p.kind == "create" and p.change is not None and (key := identity(p.change))
        ]
        if intents:
            with self.store.transaction() as conn:
                ops.note_identities(conn, self.name, intents, now)

    def _tasks(self, batch: _Batch) -> list[Callable[[], list[Answer]]]:
        sendable = [p for p in batch.planned if p.change is not None]
        batch.answers.extend((p, None) for p in batch.planned if p.change is None)
        groups: dict[str, list[Planned]] = {}
        for p in sorted(sendable, key=lambda p: p.row.id):  # a customer's changes in order
            groups.setdefault(p.subject_id, []).append(p)
        if not groups:
            return []
        if self.target.flush_policy() is not None:
            # File loads: one import per flush, rows in delivery order (a file keeps the order
            # of its rows; rounds would turn a customer's k events into k imports). A call
            # does not keep order between its writes and its removals, so the engine does.
            ordered = sorted(sendable, key=lambda p: p.row.id)
            if self.caps.keeps_order_within_call:
                # customers by updatedAt, each one's rows in delivery order: of customers who
                # share a record (one e-mail), the newest one's row lands last and wins
                ordered.sort(key=lambda p: (p.stamp, p.subject_id))
            rounds = flush_rounds(ordered)
            if self.caps.keeps_order_within_call:  # the rounds go one after another
                # only first tries: an earlier try may have landed before (an NP6 job resumed)
                flat = [p for round_ in rounds for p in round_]
                batch.landing = {p.row.id: i for i, p in enumerate(flat) if _first_try(p)}
            return [lambda: self._send_rounds(batch, rounds, one_call=True)]
        if not self.target.per_record:
            return [lambda: self._send_rounds(batch, list(groups.values()))]
        return [lambda g=g: self._send_rounds(batch, [g]) for g in groups.values()]  # type: ignore[misc]

    def _send_rounds(
        self, batch: _Batch, groups: list[list[Planned]], one_call: bool = False
    ) -> list[Answer]:
        """Send each customer's changes in order: round k holds every customer's k-th change
        (``one_call``: ``groups`` are the rounds already, see :func:`flush_rounds`)."""
        answers: list[Answer] = []
        knowns = {p.subject_id: _change(p).known for g in groups for p in g}
        unsure: set[str] = set()  # customers whose change of an earlier round is retried
        rounds = (
            groups
            if one_call
            else [[g[k] for g in groups if len(g) > k] for k in range(max(len(g) for g in groups))]
        )
        for round_ in rounds:
            if self.stopping.is_set() or self.fatal is not None or not self.breaker.allow():
                answers.extend((p, None) for p in round_)
                continue
            # a customer whose earlier change must be retried: its later ones wait behind it
            # (released unsent), so they never overtake it
            answers.extend((p, None) for p in round_ if p.subject_id in unsure)
            round_ = [p for p in round_ if p.subject_id not in unsure]
            if not round_:
                continue
            changes = [
                replace(
                    _change(p),
                    known=knowns[p.subject_id],
                    resent=_change(p).resent,
                )
                for p in round_
            ]
            outcomes = self._apply(changes, batch.finished_jobs)
            if self.fatal is not None and not outcomes:
                # refused credentials, a closed account: an operator problem, not the
                # records'; they go back untouched, spending no attempt
                answers.extend((p, None) for p in round_)
                continue
            for p, change in zip(round_, changes, strict=True):
                out = outcomes.get(p.row.id) or Outcome.retry(change, "the target gave no answer")
                knowns[p.subject_id] = known_after(knowns[p.subject_id], p.row.pipeline, out)
                if out.status == "retry":
                    unsure.add(p.subject_id)
                answers.append((replace(p, change=change), out))
            transient = [
                o
                for o in outcomes.values()
                if o.status == "retry" and not o.rate_limited and not o.pending
            ]
            self.breaker.record(len(transient) < len(outcomes) or not outcomes)
        return answers

    def _apply(self, changes: list[Change], finished_jobs: list[int]) -> dict[int, Outcome]:
        try:
            call = CallContext(self.ctx, finished_jobs, self.stopping)
            outcomes = self.target.apply(changes, call)
        except StopError as exc:
            self.fatal = exc
            self.log.error("target stopped", error=str(exc))
            return {}
        except Exception as exc:  # a target bug must not kill the loop: retry with backoff
            reason = db_unavailable(exc)  # through its context, e.g. a group lock
            if reason is not None:
                self.log.warning("state database unavailable during a target call", error=reason)
                error = f"state database: {reason}"
                return {c.delivery_id: Outcome.retry(c, error) for c in changes}
            self.log.exception("target raised", error=str(exc))
            return {c.delivery_id: Outcome.retry(c, f"target error: {exc!r}") for c in changes}
        return {o.delivery_id: o for o in outcomes}

    def _record_finished(self, batches: list[_Batch], stats: TargetStats) -> None:
        ready = [b for b in batches if b.open_tasks == 0]
        if not ready:
            return
        with self.store.reader() as conn:  # due times on the clock claims compare with
            now = ops.db_now(conn)
        release_until = now + self.breaker.reopens_in()
        results = [
            _landed(to_result(p, out, now, self.policy, release_until), b, seq)
            for seq, b in enumerate(ready)
            for p, out in b.answers
        ]
        # a claim's token lives on while some of its customers are held or in flight
        still = {t for b in batches if b.open_tasks for t in b.tokens}
        still |= {p.row.token for p in self._held}
        # The guard spans the commit and the tokens' removal: a renewal that ran meanwhile
        # sees the released claims gone from the live tokens, not as claims lost.
        with self._tokens_guard:
            with self.store.transaction() as conn:
                lost = ops.record_outcomes(conn, self.name, results, now, self.run_id)
                ops.finish_jobs(conn, [j for b in ready for j in b.finished_jobs])
                self._commits += 1
                if self._commits % PRUNE_EVERY == 0:
                    ops.prune_log(conn)
            for b in ready:
                self._live_tokens -= b.tokens - still
        if lost:
            # another worker took these customers after our claim expired: it records them
            self.log.warning("outcomes of lost claims dropped", rows=len(lost))
            lost_ids = {r.row.id for r in lost}
            results = [r for r in results if r.row.id not in lost_ids]
        sent = 0
        for result in results:
            if result.outcome == "job_pending" and result.due_at is not None:
                self.job_due = min(self.job_due or result.due_at, result.due_at)
            stats.count(result)
            metrics.RECORDS.labels(result.row.pipeline, self.name, result.outcome).inc()
            if result.state in ("dead", "failed") and result.outcome != "job_pending":
                # counted per reason, one line per reason at the end of the drain; each
                # record's line only at debug level (`syncer dlq list` has the details)
                kind = "invalid" if result.outcome == "invalid" else result.state
                self.problems.add(
                    kind,
                    result.row.pipeline,
                    result.error or result.outcome,
                    result.row.entity_id,
                    result.row.id,
                )
                self.log.log(
                    DEBUG,
                    "record will be retried" if kind == "failed" else f"record {kind}",
                    pipeline=result.row.pipeline,
                    contacthub_id=result.row.entity_id,
                    delivery_id=result.row.id,
                    outcome=result.outcome,
                    error=result.error,
                )
            sent += result.outcome not in (
                "unchanged",
                "superseded",
                "invalid",
                "released",
                "job_pending",
            )
        metrics.ATTEMPTS.labels(self.name).inc(sent)
        metrics.CIRCUIT_STATE.labels(self.name).set(CIRCUIT_CODES[self.breaker.state])
        for b in ready:
            batches.remove(b)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.target.close()


def flush_rounds(ordered: list[Planned]) -> list[list[Planned]]:
    """The calls of one flush (``ordered``: rows in delivery order): as few as keep each
    customer's actions in order. A customer's rows go in one call while they are all writes
    (upserts) or all removals (leaves, deletes); each switch puts its later rows one call
    further. A target sends a call's removals and its writes in whatever order suits its API
    (NP6: bulk deletes, then the import), so an older upsert and a newer delete of one
    customer must not share a call: the delete would run first and the import re-create the
    customer. Usually every row fits the first call."""
    rounds: list[list[Planned]] = []
    where: dict[str, tuple[int, bool]] = {}  # customer -> (its last round, removal?)
    for p in ordered:
        removal = _change(p).action != "upsert"
        last = where.get(p.subject_id)
        index = 0 if last is None else last[0] + (last[1] != removal)
        where[p.subject_id] = (index, removal)
        while len(rounds) <= index:
            rounds.append([])
        rounds[index].append(p)
    return rounds


def _first_try(p: Planned) -> bool:
    return p.row.attempts == 0 and not p.row.taken_over and p.row.last_error is None


def _landed(result: ops.RowResult, batch: _Batch, seq: int) -> ops.RowResult:
    """``result`` with where its write landed in ``batch`` (number ``seq`` of one record)."""
    at = batch.landing.get(result.row.id)
    if at is None or result.state != "done":
        return result
    return replace(result, landed=(seq, result.row.pipeline, at))


def _change(p: Planned) -> Change:
    assert p.change is not None  # only planned changes with something to send get here
    return p.change
