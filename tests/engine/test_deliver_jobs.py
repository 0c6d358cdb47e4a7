"""Target jobs (NP6 imports) and the transaction that records their outcomes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from deliver_helpers import SOURCE

from syncer.config import SyncerConfig
from syncer.engine.apply import Applier, Incoming, rules_from_config
from syncer.engine.deliver import Deliverer
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.serve import ServedApp
from syncer.state import delivery_ops as ops
from syncer.state.store import Store


@pytest.fixture
def np6() -> Iterator[str]:
    with ServedApp(Np6Simulator(api_key="k").asgi()) as served:
        httpx.post(
            served.url + "/_sandbox/load", json={"behaviour": {"processing_seconds": 0.1}}
        ).raise_for_status()
        yield served.url


ORDERS = {
    "name": "orders",
    "target": "np6",
    "entity": "event",
    "fields": {"1001": "properties.email", "1002": "properties.orderId"},
}


def np6_config(url: str, pipelines: list[dict[str, Any]] | None = None) -> SyncerConfig:
    return SyncerConfig.model_validate(
        {
            "version": 1,
            "source": SOURCE,
            "targets": {
                "np6": {
                    "type": "np6",
                    "base_url": url,
                    "api_key": "k",
                    "import": {"binding": 1234, "flush_every": "1s"},
                }
            },
            "pipelines": pipelines or [ORDERS],
        }
    )


def feed_orders(cfg: SyncerConfig, store: Store, n: int) -> None:
    items = []
    for i in range(n):
        doc: dict[str, Any] = {
            "id": f"e{i}",
            "customerId": f"c{i}",
            "type": "completedOrder",
            "properties": {"email": f"u{i}@example.com", "orderId": f"o{i}"},
        }
        items.append(Incoming("stream", "event", "CREATE", doc, orjson.dumps(doc).decode(), 1, i))
    with store.transaction() as conn:
        Applier(rules_from_config(cfg)).apply(conn, "s", items)


def test_a_finished_import_is_kept_until_its_outcomes_are_recorded(
    np6: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (chaos suite): the NP6 target finished (deleted) its import job as soon as
    every row had an answer, before the engine recorded those answers. A process killed in
    between left the rows claimed and the job gone: the rows came back and were imported
    again, after newer imports, so NP6 ended with older data. The job is now dropped in the
    transaction that records the outcomes."""
    cfg = np6_config(np6)
    feed_orders(cfg, store, 5)
    real = ops.record_outcomes

    def crash(conn: Any, target: str, results: list[ops.RowResult], *a: Any, **kw: Any) -> Any:
        if any(r.state == "done" for r in results):  # the import's rows, once it finished
            raise RuntimeError("killed before the commit")
        return real(conn, target, results, *a, **kw)  # "job pending": re-queued, as usual

    monkeypatch.setattr(ops, "record_outcomes", crash)
    with Deliverer(cfg, store, run_id="killed") as deliverer:
        worker = deliverer.worker("np6")
        with pytest.raises(RuntimeError):
            deliverer.run_all_once()  # the engine resumes the job until it finishes
    monkeypatch.setattr(ops, "record_outcomes", real)
    assert [j.phase for j in store.jobs_open("np6", "np6-import")] == ["complete"]
    with store.transaction() as conn:  # the dead process's claims end
        ops.expire_claims(conn, "np6", [worker.worker_id])
    with Deliverer(cfg, store, run_id="restarted") as deliverer:
        stats = deliverer.run_all_once()["np6"]
    assert (stats.done, stats.waiting) == (5, 0)
    assert store.jobs_open("np6", "np6-import") == []
    state = httpx.get(np6 + "/_sandbox/state").json()
    assert state["executionCount"] == 1
    assert len(state["targets"]) == 5


