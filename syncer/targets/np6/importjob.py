"""One NP6 import as a resumable state machine, persisted through ``TargetContext`` jobs.

The job is created **before** the first upload and holds everything needed to rebuild the exact
file: the CSV cells of every row, the delivery id and unicity value per row, the definition and
binding ids. Phases (``Job.phase``) of the segment being imported (``queue[0]``)::

    upload ──PUT source──▶ uploaded ──POST executions──▶ running ──poll──▶ state 1: rows done
                                                           ▲   │ state 0
                                                           └───┘ JobPending: due later
                              │ resume: is the last execution provably     state 2: split in
                              │ ours? yes: poll it; no: start (again)      halves (queue)
    queue empty ──▶ complete (outcomes kept in the job until the deliveries are answered)

The runner never waits: after starting an execution, and after each poll that finds it still
processing (or that failed: a poll is a read), it records the job and raises
:class:`~syncer.targets.errors.JobPending` with the time worth waiting; the engine re-queues
the job's deliveries for that long without spending an attempt, and their next delivery
resumes the job in phase ``running`` with one poll.

A state-2 segment is split in halves, each re-imported, down to ``max_depth`` (enough to reach
single rows); rows still failing go dead with the reason. ``max_imports`` bounds the executions
of one job: what is left when it is reached goes dead too ("too many failing rows").

"Is the last execution ours?" is asked only when resuming a job found in phase ``uploaded``
(the upload was recorded; the start may have happened before a crash, or not). It is ours only
when NP6 proves it: the execution's ``source`` (id, stored file name: both new on every upload)
matches the upload's answer recorded in the job, or, without source details, its ``startDate``
is an instant strictly after the upload's ``updateDate`` (parsed, never compared as text).
Anything else (the 8.1.0 reference's bare ``{"state": n}``, missing or unparseable dates, the
same second) starts the execution again: a second start of an upsert import (``updateExisting``,
``duplicate`` last) writes the same rows twice, harmlessly, while a skipped start would answer
rows done that NP6 never imported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from ...errors import RetryableError
from ...http import backoff_delay
from ..base import TargetContext
from ..errors import JobPending
from .client import Np6ApiError, Np6Client, Np6NotFound
from .csvfile import Binding, render_csv

__all__ = [
    "COMPLETED",
    "ERROR",
    "FIRST_POLL_BASE",
    "FIRST_POLL_MAX",
    "FIRST_POLL_PER_ROW",
    "JOB_KIND",
    "ImportGone",
    "ImportRun",
    "ImportRunner",
    "first_poll_wait",
]

JOB_KIND = "np6-import"
_SOURCE_IDS = ("id", "filename")  # new on every upload (the source object of NP6-SLATE)
PROCESSING, COMPLETED, ERROR = 0, 1, 2

# The wait between starting an execution and polling it the first time, in seconds:
# FIRST_POLL_BASE + FIRST_POLL_PER_ROW * rows of the file, at most FIRST_POLL_MAX.
# Why: NP6 processes a file asynchronously (state 0) and documents no processing time. Polling
# at once, then backing off from 50 ms, found state 0 on most polls (2.75 polls per import
# against the simulator's 0.2 s of processing). A first wait that grows with the file puts the
# first poll about when the import is done, so most imports are upload + start + one poll.
# The guess stays at the fast end on purpose: a wait too short costs one more cheap poll, a wait
# too long delays every row of the import by the excess. BASE covers NP6's fixed cost of an
# execution (the simulator's is 0.2 s); PER_ROW assumes 50,000 rows/s (+1 s for a default
# max_rows file of 50,000 rows); MAX keeps the first poll of a huge file (max_rows allows
# 1,000,000) within 10 s, well inside the daemon's 30 s shutdown timeout. After the first poll
# the polls back off from half the first wait up to ``poll_cap``.
FIRST_POLL_BASE = 0.25
FIRST_POLL_PER_ROW = 0.00002
FIRST_POLL_MAX = 10.0


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 date-time as an aware instant (naive = UTC: one server clock); None if
    absent or not a date-time."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def first_poll_wait(
    rows: int,
    base: float = FIRST_POLL_BASE,
    per_row: float = FIRST_POLL_PER_ROW,
    cap: float = FIRST_POLL_MAX,
) -> float:
    """Seconds to wait before the first poll of an execution of ``rows`` rows (see above)."""
    return min(cap, base + per_row * max(0, rows))


class ImportGone(Exception):
    """The import definition no longer exists (404): create it again and re-run."""


@dataclass
class ImportRun:
    """The persisted data of one import job (``Job.data``)."""

    import_id: int
    binding: int
    rows: list[list[str]]  # CSV cells per data row
    ids: list[int]  # delivery id per row
    keys: list[str]  # unicity value per row
    queue: list[list[int]] = field(default_factory=list)  # [start, end, depth] to import
    dead: dict[str, str] = field(default_factory=dict)  # row index -> reason
    source: dict[str, Any] = field(default_factory=dict)  # upload answer of queue[0]
    imports: int = 0  # executions started by this job
    max_depth: int = 1
    max_imports: int = 64
    completed_at: float | None = None
    answered: list[int] = field(default_factory=list)  # delivery ids given their outcome
    started_at: float | None = None  # when the execution of queue[0] was started (clock)
    first_wait: float = 0.0  # the wait before its first poll (backoff starts from half)
    polls: int = 0  # polls of it that found it processing, or failed

    @classmethod
    def new(cls, import_id: int, binding: int, rows: list[tuple[int, str, list[str]]]) -> ImportRun:
        n = len(rows)
        depth = math.ceil(math.log2(n)) + 1 if n > 1 else 1
        return cls(
            import_id=import_id,
            binding=binding,
            rows=[cells for _, _, cells in rows],
            ids=[did for did, _, _ in rows],
            keys=[key for _, key, _ in rows],
            queue=[[0, n, 0]],
            max_depth=depth,
            max_imports=max(64, 4 * depth),
        )

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ImportRun:
        return cls(**data)

    def to_data(self) -> dict[str, Any]:
        # shallow on purpose: the rows are already JSON-ready lists (asdict deep-copies all
        # max_rows of them, which cost more than the import's upload)
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ImportRunner:
    """Drives :class:`ImportRun` jobs to completion, one step per call, never waiting.

    After starting an execution it asks to be resumed in :func:`first_poll_wait`
    (``first_poll_*``) for the file's rows; each poll that finds it processing (or fails) asks
    for a backoff from half that wait (at least ``poll_base``) up to ``poll_cap``; an
    execution found running when a job is resumed is polled at once. ``clock`` (wall time:
    jobs outlive processes) is injectable for tests. ``poll_timeout`` bounds the polls of one
    execution: past it a plain :class:`RetryableError` (an attempt spent) leaves the job
    open, and the next delivery of its rows resumes it.
    """

    def __init__(
        self,
        client: Np6Client,
        *,
        clock: Callable[[], float] = time.time,
        first_poll_base: float = FIRST_POLL_BASE,
        first_poll_per_row: float = FIRST_POLL_PER_ROW,
        first_poll_max: float = FIRST_POLL_MAX,
        poll_base: float = 0.05,
        poll_cap: float = 5.0,
        poll_timeout: float = 1800.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.first_poll_base = first_poll_base
        self.first_poll_per_row = first_poll_per_row
        self.first_poll_max = first_poll_max
        self.poll_base = poll_base
        self.poll_cap = poll_cap
        self.poll_timeout = poll_timeout

    def run(
        self, ctx: TargetContext, job_id: int, phase: str, run: ImportRun, binding: Binding
    ) -> None:
        """Import the queued segments as far as NP6 lets us now; on return the job is in
        phase ``complete``.

        Raises :class:`JobPending` (job recorded in phase ``running``: resume it when due),
        :class:`RetryableError` (job left open, resumable) and :class:`ImportGone`.
        """
        resuming = True
        while run.queue:
            start, end, depth = run.queue[0]
            if phase == "upload":
                data = render_csv(binding, run.rows[start:end])
                filename = f"syncer-{job_id}-{start}-{end}.csv"
                run.source = self._upload(run.import_id, data, filename)
                phase = "uploaded"
                ctx.job_update(job_id, phase, run.to_data())
            elif (
                phase == "uploaded"
                and resuming
                # a crash may have come between the start and its record: poll that start
                # when NP6 proves it ours, else start again (harmless for an upsert import)
                and self._ours(self.client.last_execution(run.import_id), run.source)
            ):
                phase = "running"
                run.started_at, run.first_wait, run.polls = self.clock(), 0.0, 0
            resuming = False
            if phase == "uploaded":
                if run.imports >= run.max_imports:
                    self._give_up(run)
                    phase = "upload"
                    ctx.job_update(job_id, phase, run.to_data())
                    continue
                self._start(run)
                phase = "running"
                run.started_at, run.polls = self.clock(), 0
                run.first_wait = self.first_wait(end - start)
                ctx.job_update(job_id, phase, run.to_data())
                if run.first_wait > 0:
                    raise JobPending(
                        f"NP6 import {run.import_id} started; first poll due",
                        run.first_wait,
                    )
            # an execution started earlier (resumed, or due now) is polled at once
            state, execution = self._poll(ctx, job_id, run)
            if state is None:  # no execution at all: the start never happened
                phase = "upload"
                continue
            run.queue.pop(0)
            if state == ERROR:
                self._split(run, start, end, depth, execution)
            phase = "upload"
            ctx.job_update(job_id, phase, run.to_data())
        run.completed_at = time.time()
        ctx.job_update(job_id, "complete", run.to_data())

    def _upload(self, import_id: int, data: bytes, filename: str) -> dict[str, Any]:
        try:
            answer = self.client.upload_source(import_id, data, filename)
        except Np6NotFound as exc:
            raise ImportGone(str(exc)) from exc
        return {
            "id": answer.get("id"),
            "filename": answer.get("filename"),
            "updateDate": answer.get("updateDate"),
        }

    def _start(self, run: ImportRun) -> None:
        try:
            self.client.start_execution(run.import_id, run.binding)
        except Np6NotFound as exc:
            raise ImportGone(str(exc)) from exc
        except Np6ApiError as exc:
            if exc.status != 409:
                raise
            # an execution of this definition is still processing (NP6 runs one at a time):
            # a wait, not a verdict on the rows
            raise RetryableError(f"{exc}: an execution is still processing") from exc
        run.imports += 1

    @staticmethod
    def _ours(execution: dict[str, Any] | None, source: dict[str, Any]) -> bool:
        """Whether NP6 proves ``execution`` ran the upload ``source`` (see the module
        docstring); False when it cannot be proven, so the caller starts again."""
        if execution is None:
            return False
        ran = execution.get("source")
        if isinstance(ran, dict):
            common = [
                k for k in _SOURCE_IDS if ran.get(k) is not None and source.get(k) is not None
            ]
            if common:  # NP6 told which file it ran
                return all(ran[k] == source[k] for k in common)
            if any(ran.get(k) is not None for k in _SOURCE_IDS):
                return False  # a file we cannot match with ours
        started, uploaded = _instant(execution.get("startDate")), _instant(source.get("updateDate"))
        # strictly after: NP6 dates are whole seconds, and an older execution started in the
        # second of our upload would otherwise pass for ours
        return started is not None and uploaded is not None and started > uploaded

    def first_wait(self, rows: int) -> float:
        """Seconds between starting an execution of ``rows`` rows and its first poll."""
        return first_poll_wait(
            rows, self.first_poll_base, self.first_poll_per_row, self.first_poll_max
        )

    def _poll(
        self, ctx: TargetContext, job_id: int, run: ImportRun
    ) -> tuple[int | None, dict[str, Any]]:
        """One poll of the last execution: its final state, or :class:`JobPending` with the
        backoff (from half the first wait, at least ``poll_base``) when it is still processing
        or the poll failed; past ``poll_timeout`` since the start, a :class:`RetryableError`."""
        started = run.started_at if run.started_at is not None else self.clock()
        late = self.clock() >= started + self.poll_timeout
        base = max(self.poll_base, run.first_wait / 2)
        try:
            execution = self.client.last_execution(run.import_id)
        except RetryableError as exc:
            # a poll is a read: a lost answer, a 5xx or a 429 says nothing about the import,
            # so poll again (until the deadline) instead of sending its rows back
            if late:
                raise
            run.polls += 1
            wait = backoff_delay(run.polls, base=max(base, 0.5), cap=self.poll_cap)
            ctx.job_update(job_id, "running", run.to_data())
            raise JobPending(f"{exc}; polled again", max(wait, exc.retry_after or 0.0)) from exc
        if execution is None:
            return None, {}
        state = execution.get("state")
        if state in (COMPLETED, ERROR):
            return int(state), execution
        if late:
            raise RetryableError(f"NP6 import {run.import_id} still processing; resumed later")
        run.polls += 1
        ctx.job_update(job_id, "running", run.to_data())
        raise JobPending(
            f"NP6 import {run.import_id} still processing",
            backoff_delay(run.polls, base=base, cap=self.poll_cap),
        )

    @staticmethod
    def _split(run: ImportRun, start: int, end: int, depth: int, execution: dict[str, Any]) -> None:
        if end - start > 1 and depth < run.max_depth:
            middle = (start + end) // 2
            run.queue[:0] = [[start, middle, depth + 1], [middle, end, depth + 1]]
            return
        reason = "NP6 import ended in error (execution state 2)"
        details = execution.get("sandboxDetails") or execution.get("errors")
        errors = details.get("errors") if isinstance(details, dict) else details
        if isinstance(errors, list) and errors:
            reason += ": " + "; ".join(str(e) for e in errors[:3])
        for index in range(start, end):
            run.dead[str(index)] = reason

    @staticmethod
    def _give_up(run: ImportRun) -> None:
        for start, end, _ in run.queue:
            for index in range(start, end):
                run.dead[str(index)] = (
                    f"NP6 import: too many failing rows to isolate ({run.max_imports} imports); "
                    "retry from the dead-letter store after fixing the data"
                )
        run.queue.clear()
