""":class:`StoreContext`: the durable memory a target gets, implemented on the state store."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

from ..state.store import Store
from ..targets.base import Job, TargetContext


class StoreContext(TargetContext):
    """:class:`~syncer.targets.base.TargetContext` for one target, backed by :class:`Store`.

    Keys are scoped by the target's name, so two targets never see each other's memory.
    """

    def __init__(self, store: Store, target: str) -> None:
        self.store = store
        self.target = target

    def kv_get(self, key: str) -> str | None:
        return self.store.kv_get(self.target, key)

    def kv_set(self, key: str, value: str) -> None:
        self.store.kv_set(self.target, key, value)

    def kv_lock(self, key: str) -> AbstractContextManager[None]:
        return self.store.kv_lock(self.target, key)

    def job_create(self, pipeline: str, kind: str, phase: str, data: dict[str, Any]) -> int:
        return self.store.job_create(self.target, pipeline, kind, phase, data)

    def job_update(self, job_id: int, phase: str, data: dict[str, Any]) -> None:
        self.store.job_update(job_id, phase, data)

    def job_finish(self, job_id: int) -> None:
        self.store.job_finish(job_id)

    def jobs_open(self, kind: str) -> list[Job]:
        return self.store.jobs_open(self.target, kind)


class CallContext(TargetContext):
    """The context of one ``Target.apply`` call made by the delivery engine: everything goes
    to ``ctx`` at once, except :meth:`job_finish`, which only collects the job ids. The engine
    drops those jobs in the transaction that records the call's outcomes: a job finished in a
    process that dies before that commit stays open, so the re-claimed deliveries find it and
    are answered from it instead of being imported a second time."""

    def __init__(
        self, ctx: TargetContext, finished: list[int], stopping: threading.Event | None = None
    ) -> None:
        self.ctx = ctx
        self.finished = finished
        self.stopping = stopping  # set on shutdown: a target's waits end (NP6's import polls)

    def kv_get(self, key: str) -> str | None:
        return self.ctx.kv_get(key)

    def kv_set(self, key: str, value: str) -> None:
        self.ctx.kv_set(key, value)

    def kv_lock(self, key: str) -> AbstractContextManager[None]:
        return self.ctx.kv_lock(key)

    def job_create(self, pipeline: str, kind: str, phase: str, data: dict[str, Any]) -> int:
        return self.ctx.job_create(pipeline, kind, phase, data)

    def job_update(self, job_id: int, phase: str, data: dict[str, Any]) -> None:
        self.ctx.job_update(job_id, phase, data)

    def job_finish(self, job_id: int) -> None:
        self.finished.append(job_id)

    def jobs_open(self, kind: str) -> list[Job]:
        return [j for j in self.ctx.jobs_open(kind) if j.id not in self.finished]
