"""How the NP6 import runner waits for an execution: a first wait that grows with the file's
rows (bounded), then backoff; a resumed execution is polled at once. The runner never sleeps:
it raises JobPending with the wait, and :func:`drive` does what the engine does (waits that long
on a fake clock, then resumes the job). The fake NP6 finishes an execution a set time after its
start."""

from __future__ import annotations

from typing import Any

import pytest
from octopush_np6_fakes import MemoryContext

from syncer.errors import RetryableError
from syncer.targets.errors import JobPending
from syncer.targets.np6.csvfile import Binding
from syncer.targets.np6.importjob import (
    FIRST_POLL_BASE,
    FIRST_POLL_MAX,
    FIRST_POLL_PER_ROW,
    JOB_KIND,
    ImportRun,
    ImportRunner,
    first_poll_wait,
)

BINDING = Binding(1234, ";", 1, (1001, 1002))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeNp6:
    """Import ``7``: an execution is processing until ``seconds(rows)`` after its start."""

    def __init__(self, clock: Clock, seconds: Any) -> None:
        self.clock, self.seconds = clock, seconds
        self.polls = 0
        self.started: list[float] = []
        self.done_at = 0.0
        self.source: dict[str, Any] = {}

    def upload_source(self, import_id: int, data: bytes, filename: str) -> dict[str, Any]:
        rows = data.decode().count("\r\n") - BINDING.start_at
        self.source = {"id": len(self.started) + 1, "filename": filename, "rows": rows}
        return {"id": self.source["id"], "filename": filename, "updateDate": "2026-01-01"}

    def start_execution(self, import_id: int, binding: int) -> dict[str, Any]:
        self.started.append(self.clock.now)
        self.done_at = self.clock.now + self.seconds(self.source["rows"])
        return {"state": 0}

    def last_execution(self, import_id: int) -> dict[str, Any] | None:
        if not self.started:
            return None
        self.polls += 1
        state = 1 if self.clock.now >= self.done_at else 0
        return {"state": state, "source": {"id": self.source["id"], "filename": "x"}}


def rows(n: int) -> list[tuple[int, str, list[str]]]:
    return [(i + 1, f"u{i}@example.com", [f"u{i}@example.com", f"o{i}"]) for i in range(n)]


def runner_for(np6: FakeNp6, clock: Clock, **kw: Any) -> ImportRunner:
    return ImportRunner(np6, clock=clock, **kw)  # type: ignore[arg-type]


def drive(runner: ImportRunner, ctx: MemoryContext, job_id: int, phase: str) -> None:
    """What the engine does with a job: run it; on JobPending, wait its due time (here: the
    fake clock's sleep) and resume the job from what it recorded."""
    run = ImportRun.from_data(ctx.jobs[job_id].data)
    while True:
        try:
            runner.run(ctx, job_id, phase, run, BINDING)
            return
        except JobPending as pending:
            assert ctx.jobs[job_id].phase == "running"  # recorded before asking to wait
            assert pending.retry_after is not None
            runner.clock.sleep(pending.retry_after)  # type: ignore[attr-defined]
            job = ctx.jobs[job_id]
            run, phase = ImportRun.from_data(job.data), job.phase


def run_import(runner: ImportRunner, n: int) -> MemoryContext:
    ctx = MemoryContext()
    run = ImportRun.new(7, BINDING.id, rows(n))
    job_id = ctx.job_create("orders", JOB_KIND, "upload", run.to_data())
    drive(runner, ctx, job_id, "upload")
    assert ctx.jobs[job_id].phase == "complete"
    return ctx


def test_the_first_wait_grows_with_the_rows_and_is_bounded() -> None:
    assert first_poll_wait(0) == FIRST_POLL_BASE
    assert first_poll_wait(50_000) == pytest.approx(FIRST_POLL_BASE + 50_000 * FIRST_POLL_PER_ROW)
    assert first_poll_wait(1_000) < first_poll_wait(10_000) < first_poll_wait(50_000)
    assert first_poll_wait(10**9) == FIRST_POLL_MAX
    assert first_poll_wait(100, base=1.0, per_row=0.5, cap=20.0) == 20.0


@pytest.mark.parametrize("n", [1, 5_000, 20_000])
def test_an_import_done_within_the_first_wait_is_polled_once(n: int) -> None:
    """The simulator's model (0.2 s per execution, whatever its size): one poll."""
    clock = Clock()
    np6 = FakeNp6(clock, lambda _rows: 0.2)
    run_import(runner_for(np6, clock), n)
    assert np6.polls == 1
    assert clock.sleeps == [pytest.approx(first_poll_wait(n))]
    assert clock.now - np6.started[0] == pytest.approx(first_poll_wait(n))


