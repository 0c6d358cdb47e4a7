"""Property: random change sequences of customers' groups across pipelines converge.

Three pipelines of one 360NRS-type target select customers by tag and put them in a group of
their own plus a shared, templated per-country group (so pipelines share group names). Random
sequences of customer updates (tags and country changing), deletes and delivery rounds, with
the target randomly failing calls (retried later), go through the engine's real code: the
ingest ``Applier`` (matches, upsert/leave/delete rows, coalescing, suppression), the
``Deliverer`` (claims, ``Planner`` joins/leaves and hashes, ``known_after`` across rounds,
outcomes, id map and memberships recorded in SQLite). The target is an in-memory fake that
does what the 360NRS connector does with memberships: a contact's groups are this pipeline's
record plus what the other pipelines last delivered; ``leave`` keeps only the others'.

Once everything is delivered, every customer's groups in the target must equal the direct
computation from its last state: the union, over the pipelines that select it, of their
groups; nothing for a deleted customer.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncer.config import SyncerConfig
from syncer.engine.apply import Applier, Incoming, rules_from_config
from syncer.engine.deliver import Deliverer
from syncer.state import delivery_ops
from syncer.state.store import Store
from syncer.targets.base import Change, FlushPolicy, Outcome, TargetContext

PIPELINES = ("p0", "p1", "p2")
CUSTOMERS = ("c0", "c1", "c2", "c3")
COUNTRIES = ("IT", "FR", "")

CFG = SyncerConfig.model_validate(
    {
        "version": 1,
        "source": {
            "type": "contacthub",
            "base_url": "http://contacthub.invalid",
            "workspace_id": "w",
            "node_id": "n",
            "token": "unused",
        },
        "targets": {
            "nrs": {
                "type": "360nrs",
                "base_url": "http://nrs.invalid",
                "username": "u",
                "api_password": "unused",
                "max_in_flight": 2,
                "max_attempts": 100,
            }
        },
        "pipelines": [
            {
                "name": p,
                "target": "nrs",
                "entity": "customer",
                "when": {"tags_any": [p]},
                "fields": {"email": "email"},
                "groups": [f"G-{p}", "{{ base.address.country }}"],
                "on_delete": "remove_from_list",
            }
            for p in PIPELINES
        ],
        "engine": {"batch_size": 3, "backoff_base": "1ms", "backoff_max": "2ms"},
    }
)


class FakeNrs:
    """Groups per contact, as the 360NRS connector keeps them; fails calls at random."""

    name = "nrs"
    per_record = True

    def __init__(self, rng: random.Random, failure_rate: float) -> None:
        self.rng = rng
        self.failure_rate = failure_rate
        self.groups: dict[str, set[str]] = {}

    def flush_policy(self) -> FlushPolicy | None:
        return None

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None

    def apply(self, changes: Sequence[Change], ctx: TargetContext) -> list[Outcome]:
        return [self._one(change) for change in changes]

    def _one(self, change: Change) -> Outcome:
        if self.rng.random() < self.failure_rate:
            return Outcome.retry(change, "503 from the fake")
        others = set(change.known.other_pipelines_names(change.pipeline))
        if change.action == "upsert":
            assert change.record is not None
            mine = set(change.record.groups)
            self._set(change.entity_id, mine | others)
            detail = "created" if change.known.target_id is None else "updated"
            return Outcome.done(
                change, detail, target_id=change.entity_id, memberships=frozenset(mine)
            )
        # leave, or delete with on_delete: remove_from_list
        self._set(change.entity_id, others)
        return Outcome.done(change, "left", memberships=frozenset())

    def _set(self, contact: str, groups: set[str]) -> None:
        if groups:
            self.groups[contact] = groups
        else:  # 360NRS keeps no contact without a group: the connector deletes it
            self.groups.pop(contact, None)


@pytest.fixture(scope="module")
def template_db() -> Iterator[Path]:
    """A migrated, empty state database, copied for every example (migrating is slow)."""
    folder = Path(tempfile.mkdtemp(prefix="membership-props-"))
    path = folder / "template.db"
    Store(f"sqlite:///{path}").close()
    yield path
    shutil.rmtree(folder, ignore_errors=True)


update = st.tuples(
    st.just("update"),
    st.sampled_from(CUSTOMERS),
    st.frozensets(st.sampled_from([*PIPELINES, "other"])),
    st.sampled_from(COUNTRIES),
)
delete = st.tuples(st.just("delete"), st.sampled_from(CUSTOMERS), st.just(frozenset()), st.just(""))
deliver = st.tuples(st.just("deliver"), st.just(""), st.just(frozenset()), st.just(""))
steps = st.lists(st.one_of(update, update, update, delete, deliver), min_size=1, max_size=25)


def expected_groups(tags: frozenset[str], country: str) -> set[str]:
    groups = {f"G-{p}" for p in PIPELINES if p in tags}
    if groups and country:
        groups.add(country)
    return groups


def _feed(applier: Applier, store: Store, items: list[Incoming]) -> None:
    with store.transaction() as conn:
        applier.apply(conn, "s", items)


def _settle(deliverer: Deliverer, store: Store) -> None:
    """Deliver until no row is open (retries come due within milliseconds)."""
    for _ in range(500):
        deliverer.run_all_once(force_flush=True)
        with store.transaction() as conn:
            if delivery_ops.count_open(conn, "nrs") == 0:
                return
        time.sleep(0.003)
    raise AssertionError("deliveries did not settle")


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps, seed=st.integers(0, 2**16), failure_rate=st.sampled_from([0.0, 0.3]))
def test_membership_changes_converge_to_the_direct_computation(
    template_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[str, str, frozenset[str], str]],
    seed: int,
    failure_rate: float,
) -> None:
    path = tmp_path_factory.mktemp("state") / "state.db"
    shutil.copy(template_db, path)
    store = Store(f"sqlite:///{path}", migrate=False)
    target = FakeNrs(random.Random(seed), failure_rate)
    applier = Applier(rules_from_config(CFG))
    deliverer = Deliverer(CFG, store, run_id="props", targets={"nrs": target})
    versions: dict[str, int] = {}
    latest: dict[str, tuple[frozenset[str], str]] = {}
    deleted: set[str] = set()
    try:
        page: list[Incoming] = []
        for kind, cid, tags, country in steps:
            if kind == "deliver":
                _feed(applier, store, page)
                page = []
                target.failure_rate = failure_rate
                deliverer.run_all_once(force_flush=True)
                continue
            versions[cid] = versions.get(cid, 0) + 1
            doc: dict[str, Any] = {"id": cid, "version": versions[cid]}
            if kind == "update":
                doc |= {
                    "email": f"{cid}@example.com",
                    "base": {"address": {"country": country or None}},
                    "tags": {"auto": [], "manual": sorted(tags)},
                }
                if cid not in deleted:
                    latest[cid] = (tags, country)
            else:
                deleted.add(cid)
            operation = "UPDATE" if kind == "update" else "DELETE"
            payload = orjson.dumps(doc).decode()
            page.append(Incoming("stream", "customer", operation, doc, payload, 1, len(page)))
            if len(page) >= 3:  # several changes of one customer may share a page
                _feed(applier, store, page)
                page = []
        _feed(applier, store, page)
        target.failure_rate = 0.0
        _settle(deliverer, store)
    finally:
        deliverer.close()
        store.close()
    want = {
        cid: expected_groups(*latest[cid])
        for cid in latest
        if cid not in deleted and expected_groups(*latest[cid])
    }
    assert target.groups == want
