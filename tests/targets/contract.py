"""The standard target test suite: every target's tests inherit :class:`TargetContract`.

It drives the real engine end to end over real HTTP: customers go in through the ingest
``Applier`` (SQLite state store), the :class:`~syncer.engine.deliver.Deliverer` delivers them to
the target's simulator (served by uvicorn, faults injected through its admin API), and the
test reads the simulator's state back.

A subclass provides (see the abstract methods): the served simulator (class-scoped fixture
``served`` yielding its root URL), the target's config, two pipelines' settings (``a`` and
``b``; the suite adds ``name``, ``target``, ``entity`` and ``when: {tags_any: [<name>]}``),
customer documents, and a reading of the simulator's state as :class:`Seen` objects. To skip an
operation the API does not have, put ``{"<test name without test_>": "reason"}`` in ``skip``:
a case is never skipped silently, the reason is the target's declared capability (shown by
``pytest -rs``).

Deletes (issue 14): ``delete_after_leave`` (a customer who left every pipeline earlier is
still removed when forgotten), ``dlq_retry_after_delete`` (retrying an old dead upsert after
the customer's delete never re-creates it), ``existing_contact_keeps_its_other_groups`` (a
contact on the account before syncer keeps the groups/lists syncer does not manage, and a
leave keeps the contact; needs :meth:`TargetContract.existing_contact`),
``upsert_then_delete_in_one_flush`` (sent in the customer's order),
``scrub_after_acknowledged_delete`` (once the target acknowledged a forget, the state keeps
no key of the customer, the ledger says ``scrubbed``, and a stale update later writes nothing).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import pytest
from sqlalchemy import String, insert, select, update

from syncer.config import SyncerConfig
from syncer.engine.apply import Applier, Incoming, rules_from_config
from syncer.engine.deliver import Deliverer, TargetStats
from syncer.state import dlq_ops, erasure_ops, retention_ops
from syncer.state.schema import deliveries, metadata
from syncer.state.store import Store
from syncer.targets.base import Target

TARGET = "t"
SOURCE = {
    "type": "contacthub",
    "base_url": "http://contacthub.invalid",
    "workspace_id": "w",
    "node_id": "n",
    "token": "unused",
}


@dataclass(frozen=True)
class Seen:
    """One customer as the target holds it."""

    key: str  # what identifies the customer there (email, phone...)
    fields: dict[str, Any]
    memberships: frozenset[str]  # group/list names
    blocked: bool = False  # unsubscribed / blacklisted


def one_target_config(
    target: dict[str, Any], pipelines: list[dict[str, Any]], engine: dict[str, Any]
) -> SyncerConfig:
    """A config with the test source, ``target`` as :data:`TARGET` and ``pipelines``."""
    return SyncerConfig.model_validate(
        {
            "version": 1,
            "source": SOURCE,
            "targets": {TARGET: target},
            "pipelines": pipelines,
            "engine": engine,
        }
    )


class Harness:
    """Ingest (the real ``Applier``) + delivery (the real ``Deliverer``) on one state store."""

    def __init__(self, cfg: SyncerConfig, store: Store, **deliverer_kw: Any) -> None:
        self.cfg = cfg
        self.store = store
        self.applier = Applier(rules_from_config(cfg))
        self.deliverer = Deliverer(cfg, store, run_id="contract", **deliverer_kw)
        self.versions: Counter[str] = Counter()
        self.offset = 0

    def _apply(self, operation: str, doc: dict[str, Any]) -> None:
        self.offset += 1
        item = Incoming(
            "stream", "customer", operation, doc, orjson.dumps(doc).decode(), self.offset, 0
        )
        with self.store.transaction() as conn:
            self.applier.apply(conn, "test-stream", [item])

    def put(self, cid: str, doc: dict[str, Any], tags: set[str]) -> None:
        """A new version of customer ``cid`` tagged ``tags`` (pipeline ``x`` takes tag ``x``)."""
        self.versions[cid] += 1
        full = {
            **doc,
            "id": cid,
            "version": self.versions[cid],
            "tags": {"auto": [], "manual": sorted(tags)},
        }
        self._apply("UPDATE", full)

    def delete(self, cid: str) -> None:
        self.versions[cid] += 1
        self._apply("DELETE", {"id": cid, "version": self.versions[cid]})

    def run(self, wait: float = 10.0) -> TargetStats:
        return self.deliverer.run_all_once(wait_for_retries=wait)[TARGET]

    def rows(self) -> list[dict[str, Any]]:
        with self.store.transaction() as conn:
            return [dict(r) for r in conn.execute(select(deliveries)).mappings()]

    def dead(self) -> list[dlq_ops.DeadRow]:
        with self.store.transaction() as conn:
            return dlq_ops.dlq_list(conn)


class TargetContract:
    """Base class of every target's standard tests (pytest collects the subclasses)."""

    skip: ClassVar[dict[str, str]] = {}
    on_delete_modes: ClassVar[tuple[str, ...]] = ("delete",)
    bad_reason: ClassVar[str] = ""  # a piece of the target's message for bad_customer_doc

    # -- to provide ----------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def served(cls) -> Iterator[str]:
        """The simulator's root URL (admin API under ``/_sandbox``); a class-scoped fixture,
        declared as a classmethod (pytest wants that for class scope)."""
        raise NotImplementedError

    def target_settings(self, sim_url: str) -> dict[str, Any]:
        raise NotImplementedError

    def pipeline_settings(self, name: str) -> dict[str, Any]:
        """Fields and groups/list of pipeline ``a`` or ``b`` (no name/target/entity/when)."""
        raise NotImplementedError

    def customer_doc(self, n: int, variant: int = 0) -> dict[str, Any]:
        """Customer ``n``'s document; ``variant`` changes a mapped non-key field."""
        raise NotImplementedError

    def bad_customer_doc(self, n: int) -> dict[str, Any]:
        """A document the mapping accepts but the target rejects (4xx)."""
        raise NotImplementedError

    def key_of(self, n: int) -> str:
        raise NotImplementedError

    def seen(self, state: dict[str, Any]) -> list[Seen]:
        raise NotImplementedError

    def expected_fields(self, n: int, variant: int) -> dict[str, Any]:
        """Fields of :class:`Seen` that ``customer_doc(n, variant)`` must produce."""
        raise NotImplementedError

    def expected_memberships(self, n: int, pipelines: set[str]) -> frozenset[str]:
        raise NotImplementedError

    def existing_contact(self, n: int, group: str) -> dict[str, Any]:
        """The ``/_sandbox/load`` body of customer ``n``'s contact already on the account in
        the group/list ``group`` (which no pipeline manages). Targets without groups or lists
        declare ``existing_contact_keeps_its_other_groups`` in ``skip`` instead."""
        raise NotImplementedError

    # -- fixtures ------------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _skips(self, request: pytest.FixtureRequest) -> None:
        name = request.node.originalname.removeprefix("test_")
        if name in self.skip:
            pytest.skip(self.skip[name])

    @pytest.fixture
    def sim_url(self, served: str) -> str:
        httpx.post(served + "/_sandbox/reset").raise_for_status()
        return served

    @pytest.fixture
    def sim_state(self, sim_url: str) -> Callable[[], dict[str, Any]]:
        return lambda: httpx.get(sim_url + "/_sandbox/state").json()  # type: ignore[no-any-return]

    @pytest.fixture
    def set_faults(self, sim_url: str) -> Callable[..., None]:
        def set_(**plan: Any) -> None:
            httpx.put(sim_url + "/_sandbox/faults", json=plan).raise_for_status()

        return set_

    @pytest.fixture
    def sim_requests(self, sim_url: str) -> Callable[[bool], dict[str, Any]]:
        def read(clear: bool = False) -> dict[str, Any]:
            method = httpx.delete if clear else httpx.get
            return method(sim_url + "/_sandbox/requests").json()  # type: ignore[no-any-return]

        return read

    def make_config(self, sim_url: str, on_delete: str = "delete") -> SyncerConfig:
        pipelines = [
            {
                **self.pipeline_settings(name),
                "name": name,
                "target": TARGET,
                "entity": "customer",
                "when": {"tags_any": [name]},
                "on_delete": on_delete,
            }
            for name in ("a", "b")
        ]
        target = {**self.target_settings(sim_url), "max_in_flight": 4, "max_attempts": 6}
        return one_target_config(
            target, pipelines, {"batch_size": 50, "backoff_base": 0.05, "backoff_max": 0.2}
        )

    @pytest.fixture
    def make_harness(self, sim_url: str, tmp_path: Path) -> Iterator[Callable[..., Harness]]:
        made: list[Harness] = []

        def make(on_delete: str = "delete") -> Harness:
            store = Store(f"sqlite:///{tmp_path / f'state{len(made)}.db'}")
            harness = Harness(self.make_config(sim_url, on_delete), store, breaker_cooldown=0.2)
            made.append(harness)
            return harness

        yield make
        for harness in made:
            harness.deliverer.close()
            harness.store.close()

    @pytest.fixture
    def harness(self, make_harness: Callable[..., Harness]) -> Harness:
        return make_harness()

    @pytest.fixture
    def target(self, harness: Harness) -> Target:
        return harness.deliverer.worker(TARGET).target

    # -- helpers -------------------------------------------------------------------------------
    def by_key(self, state: dict[str, Any]) -> dict[str, Seen]:
        seen = self.seen(state)
        counts = Counter(s.key for s in seen)
        duplicates = {k: n for k, n in counts.items() if n > 1}
        assert not duplicates, f"duplicates in the target: {duplicates}"
        return {s.key: s for s in seen}

    def check(self, state: dict[str, Any], n: int, variant: int, pipelines: set[str]) -> None:
        found = self.by_key(state).get(self.key_of(n))
        assert found is not None, f"customer {n} is not in the target"
        for name, value in self.expected_fields(n, variant).items():
            assert found.fields.get(name) == value, (name, found.fields)
        assert found.memberships == self.expected_memberships(n, pipelines)

    def put(self, h: Harness, n: int, pipelines: set[str], variant: int = 0) -> None:
        h.put(f"c{n}", self.customer_doc(n, variant), pipelines)

    # -- the standard tests --------------------------------------------------------------------
    def test_create(self, harness: Harness, sim_state: Callable[[], dict[str, Any]]) -> None:
        self.put(harness, 1, {"a"})
        stats = harness.run()
        assert (stats.created, stats.dead, stats.waiting) == (1, 0, 0), stats
        self.check(sim_state(), 1, 0, {"a"})

    def test_update(self, harness: Harness, sim_state: Callable[[], dict[str, Any]]) -> None:
        self.put(harness, 1, {"a"})
        harness.run()
        self.put(harness, 1, {"a"}, variant=1)
        stats = harness.run()
        assert (stats.updated, stats.created) == (1, 0), stats
        self.check(sim_state(), 1, 1, {"a"})

    def test_unchanged_sends_nothing(
        self, harness: Harness, sim_requests: Callable[[bool], dict[str, Any]]
    ) -> None:
        self.put(harness, 1, {"a"})
        harness.run()
        sim_requests(True)
        self.put(harness, 1, {"a"})  # a new version with the same content
        stats = harness.run()
        assert stats.unchanged == 1, stats
        assert sim_requests(False)["total"] == 0

    def test_delete(
        self, make_harness: Callable[..., Harness], sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        for mode in self.on_delete_modes:
            harness = make_harness(on_delete=mode)
            n = 10 + len(harness.cfg.pipelines) + self.on_delete_modes.index(mode)
            self.put(harness, n, {"a"})
            harness.run()
            harness.delete(f"c{n}")
            stats = harness.run()
            assert stats.dead == 0 and stats.done == 1, (mode, stats)
            found = self.by_key(sim_state()).get(self.key_of(n))
            if mode == "delete":
                assert found is None, mode
            else:
                assert found is not None and found.blocked, (mode, found)

    def test_join_and_leave(
        self, harness: Harness, sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        self.put(harness, 1, {"a"})
        harness.run()
        self.put(harness, 1, {"a", "b"})
        harness.run()
        self.check(sim_state(), 1, 0, {"a", "b"})
        self.put(harness, 1, {"b"})
        stats = harness.run()
        assert stats.left == 1, stats
        self.check(sim_state(), 1, 0, {"b"})

    def test_several_groups(
        self, harness: Harness, sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        for n in range(1, 9):
            self.put(harness, n, {"a", "b"} if n % 2 else {"a"})
        stats = harness.run()
        assert stats.created == 8 and stats.dead == 0, stats
        state = sim_state()
        for n in range(1, 9):
            self.check(state, n, 0, {"a", "b"} if n % 2 else {"a"})

    def test_bad_values_go_dead(
        self, harness: Harness, sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        harness.put("c1", self.bad_customer_doc(1), {"a"})
        self.put(harness, 2, {"a"})
        stats = harness.run()
        assert (stats.dead, stats.created) == (1, 1), stats
        [dead] = harness.dead()
        assert dead.entity_id == "c1" and self.bad_reason in (dead.last_error or ""), dead
        self.check(sim_state(), 2, 0, {"a"})

    def test_429_with_retry_after(
        self,
        harness: Harness,
        set_faults: Callable[..., None],
        sim_requests: Callable[[bool], dict[str, Any]],
        sim_state: Callable[[], dict[str, Any]],
    ) -> None:
        set_faults(rate_limit=4.0)
        for n in range(1, 9):
            self.put(harness, n, {"a"})
        started = time.monotonic()
        stats = harness.run(wait=30)
        assert (stats.done, stats.dead, stats.waiting) == (8, 0, 0), stats
        assert sim_requests(False)["statuses"].get("429", 0) >= 1
        assert time.monotonic() - started >= 1.0  # Retry-After (whole seconds) was honoured
        for n in range(1, 9):
            self.check(sim_state(), n, 0, {"a"})

    def test_429_without_retry_after(
        self,
        harness: Harness,
        sim_url: str,
        set_faults: Callable[..., None],
        sim_requests: Callable[[bool], dict[str, Any]],
        sim_state: Callable[[], dict[str, Any]],
    ) -> None:
        """A 429 with no rate header at all (the simulator's ``rate_limit: bare`` switch, a
        documented choice in docs/sandbox.md): the engine's default wait, no attempt spent."""
        httpx.put(sim_url + "/_sandbox/behaviour", json={"rate_limit": "bare"}).raise_for_status()
        try:
            set_faults(rate_limit=4.0)
            for n in range(1, 9):
                self.put(harness, n, {"a"})
            stats = harness.run(wait=30)
            assert (stats.done, stats.dead, stats.waiting) == (8, 0, 0), stats
            assert sim_requests(False)["statuses"].get("429", 0) >= 1
            for n in range(1, 9):
                self.check(sim_state(), n, 0, {"a"})
        finally:  # behaviour switches survive /_sandbox/reset
            httpx.put(
                sim_url + "/_sandbox/behaviour", json={"rate_limit": "retry_after"}
            ).raise_for_status()

    def test_timeout_then_success(
        self,
        sim_url: str,
        tmp_path: Path,
        set_faults: Callable[..., None],
        sim_state: Callable[[], dict[str, Any]],
    ) -> None:
        """The client gives up (its timeout) while the server still applies the write (the
        fault's latency runs before the handler): a retry, then exactly one record."""
        cfg = self.make_config(sim_url)
        slow = cfg.targets[TARGET].model_copy(update={"timeout": 0.3})
        cfg = cfg.model_copy(update={"targets": {TARGET: slow}})
        store = Store(f"sqlite:///{tmp_path / 'timeout.db'}")
        harness = Harness(cfg, store, breaker_cooldown=0.2)
        try:
            set_faults(latency_ms=700)
            self.put(harness, 1, {"a"})
            first = harness.run(wait=0)
            assert first.retry >= 1 and first.done == 0 and first.dead == 0, first
            set_faults()
            time.sleep(1.0)  # the slow requests land on the server meanwhile
            second = harness.run(wait=10)
            assert second.done == 1 and second.waiting == 0, second
            self.check(sim_state(), 1, 0, {"a"})  # one record (by_key: no duplicates)
        finally:
            harness.deliverer.close()
            store.close()

    def test_5xx_then_success(
        self,
        harness: Harness,
        set_faults: Callable[..., None],
        sim_state: Callable[[], dict[str, Any]],
    ) -> None:
        set_faults(error_rate=1.0)
        self.put(harness, 1, {"a"})
        first = harness.run(wait=0)
        assert first.retry >= 1 and first.done == 0 and first.dead == 0, first
        set_faults()
        second = harness.run(wait=10)
        assert second.done == 1 and second.waiting == 0, second
        self.check(sim_state(), 1, 0, {"a"})

    def test_applied_but_response_lost(
        self,
        harness: Harness,
        set_faults: Callable[..., None],
        sim_state: Callable[[], dict[str, Any]],
    ) -> None:
        self.put(harness, 3, {"a", "b"})  # warm up: groups/lists exist and are cached
        harness.run()
        set_faults(lost_response_rate=1.0)  # now the record writes themselves are applied+lost
        self.put(harness, 1, {"a"})
        self.put(harness, 2, {"a", "b"})
        first = harness.run(wait=0)
        assert first.done == 0 and first.retry >= 1, first
        set_faults()
        second = harness.run(wait=10)
        assert second.waiting == 0 and second.dead == 0, second
        state = sim_state()
        self.check(state, 1, 0, {"a"})
        self.check(state, 2, 0, {"a", "b"})

    def test_outage_then_recovery(
        self,
        harness: Harness,
        set_faults: Callable[..., None],
        sim_state: Callable[[], dict[str, Any]],
    ) -> None:
        set_faults(outage=True)
        for n in range(1, 13):
            self.put(harness, n, {"a"})
        down = harness.run(wait=0)
        assert down.done == 0 and down.dead == 0 and down.waiting == 12, down
        set_faults()
        up = harness.run(wait=15)
        assert up.done == 12 and up.waiting == 0, up
        for n in range(1, 13):
            self.check(sim_state(), n, 0, {"a"})

    # -- deletes (issue 14) ----------------------------------------------------------------------
    def test_delete_after_leave(
        self, harness: Harness, sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        self.put(harness, 1, {"a"})
        self.put(harness, 2, {"a"})
        harness.run()
        self.put(harness, 1, set())  # leaves every pipeline
        left = harness.run()
        assert left.left == 1 and left.dead == 0, left
        harness.delete("c1")  # forgotten after the leave
        stats = harness.run()
        assert stats.dead == 0 and stats.waiting == 0, stats
        state = sim_state()
        assert self.by_key(state).get(self.key_of(1)) is None, "a forgotten customer stayed"
        self.check(state, 2, 0, {"a"})

    def test_dlq_retry_after_delete(
        self, harness: Harness, sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        self.put(harness, 1, {"a"})
        harness.run()
        harness.put("c1", self.bad_customer_doc(1), {"a"})  # an upsert that goes dead
        assert harness.run().done == 0
        [dead] = harness.dead()
        harness.delete("c1")
        deleted = harness.run()
        assert deleted.dead == 0 and deleted.waiting == 0, deleted
        with harness.store.transaction() as conn:
            assert dlq_ops.dlq_retry(conn, time.time()) == (0, 1)  # superseded, not retried
        again = harness.run()
        assert (again.claimed, again.created, again.updated) == (0, 0, 0), again
        assert self.by_key(sim_state()).get(self.key_of(1)) is None, "a retry resurrected it"
        assert {r["id"]: r["state"] for r in harness.rows()}[dead.id] == "done"

    def test_existing_contact_keeps_its_other_groups(
        self, harness: Harness, sim_url: str, sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        body = self.existing_contact(1, "Staff")
        httpx.post(sim_url + "/_sandbox/load", json=body).raise_for_status()
        self.put(harness, 1, {"a"})
        stats = harness.run()
        assert stats.done == 1 and stats.dead == 0, stats
        found = self.by_key(sim_state()).get(self.key_of(1))
        assert found is not None
        assert found.memberships == self.expected_memberships(1, {"a"}) | {"Staff"}
        self.put(harness, 1, set())  # leaves: syncer's groups go, the contact and Staff stay
        stats = harness.run()
        assert stats.left == 1 and stats.dead == 0, stats
        found = self.by_key(sim_state()).get(self.key_of(1))
        assert found is not None and found.memberships == {"Staff"}, found

    def test_upsert_then_delete_in_one_flush(
        self, harness: Harness, sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        """An older upsert (a retry) and a newer delete of one customer claimed together: the
        engine sends them in the customer's order, so the customer ends deleted (issue 14
        defect 2: NP6 ran every delete of a flush before its imports and re-created it).

        The delete row is written straight into the state store: through ingest the planner
        would supersede the upsert (it does once a delete is known), and this test is about
        the order the engine sends what it does send."""
        self.put(harness, 1, {"a"})
        now = time.time()
        with harness.store.transaction() as conn:
            conn.execute(update(deliveries).values(attempts=1, state="failed", due_at=now - 1))
            conn.execute(
                insert(deliveries).values(
                    pipeline="a",
                    target=TARGET,
                    entity_type="customer",
                    entity_id="c1",
                    action="delete",
                    state="pending",
                    attempts=0,
                    due_at=now - 1,
                    created_at=now,
                    updated_at=now,
                    subject_id="c1",
                )
            )
        stats = harness.run()
        assert (stats.done, stats.dead, stats.waiting) == (2, 0, 0), stats
        assert self.key_of(1) not in self.by_key(sim_state()), "the delete was undone"
        assert {(r["action"], r["state"]) for r in harness.rows()} == {
            ("upsert", "done"),
            ("delete", "done"),
        }

    def test_scrub_after_acknowledged_delete(
        self, harness: Harness, sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        self.put(harness, 1, {"a"})
        self.put(harness, 2, {"a"})
        harness.run()
        gone, kept = self.key_of(1), self.key_of(2)
        assert gone in state_texts(harness.store)  # the search finds a key while it is there
        harness.delete("c1")
        stats = harness.run()
        assert stats.dead == 0 and stats.waiting == 0, stats
        assert retention_ops.scrub(harness.store) == 1
        with harness.store.reader() as conn:
            [record] = erasure_ops.ledger(conn, ids=["c1"])
        assert record.state == "scrubbed", record
        assert record.targets and {t.state for t in record.targets} == {"done"}, record
        texts = state_texts(harness.store)
        assert gone not in texts and kept in texts
        # Contacthub publishes a stale update of the forgotten customer: nothing is sent, and
        # nothing personal is stored again
        self.put(harness, 1, {"a"})
        late = harness.run()
        assert (late.claimed, late.created, late.updated) == (0, 0, 0), late
        assert gone not in state_texts(harness.store)
        assert self.by_key(sim_state()).get(gone) is None
        self.check(sim_state(), 2, 0, {"a"})


def state_texts(store: Store) -> str:
    """Every text column of every table of the state, as one string to search."""
    found: list[str] = []
    with store.reader() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String)]
            for row in conn.execute(select(*columns)):
                found += [str(v) for v in row if v is not None]
    return "\n".join(found)
