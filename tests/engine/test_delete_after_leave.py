"""Deletes are decided from what syncer wrote to each target (issue 14, defect 1).

A customer who left a pipeline earlier and is then deleted in Contacthub used to get no delete
row: ingest asked which pipelines select the customer *now*. Octopush kept the number on the
account (a leave only takes it out of the list) and NP6 kept the target its order events made.
Ingest now also asks the state which targets hold the customer (``id_map``, ``memberships``),
for customer and event pipelines alike. Real simulators over real sockets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from deliver_helpers import SOURCE, Feed
from sqlalchemy import select

from syncer.config import SyncerConfig
from syncer.engine.apply import Applier, Incoming, rules_from_config
from syncer.engine.deliver import Deliverer
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp
from syncer.state.schema import deliveries
from syncer.state.store import Store

LOGIN, KEY = "sandbox@example.com", "sandbox-octopush-key"


@pytest.fixture(scope="module")
def _octopush() -> Iterator[str]:
    with ServedApp(OctopushSimulator(api_login=LOGIN, api_key=KEY).asgi()) as app:
        yield app.url


@pytest.fixture
def octopush(_octopush: str) -> str:
    httpx.post(_octopush + "/_sandbox/reset").raise_for_status()
    return _octopush


@pytest.fixture
def np6() -> Iterator[str]:
    with ServedApp(Np6Simulator(api_key="k").asgi()) as served:
        httpx.post(
            served.url + "/_sandbox/load", json={"behaviour": {"processing_seconds": 0.02}}
        ).raise_for_status()
        yield served.url


def _cfg(targets: dict[str, Any], pipelines: list[dict[str, Any]]) -> SyncerConfig:
    return SyncerConfig.model_validate(
        {
            "version": 1,
            "source": SOURCE,
            "targets": targets,
            "pipelines": pipelines,
            "engine": {"batch_size": 50, "backoff_base": 0.05, "backoff_max": 0.2},
        }
    )


def _actions(store: Store) -> list[tuple[str, str, str]]:
    with store.transaction() as conn:
        rows = conn.execute(select(deliveries).order_by(deliveries.c.id)).all()
    return [(r.pipeline, r.action, r.state) for r in rows]


def _promo_cfg(octopush: str) -> SyncerConfig:
    """One Octopush list pipeline, ``promo`` (tag ``promo``), that deletes on a forget."""
    return _cfg(
        {
            "sms": {
                "type": "octopush",
                "base_url": octopush + "/v1/public",
                "api_login": LOGIN,
                "api_key": KEY,
            }
        },
        [
            {
                "name": "promo",
                "target": "sms",
                "entity": "customer",
                "when": {"tags_any": ["promo"]},
                "fields": {"phone_number": "phone"},
                "list": "Promo",
                "on_delete": "delete",
            }
        ],
    )


def test_a_customer_who_left_an_octopush_list_is_deleted_from_the_account(
    octopush: str, store: Store
) -> None:
    cfg = _promo_cfg(octopush)
    feed = Feed(cfg, store)
    doc = {"phone": "+33612345678"}
    with Deliverer(cfg, store, run_id="t") as deliverer:
        feed.put([("c1", doc, {"promo"})])
        deliverer.run_all_once()
        feed.put([("c1", doc, set())])  # leaves: out of the list, still on the account
        assert deliverer.run_all_once()["sms"].left == 1
        contacts = httpx.get(octopush + "/_sandbox/state").json()["contacts"]
        assert contacts["+33612345678"]["lists"] == []
        feed.delete("c1")
        assert _actions(store)[-1] == ("promo", "delete", "pending")
        stats = deliverer.run_all_once()["sms"]
    assert (stats.deleted, stats.dead, stats.waiting) == (1, 0, 0), stats
    assert "+33612345678" not in httpx.get(octopush + "/_sandbox/state").json()["contacts"]


def test_a_target_made_by_order_events_is_deleted_with_the_customer(np6: str, store: Store) -> None:
    cfg = _cfg(
        {
            "np6": {
                "type": "np6",
                "base_url": np6,
                "api_key": "k",
                "import": {"binding": 1234, "flush_every": "1s"},
            }
        },
        [
            {
                "name": "orders",
                "target": "np6",
                "entity": "event",
                "fields": {"1001": "properties.email", "1002": "properties.orderId"},
                "on_delete": "delete",
            }
        ],
    )
    order = {
        "id": "e1",
        "customerId": "c1",
        "type": "completedOrder",
        "properties": {"email": "u1@example.com", "orderId": "o1"},
    }
    applier = Applier(rules_from_config(cfg))

    def apply(kind: str, operation: str, doc: dict[str, Any]) -> None:
        item = Incoming("stream", kind, operation, doc, orjson.dumps(doc).decode(), 1, 0)
        with store.transaction() as conn:
            applier.apply(conn, "s", [item])

    with Deliverer(cfg, store, run_id="t") as deliverer:
        apply("event", "CREATE", order)
        assert deliverer.run_all_once()["np6"].done == 1
        assert len(httpx.get(np6 + "/_sandbox/state").json()["targets"]) == 1
        apply("customer", "DELETE", {"id": "c1", "version": 1})
        assert _actions(store)[-1] == ("orders", "delete", "pending")
        stats = deliverer.run_all_once()["np6"]
    assert (stats.deleted, stats.dead, stats.waiting) == (1, 0, 0), stats
    assert httpx.get(np6 + "/_sandbox/state").json()["targets"] == []


def test_a_customer_syncer_never_wrote_gets_no_delete(octopush: str, store: Store) -> None:
    cfg = _promo_cfg(octopush)
    feed = Feed(cfg, store)
    feed.put([("c1", {"phone": "+33612345678"}, set())])  # never selected, never sent
    feed.delete("c1")
    assert _actions(store) == []
