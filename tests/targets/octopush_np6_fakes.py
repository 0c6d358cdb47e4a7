"""Test helpers for the Octopush and NP6 target tests: an in-memory :class:`TargetContext`,
change builders and a served simulator wrapper.

Imported by ``test_octopush*.py`` / ``test_np6*.py`` (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from syncer.mapping.mapper import MappedRecord
from syncer.targets.base import Change, ChangeAction, Job, Known, OnDelete, Outcome

_ids = itertools.count(1)

OCTOPUSH_LOGIN, OCTOPUSH_KEY = "sandbox@example.com", "sandbox-octopush-key"


def octopush_target(sim_url: str, **settings: Any) -> dict[str, Any]:
    """The ``targets`` entry of an Octopush simulator served at ``sim_url``."""
    return {
        "type": "octopush",
        "base_url": sim_url + "/v1/public",
        "api_login": OCTOPUSH_LOGIN,
        "api_key": OCTOPUSH_KEY,
        **settings,
    }


class MemoryContext:
    """A :class:`syncer.targets.base.TargetContext` kept in dictionaries (one process)."""

    def __init__(self) -> None:
        self.kv: dict[str, str] = {}
        self.jobs: dict[int, Job] = {}
        self.finished: list[Job] = []
        self.locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._next_job = itertools.count(1)

    def kv_get(self, key: str) -> str | None:
        return self.kv.get(key)

    def kv_set(self, key: str, value: str) -> None:
        self.kv[key] = value

    @contextmanager
    def kv_lock(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def job_create(self, pipeline: str, kind: str, phase: str, data: dict[str, Any]) -> int:
        job_id = next(self._next_job)
        self.jobs[job_id] = Job(job_id, pipeline, kind, phase, _copy(data))
        return job_id

    def job_update(self, job_id: int, phase: str, data: dict[str, Any]) -> None:
        job = self.jobs[job_id]
        self.jobs[job_id] = Job(job_id, job.pipeline, job.kind, phase, _copy(data))

    def job_finish(self, job_id: int) -> None:
        self.finished.append(self.jobs.pop(job_id))

    def jobs_open(self, kind: str) -> list[Job]:
        return [j for j in self.jobs.values() if j.kind == kind]


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    """What a database round trip does to job data: a deep JSON copy."""
    import json

    return dict(json.loads(json.dumps(data)))


def change(
    entity_id: str,
    fields: Mapping[str, Any] | None,
    *,
    pipeline: str = "p1",
    action: ChangeAction = "upsert",
    on_delete: OnDelete = "ignore",
    list_name: str | None = None,
    tag: str | None = None,
    known: Known | None = None,
    delivery_id: int | None = None,
) -> Change:
    """A change with a fresh delivery id; ``fields=None`` means no mapped record."""
    record = None if fields is None else MappedRecord(dict(fields), (), list_name, tag)
    return Change(
        delivery_id=delivery_id if delivery_id is not None else next(_ids),
        pipeline=pipeline,
        entity_id=entity_id,
        action=action,
        on_delete=on_delete,
        record=record,
        known=known or Known(),
    )


def known_after(outcome: Outcome, pipeline: str = "p1", before: Known | None = None) -> Known:
    """The :class:`Known` the engine would store after ``outcome`` (one pipeline)."""
    before = before or Known()
    memberships = dict(before.memberships)
    member_keys = dict(before.member_keys)
    if outcome.memberships is not None:
        memberships[pipeline] = outcome.memberships
    if outcome.member_key is not None:
        member_keys[pipeline] = outcome.member_key
    return Known(
        target_id=outcome.target_id or before.target_id,
        target_key=outcome.target_key or before.target_key,
        memberships=memberships,
        member_keys=member_keys,
    )


def by_id(outcomes: list[Outcome]) -> dict[int, Outcome]:
    return {o.delivery_id: o for o in outcomes}


def admin(client: httpx.Client, url: str) -> dict[str, Any]:
    """``GET`` an admin URL of a simulator and return its JSON."""
    response = client.get(url)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def settle(target: Any, changes: list[Change], ctx: Any, rounds: int = 200) -> list[Outcome]:
    """``target.apply(changes, ctx)`` as the engine runs it: a change answered ``pending`` (a
    job in progress) is applied again once its ``retry_after`` has passed, until none is; one
    outcome per change, in order."""
    import time

    final: dict[int, Outcome] = {}
    todo = list(changes)
    for _ in range(rounds):
        outcomes = target.apply(todo, ctx)
        waits = [o.retry_after or 0.0 for o in outcomes if o.pending]
        final.update({o.delivery_id: o for o in outcomes})
        todo = [c for c in todo if final[c.delivery_id].pending]
        if not todo:
            return [final[c.delivery_id] for c in changes]
        time.sleep(min(waits))
    raise AssertionError(f"{len(todo)} changes still pending after {rounds} applies")
