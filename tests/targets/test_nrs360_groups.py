"""GroupResolver: threads that miss a group together make one listing and one create."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from syncer.targets.base import Job
from syncer.targets.nrs360.client import Nrs360Client
from syncer.targets.nrs360.groups import GroupResolver


class GroupsApi:
    """``GET/POST /groups`` of 360NRS, 20 ms a call, counting calls."""

    def __init__(self) -> None:
        self.groups: dict[int, str] = {}
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        time.sleep(0.02)
        with self.lock:
            self.calls[request.method] += 1
            if request.method == "POST":
                gid = len(self.groups) + 1
                self.groups[gid] = json.loads(request.content)["name"]
                return httpx.Response(201, json={"data": {"id": gid}})
            data = [{"id": gid, "name": name} for gid, name in self.groups.items()]
            return httpx.Response(200, json={"data": data, "meta": {"pagination": {"links": {}}}})


class Context:
    """The kv part of a TargetContext; ``on_lock`` runs once the lock is taken."""

    def __init__(self, on_lock: Callable[[Context], None] | None = None) -> None:
        self.kv: dict[str, str] = {}
        self.lock = threading.Lock()
        self.on_lock = on_lock

    def kv_get(self, key: str) -> str | None:
        return self.kv.get(key)

    def kv_set(self, key: str, value: str) -> None:
        self.kv[key] = value

    @contextlib.contextmanager
    def kv_lock(self, key: str) -> Iterator[None]:
        with self.lock:
            if self.on_lock is not None:
                self.on_lock(self)
            yield

    def job_create(self, pipeline: str, kind: str, phase: str, data: dict[str, Any]) -> int:
        raise NotImplementedError

    def job_update(self, job_id: int, phase: str, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def job_finish(self, job_id: int) -> None:
        raise NotImplementedError

    def jobs_open(self, kind: str) -> list[Job]:
        raise NotImplementedError


def resolver(api: GroupsApi) -> GroupResolver:
    http = httpx.Client(base_url="http://nrs.test/api/rest", transport=httpx.MockTransport(api))
    return GroupResolver(Nrs360Client(http))


def test_threads_missing_one_group_together_list_twice_and_create_once() -> None:
    api, ctx = GroupsApi(), Context()
    groups = resolver(api)
    start = threading.Barrier(16)
    results: list[list[int]] = []

    def work() -> None:
        start.wait()
        results.append(groups.ids(["Bench"], ctx))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[1]] * 16
    assert api.groups == {1: "Bench"}
    # the first listing, and the creator's listing under the lock; the 15 threads that
    # queued behind it take the id it remembered (before: one listing each, in a row)
    assert api.calls == {"GET": 2, "POST": 1}
    assert ctx.kv == {"group:bench": "1"}


def test_a_group_another_worker_created_while_we_waited_is_taken_from_the_store() -> None:
    api = GroupsApi()

    def other_worker_created_it(ctx: Context) -> None:
        ctx.kv.setdefault("group:bench", "7")

    ctx = Context(on_lock=other_worker_created_it)
    assert resolver(api).ids(["Bench"], ctx) == [7]
    assert api.calls == {"GET": 1}  # the first listing only: no second listing, no create
