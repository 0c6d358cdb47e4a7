"""One NP6 import as a resumable state machine, persisted through ``TargetContext`` jobs.

The job is created **before** the first upload and holds everything needed to rebuild the exact
file: the CSV cells of every row, the delivery id and unicity value per row, the definition and
binding ids. Phases (``Job.phase``) of the segment being imported (``queue[0]``)::

    upload ──PUT source──▶ uploaded ──POST executions──▶ running ──poll──▶ state 1: rows done
       ▲                      │ resume: is the last execution ours?        state 2: split in
       └──── no: upload again ┘ yes: poll it (never start it twice)        halves (queue)
    queue empty ──▶ complete (outcomes kept in the job until the deliveries are answered)

A state-2 segment is split in halves, each re-imported, down to ``max_depth`` (enough to reach
single rows); rows still failing go dead with the reason. ``max_imports`` bounds the executions
of one job: what is left when it is reached goes dead too ("too many failing rows").

"Is the last execution ours?": NP6's execution object carries the ``source`` it ran (id and
stored file name, both new on every upload), compared with the upload's answer recorded in the
job. Without source details, an execution started at or after the upload's ``updateDate`` is
ours; with neither, it is taken as ours: a double start could not be undone. The check runs
only when resuming a job found in phase ``uploaded``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ...errors import RetryableError
from ...http import backoff_delay
from ..base import TargetContext
from .client import Np6ApiError, Np6Client, Np6NotFound
from .csvfile import Binding, render_csv

__all__ = ["COMPLETED", "ERROR", "JOB_KIND", "ImportGone", "ImportRun", "ImportRunner"]

JOB_KIND = "np6-import"
PROCESSING, COMPLETED, ERROR = 0, 1, 2


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
        return asdict(self)


class ImportRunner:
    """Drives :class:`ImportRun` jobs to completion; waits with backoff while NP6 processes.

    ``sleep``/``clock`` are injectable for tests. ``poll_timeout`` bounds one wait: past it a
    :class:`RetryableError` leaves the job open, and the next delivery of its rows resumes it.
    """

    def __init__(
        self,
        client: Np6Client,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_base: float = 0.05,
        poll_cap: float = 5.0,
        poll_timeout: float = 1800.0,
    ) -> None:
        self.client = client
        self.sleep = sleep
        self.clock = clock
        self.poll_base = poll_base
        self.poll_cap = poll_cap
        self.poll_timeout = poll_timeout

    def run(
        self, ctx: TargetContext, job_id: int, phase: str, run: ImportRun, binding: Binding
    ) -> None:
        """Import every queued segment; on return the job is in phase ``complete``.

        Raises :class:`RetryableError` (job left open, resumable) and :class:`ImportGone`.
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
                # a crash may have come between the start and its record: never start twice
                and self._ours(self.client.last_execution(run.import_id), run.source)
            ):
                phase = "running"
            resuming = False
            if phase == "uploaded":
                if run.imports >= run.max_imports:
                    self._give_up(run)
                    phase = "upload"
                    ctx.job_update(job_id, phase, run.to_data())
                    continue
                self._start(run)
                phase = "running"
                ctx.job_update(job_id, phase, run.to_data())
            state, execution = self._wait(run.import_id)
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
        if execution is None:
            return False
        ran = execution.get("source")
        if isinstance(ran, dict) and (ran.get("id") is not None or ran.get("filename")):
            return bool(
                ran.get("id") == source.get("id") and ran.get("filename") == source.get("filename")
            )
        started, uploaded = execution.get("startDate"), source.get("updateDate")
        if isinstance(started, str) and isinstance(uploaded, str):
            return started >= uploaded  # same server clock, ISO UTC strings
        return True  # no way to tell: never risk a second start (module docstring)

    def _wait(self, import_id: int) -> tuple[int | None, dict[str, Any]]:
        deadline = self.clock() + self.poll_timeout
        attempt = 0
        while True:
            execution = self.client.last_execution(import_id)
            if execution is None:
                return None, {}
            state = execution.get("state")
            if state in (COMPLETED, ERROR):
                return int(state), execution
            if self.clock() >= deadline:
                raise RetryableError(f"NP6 import {import_id} still processing; resumed later")
            attempt += 1
            self.sleep(backoff_delay(attempt, base=self.poll_base, cap=self.poll_cap))

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
