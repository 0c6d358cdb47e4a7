"""The NP6 target: rows flushed as CSV imports (default) or upserted one by one.

Import mode (``per_record`` False, :meth:`Np6Target.flush_policy` from the config): the engine
holds a pipeline's rows until ``max_rows`` or ``flush_every``; :meth:`Np6Target.apply` then

1. answers the deliveries of import jobs already open (a crash, a poll that timed out):
   a job covering them is resumed, never restarted; other open jobs of the same pipeline are
   finished first so imports keep their order;
2. writes each pipeline's upserts as one CSV per ``max_rows`` (columns per the binding read
   once from ``GET /importFormats/{binding}``), records the job, and runs it
   (:mod:`.importjob`) under ``ctx.kv_lock`` of the pipeline's import definition;
3. deletes in bulk / unsubscribes (:mod:`.removals`); ``leave`` needs nothing in NP6.

Deletes run before the imports of the same call: the engine never puts a customer's write
and a later removal in one call (:func:`syncer.engine.worker.flush_rounds`), so this order
never undoes a delete.

The import definition is named ``syncer-<target>-<pipeline>``; its id is kept in ``ctx.kv``
and found again by name (``GET /imports``) when the kv lost it. The unicity field comes from
``GET /fields`` (``isUnicity``), cached with the binding for the life of the target.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx

from ...errors import RetryableError
from ..base import Change, FlushPolicy, Outcome, TargetContext, chunks
from ..errors import outcome_for
from . import removals
from .client import Np6ApiError, Np6Client
from .csvfile import Binding
from .importjob import JOB_KIND, ImportGone, ImportRun, ImportRunner

if TYPE_CHECKING:
    from .spec import Np6TargetConfig

__all__ = ["Np6Target"]

STALE_COMPLETE_JOB = 86400.0  # a complete job nobody asked about for a day is dropped
_Answers = dict[int, Outcome]


class Np6Target:
    """NP6 targets by import or upsert (see the module docstring)."""

    def __init__(
        self,
        name: str,
        client: Np6Client,
        *,
        mode: str = "import",
        binding: int | None = None,
        max_rows: int = 50_000,
        flush_every: float = 60.0,
        separator: str = ";",
        runner: ImportRunner | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.mode = mode
        self.per_record = mode == "upsert"
        self.binding_id = binding
        self.max_rows = max_rows
        self.flush_every = flush_every
        self.separator = separator
        self.runner = runner or ImportRunner(client)
        self._unicity_field: str | None = None
        self._binding: Binding | None = None
        self._created_here: set[str] = set()

    @classmethod
    def from_config(cls, name: str, config: Np6TargetConfig, http: httpx.Client) -> Np6Target:
        """Build the target from its config section and the engine's HTTP client."""
        client = Np6Client(http, config.base_url, config.api_key.get_secret_value())
        imp = config.import_
        if imp is None:
            return cls(name, client, mode=config.mode)
        return cls(
            name,
            client,
            mode=config.mode,
            binding=imp.binding,
            max_rows=imp.max_rows,
            flush_every=imp.flush_every,
            separator=imp.separator,
        )

    def flush_policy(self) -> FlushPolicy | None:
        if self.mode != "import":
            return None
        return FlushPolicy(self.max_rows, self.flush_every)

    def check(self) -> None:
        self._unicity_field = None
        self.unicity_field()

    def close(self) -> None:
        """Nothing to release: the HTTP client belongs to the engine."""

    # -- cached schema -----------------------------------------------------------------------
    def unicity_field(self) -> str:
        """The id (as a string) of the tenant's unicity field, from ``GET /fields``."""
        if self._unicity_field is None:
            ids = [str(f.get("id")) for f in self.client.fields() if f.get("isUnicity")]
            if len(ids) != 1:
                raise Np6ApiError(0, f"NP6 GET /fields: expected one unicity field, found {ids}")
            self._unicity_field = ids[0]
        return self._unicity_field

    def binding(self) -> Binding:
        """The import format of the config, from ``GET /importFormats/{id}``."""
        if self._binding is None:
            if self.binding_id is None:
                raise Np6ApiError(0, "NP6 import mode needs 'import.binding' in the config")
            data = self.client.import_format(self.binding_id)
            self._binding = Binding.from_json(self.binding_id, data, self.separator)
        return self._binding

    # -- apply -------------------------------------------------------------------------------
    def apply(self, changes: Sequence[Change], ctx: TargetContext) -> list[Outcome]:
        """One outcome per change; raises only :class:`~syncer.errors.AuthError`."""
        answers: _Answers = {}
        # a unicity value imported twice in one apply (several rows, several pipelines' files)
        # is created once, then updated
        self._created_here = set()
        blocked: dict[str, RetryableError] = {}  # pipelines with an older import unfinished
        try:
            uid = self.unicity_field()
            if self.mode == "import":
                self._resume_jobs(changes, ctx, answers, blocked)
        except (RetryableError, Np6ApiError) as exc:
            return [outcome_for(c, exc) for c in changes]
        rest = [c for c in changes if c.delivery_id not in answers]
        upserts: dict[str, list[Change]] = {}
        deletes: list[Change] = []
        for change in rest:
            if change.action == "upsert":
                upserts.setdefault(change.pipeline, []).append(change)
            elif change.action == "delete" and change.on_delete == "delete":
                deletes.append(change)
            elif change.action == "delete" and change.on_delete == "unsubscribe":
                answers[change.delivery_id] = removals.unsubscribe(self.client, change, uid)
            else:  # leave, ignore, remove_from_list: NP6 keeps no memberships for us
                answers[change.delivery_id] = Outcome.done(change, "left")
        for outcome in removals.delete_targets(self.client, deletes, uid):
            answers[outcome.delivery_id] = outcome
        for pipeline, group in upserts.items():
            if pipeline in blocked:  # newer rows never land before an older import
                answers.update({c.delivery_id: outcome_for(c, blocked[pipeline]) for c in group})
            elif self.mode == "upsert":
                for change in group:
                    answers[change.delivery_id] = removals.upsert(self.client, change, uid)
            else:
                self._import(pipeline, group, uid, ctx, answers)
        return [answers[c.delivery_id] for c in changes]

    # -- imports -----------------------------------------------------------------------------
    def _import(
        self, pipeline: str, changes: list[Change], uid: str, ctx: TargetContext, answers: _Answers
    ) -> None:
        try:
            binding = self.binding()
        except (RetryableError, Np6ApiError) as exc:
            answers.update({c.delivery_id: outcome_for(c, exc) for c in changes})
            return
        rows: list[tuple[int, str, list[str]]] = []
        for change in changes:  # in the engine's order: the file keeps it (duplicate "last")
            problem = _row_problem(change, uid, binding)
            if problem:
                answers[change.delivery_id] = Outcome.invalid(change, problem)
                continue
            assert change.record is not None
            fields = change.record.fields
            rows.append((change.delivery_id, str(fields[uid]), binding.row(fields)))
        by_id = {c.delivery_id: c for c in changes}
        failed: RetryableError | None = None  # later chunks never land before an earlier one
        for chunk in chunks(rows, self.max_rows):
            if failed is not None:
                answers.update({did: outcome_for(by_id[did], failed) for did, _, _ in chunk})
                continue
            with ctx.kv_lock(_lock_key(pipeline)):
                try:
                    import_id = self._import_id(pipeline, binding, ctx)
                except RetryableError as exc:
                    answers.update({did: outcome_for(by_id[did], exc) for did, _, _ in chunk})
                    failed = exc
                    continue
                run = ImportRun.new(import_id, binding.id, list(chunk))
                job_id = ctx.job_create(pipeline, JOB_KIND, "upload", run.to_data())
                failed = self._drive(ctx, job_id, "upload", run, pipeline, by_id, answers)

    def _import_id(self, pipeline: str, binding: Binding, ctx: TargetContext) -> int:
        """The pipeline's import definition: from kv, else by name, else created."""
        key = _import_key(pipeline)
        stored = ctx.kv_get(key)
        if stored:
            return int(stored)
        name = f"syncer-{self.name}-{pipeline}"
        found = [d["id"] for d in self.client.list_imports() if d.get("name") == name]
        if found:
            import_id = int(found[0])
        else:
            import_id = self.client.create_import(
                {
                    "name": name,
                    "binding": binding.id,
                    "features": [
                        {"type": "duplicate", "rules": {"last": True}},
                        {"type": "database", "updateExisting": True, "crushData": False},
                    ],
                    "source": {"type": "file"},
                }
            )
        ctx.kv_set(key, str(import_id))
        return import_id

    def _drive(
        self,
        ctx: TargetContext,
        job_id: int,
        phase: str,
        run: ImportRun,
        pipeline: str,
        batch: dict[int, Change],
        answers: _Answers,
    ) -> RetryableError | None:
        """Run the job (caller holds the pipeline lock), then answer the batch's rows; the
        error when it must be resumed later."""
        binding = self.binding()
        try:
            try:
                self.runner.run(ctx, job_id, phase, run, binding)
            except ImportGone:  # the definition was deleted in NP6: create it again, once
                ctx.kv_set(_import_key(pipeline), "")
                run.import_id = self._import_id(pipeline, binding, ctx)
                ctx.job_update(job_id, "upload", run.to_data())
                self.runner.run(ctx, job_id, "upload", run, binding)
        except RetryableError as exc:
            for did in run.ids:
                if did in batch:
                    answers[did] = outcome_for(batch[did], exc)
            return exc
        except (Np6ApiError, ImportGone) as exc:
            for index in range(len(run.ids)):
                run.dead.setdefault(str(index), f"NP6 import: {exc}")
            run.queue.clear()
        self._answer(ctx, job_id, run, batch, answers)
        return None

    def _answer(
        self,
        ctx: TargetContext,
        job_id: int,
        run: ImportRun,
        batch: dict[int, Change],
        answers: _Answers,
    ) -> None:
        """Outcomes of a finished job for the deliveries in ``batch``; finish the job once
        every delivery it covers was answered (or it went stale)."""
        answered = set(run.answered)
        created_here = self._created_here
        for index, did in enumerate(run.ids):
            change = batch.get(did)
            if change is None:
                continue
            reason = run.dead.get(str(index))
            if reason is not None:
                answers[did] = Outcome.dead(change, reason)
            else:
                key = run.keys[index]  # an import gives no NP6 id: the unicity addresses it
                known = change.known.target_key or key in created_here
                detail = "updated" if known else "created"
                created_here.add(key)
                answers[did] = Outcome.done(change, detail, target_id=key, target_key=key)
            answered.add(did)
        run.answered = sorted(answered)
        stale = time.time() - (run.completed_at or time.time()) > STALE_COMPLETE_JOB
        if answered >= set(run.ids) or stale:
            ctx.job_finish(job_id)
        else:
            ctx.job_update(job_id, "complete", run.to_data())

    def _resume_jobs(
        self,
        changes: Sequence[Change],
        ctx: TargetContext,
        answers: _Answers,
        blocked: dict[str, RetryableError],
    ) -> None:
        """Resume or answer open jobs covering ``changes``, and finish the other open jobs of
        the same pipelines first (so a re-delivered old import never lands after a newer one);
        a pipeline whose open job could not be finished now goes to ``blocked``."""
        batch = {c.delivery_id: c for c in changes}
        pipelines = {c.pipeline for c in changes if c.action == "upsert"}
        for job in ctx.jobs_open(JOB_KIND):
            covers = bool(set(job.data.get("ids", ())) & set(batch))
            if job.phase == "complete":
                done_at = job.data.get("completed_at") or 0.0
                if not covers and time.time() - done_at <= STALE_COMPLETE_JOB:
                    continue
            elif not covers and job.pipeline not in pipelines:
                continue
            with ctx.kv_lock(_lock_key(job.pipeline)):
                fresh = next((j for j in ctx.jobs_open(JOB_KIND) if j.id == job.id), None)
                if fresh is None:
                    continue
                run = ImportRun.from_data(fresh.data)
                if fresh.phase == "complete":
                    self._answer(ctx, fresh.id, run, batch, answers)
                    continue
                exc = self._drive(ctx, fresh.id, fresh.phase, run, fresh.pipeline, batch, answers)
                if exc is not None:
                    blocked.setdefault(fresh.pipeline, exc)


def _row_problem(change: Change, uid: str, binding: Binding) -> str | None:
    record = change.record
    if record is None:
        return "no mapped record to import"
    if record.fields.get(uid) in (None, ""):
        return f"no value for the NP6 unicity field {uid}"
    unbound = sorted(set(record.fields) - binding.field_ids)
    if unbound:
        return f"fields {', '.join(unbound)} are not bound by NP6 import format {binding.id}"
    return None


def _lock_key(pipeline: str) -> str:
    return f"np6:import-lock:{pipeline}"


def _import_key(pipeline: str) -> str:
    return f"np6:import-id:{pipeline}"