def test_a_file_target_takes_back_rows_whose_claim_expired(np6: str, store: Store) -> None:
    """Regression (chaos suite): a flush-policy target (NP6 imports) counted only pending and
    failed rows to decide whether to flush, so rows left ``in_flight`` by a dead worker were
    never claimed again unless newer rows came due with them."""
    cfg = np6_config(np6)
    feed_orders(cfg, store, 3)
    with store.transaction() as conn:  # a worker claims for 10 ms and dies
        assert len(ops.claim(conn, "np6", "gone", 10, time.time(), 0.01)) == 3
    time.sleep(0.05)
    with Deliverer(cfg, store, run_id="next") as deliverer:
        stats = deliverer.run_all_once()["np6"]
    assert (stats.done, stats.waiting) == (3, 0)
    assert len(httpx.get(np6 + "/_sandbox/state").json()["targets"]) == 3


def test_a_stop_while_an_import_processes_spends_no_attempt(np6: str, store: Store) -> None:
    """A graceful stop while NP6 processes an import: the rows wait for the job (due when its
    next poll is), their attempts untouched, and the next process finishes the same job."""
    httpx.post(
        np6 + "/_sandbox/load", json={"behaviour": {"processing_seconds": 2.0}}
    ).raise_for_status()
    cfg = np6_config(np6)
    feed_orders(cfg, store, 4)
    with Deliverer(cfg, store, run_id="stopped") as deliverer:
        first = deliverer.run_target_once("np6", force_flush=True)
        assert first.job_pending == 4, first  # started; the first poll is due later
        deliverer.stop()
        stopped = deliverer.run_all_once()["np6"]
    assert stopped.claimed == 0, stopped
    with store.reader() as conn:
        rows = conn.execute(ops.deliveries.select()).all()
    assert {(r.state, r.attempts) for r in rows} == {("pending", 0)}
    assert [j.phase for j in store.jobs_open("np6", "np6-import")] == ["running"]
    with Deliverer(cfg, store, run_id="next") as deliverer:
        stats = deliverer.run_all_once()["np6"]
    assert (stats.done, stats.waiting) == (4, 0)
    state = httpx.get(np6 + "/_sandbox/state").json()
    assert state["executionCount"] == 1 and len(state["targets"]) == 4


@pytest.mark.parametrize("newest_first", [True, False])
def test_customers_sharing_an_email_go_in_one_import_the_newest_last(
    np6: str, store: Store, newest_first: bool
) -> None:
    """Two customers with one e-mail are one NP6 target. An import keeps the order of its
    rows (the definition's duplicate rule is "last"), so the engine puts the newest customer
    (by updatedAt) last and that is enough: NP6 holds its data after one import. Before, the
    engine could not know which write landed last and queued the newest again (a second
    import of 15 % of the rows in the np6-imports bench)."""
    people = {
        "name": "people",
        "target": "np6",
        "entity": "customer",
        "fields": {"1001": "base.contacts.email", "1002": "base.firstName"},
    }
    cfg = np6_config(np6, [people])
    older = ("c-old", "2026-01-01T00:00:00Z", "Olga")
    newer = ("c-new", "2026-06-01T00:00:00Z", "Nina")
    items = []
    for position, (cid, at, name) in enumerate([newer, older] if newest_first else [older, newer]):
        doc = {
            "id": cid,
            "version": 1,
            "updatedAt": at,
            "base": {"firstName": name, "contacts": {"email": "shared@example.com"}},
        }
        items.append(
            Incoming("stream", "customer", "CREATE", doc, orjson.dumps(doc).decode(), 1, position)
        )
    with store.transaction() as conn:
        Applier(rules_from_config(cfg)).apply(conn, "s", items)
    with Deliverer(cfg, store, run_id="t") as deliverer:
        stats = deliverer.run_all_once(force_flush=True)["np6"]
    state = httpx.get(np6 + "/_sandbox/state").json()
    assert state["executionCount"] == 1  # nobody queued again
    assert stats.done == 2
    [target] = state["targets"]
    assert "Nina" in orjson.dumps(target).decode()