def test_an_import_at_the_assumed_rate_is_polled_once_at_any_size() -> None:
    clock = Clock()
    for n in (10, 5_000, 20_000):
        np6 = FakeNp6(clock, lambda rows: FIRST_POLL_BASE * 0.9 + rows * FIRST_POLL_PER_ROW)
        run_import(runner_for(np6, clock), n)
        assert np6.polls == 1, n


def test_a_slower_import_backs_off_from_half_the_first_wait() -> None:
    clock = Clock()
    np6 = FakeNp6(clock, lambda rows: 30.0)  # far slower than the guess
    run_import(runner_for(np6, clock, poll_cap=5.0), 20_000)
    first = first_poll_wait(20_000)
    assert clock.sleeps[0] == pytest.approx(first)
    later = clock.sleeps[1:]
    assert first / 4 <= later[0] <= first / 2  # full jitter on the first backoff step
    assert all(s <= 5.0 for s in later)
    # done at 30 s: the poll that saw it came at most one capped wait later
    assert 30.0 <= clock.now - np6.started[0] <= 30.0 + 5.0
    assert np6.polls == len(clock.sleeps)  # one poll after every wait


def test_the_first_wait_is_tunable_and_zero_means_poll_at_once() -> None:
    clock = Clock()
    np6 = FakeNp6(clock, lambda rows: 0.0)
    runner = runner_for(np6, clock, first_poll_base=0.0, first_poll_per_row=0.0)
    run_import(runner, 100)
    assert clock.sleeps == [] and np6.polls == 1


def test_the_poll_timeout_counts_the_first_wait() -> None:
    clock = Clock()
    np6 = FakeNp6(clock, lambda rows: 100.0)
    runner = runner_for(np6, clock, poll_timeout=2.0, first_poll_base=1.5, poll_cap=1.0)
    with pytest.raises(RetryableError, match="still processing"):
        run_import(runner, 10)
    assert 2.0 <= clock.now - np6.started[0] <= 3.0


def test_a_resumed_execution_is_polled_without_the_first_wait() -> None:
    """A job found in phase ``running`` (a crash, an earlier poll timeout): the execution was
    started long ago, so waiting for its size again would only delay its rows."""
    clock = Clock()
    np6 = FakeNp6(clock, lambda rows: 0.2)
    runner = runner_for(np6, clock)
    ctx = MemoryContext()
    run = ImportRun.new(7, BINDING.id, rows(5_000))
    job_id = ctx.job_create("orders", JOB_KIND, "upload", run.to_data())
    np6.upload_source(7, b"", "f.csv")
    np6.source["rows"] = 5_000
    np6.start_execution(7, BINDING.id)
    clock.now += 60.0  # the process was down meanwhile
    ctx.job_update(job_id, "running", run.to_data())
    drive(runner, ctx, job_id, "running")
    assert clock.sleeps == [] and np6.polls == 1 and len(np6.started) == 1
    assert ctx.jobs[job_id].phase == "complete"


class FlakyPolls(FakeNp6):
    """Its first ``failures`` polls fail as a transient error would (5xx, a lost answer)."""

    def __init__(self, clock: Clock, seconds: Any, failures: int, retry_after: float | None):
        super().__init__(clock, seconds)
        self.failures, self.retry_after = failures, retry_after

    def last_execution(self, import_id: int) -> dict[str, Any] | None:
        if self.started and self.failures:
            self.failures -= 1
            raise RetryableError("NP6 GET /imports/7/executions -> 502", self.retry_after)
        return super().last_execution(import_id)


@pytest.mark.parametrize("retry_after", [None, 3.0])
def test_failed_polls_are_polled_again_and_the_import_completes(
    retry_after: float | None,
) -> None:
    """A poll is a read: its failure says nothing about the import, so the runner polls again
    instead of sending every row of the file back to the queue."""
    clock = Clock()
    np6 = FlakyPolls(clock, lambda rows: 0.1, failures=3, retry_after=retry_after)
    ctx = run_import(runner_for(np6, clock), 100)
    assert ctx.jobs[1].phase == "complete"
    assert (len(np6.started), np6.polls) == (1, 1)  # one execution; the 4th poll found it done
    if retry_after is not None:
        assert all(s >= retry_after for s in clock.sleeps[1:4])  # Retry-After is honoured


def test_polls_failing_past_the_deadline_leave_the_job_resumable() -> None:
    clock = Clock()
    np6 = FlakyPolls(clock, lambda rows: 0.1, failures=10_000, retry_after=None)
    with pytest.raises(RetryableError, match="502"):
        run_import(runner_for(np6, clock, poll_timeout=60.0), 100)
    assert len(np6.started) == 1 and clock.now >= 1060.0
