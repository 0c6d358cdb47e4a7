"""Nothing personal of a customer deleted in Contacthub is written to the state again (issue 14).

The scrub removes a forgotten customer's personal data once every target acknowledged. Contacthub
can still publish updates and events of that customer afterwards (a stale page, an event that
was in flight, a backfill); ingest skips them for delivery (the customer is suppressed), but it
used to store their documents anyway: the inbox row with the whole document, and the event's
entity row. Both must keep the ids only.
"""

from __future__ import annotations

from typing import Any

import orjson
from deliver_helpers import SOURCE
from sqlalchemy import String, select

from syncer.config import SyncerConfig
from syncer.engine.apply import Applier, Incoming, rules_from_config
from syncer.state import erasure_ops
from syncer.state.schema import deliveries, metadata
from syncer.state.store import Store

LATE_EMAIL, LATE_PHONE = "late.lovelace@example.org", "+393339876543"


def _applier() -> Applier:
    cfg = SyncerConfig.model_validate(
        {
            "version": 1,
            "source": SOURCE,
            "targets": {
                "np6": {
                    "type": "np6",
                    "base_url": "http://np6.invalid",
                    "api_key": "k",
                    "import": {"binding": 1, "flush_every": "1s"},
                }
            },
            "pipelines": [
                {
                    "name": "subscribers",
                    "target": "np6",
                    "entity": "customer",
                    "fields": {"1001": "base.contacts.email"},
                    "on_delete": "delete",
                },
                {
                    "name": "orders",
                    "target": "np6",
                    "entity": "event",
                    "fields": {"1001": "properties.email", "1002": "properties.orderId"},
                    "on_delete": "delete",
                },
            ],
        }
    )
    return Applier(rules_from_config(cfg))


def _item(kind: str, operation: str, doc: dict[str, Any], position: int = 0) -> Incoming:
    return Incoming("stream", kind, operation, doc, orjson.dumps(doc).decode(), 1, position)


def _customer(version: int, email: str, phone: str) -> dict[str, Any]:
    return {
        "id": "c1",
        "version": version,
        "base": {"contacts": {"email": email, "mobilePhone": phone}},
    }


def _order(eid: str, email: str) -> dict[str, Any]:
    return {
        "id": eid,
        "customerId": "c1",
        "type": "completedOrder",
        "properties": {"email": email, "orderId": eid},
    }


def _texts(store: Store) -> str:
    """Every text column of every table, as one string to search."""
    found: list[str] = []
    with store.transaction() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String)]
            for row in conn.execute(select(*columns)):
                found += [str(v) for v in row if v is not None]
    return "\n".join(found)


def test_updates_and_events_of_a_scrubbed_customer_keep_only_their_ids(store: Store) -> None:
    applier = _applier()
    with store.transaction() as conn:
        applier.apply(conn, "s", [_item("customer", "UPDATE", _customer(1, "a@example.org", "+1"))])
        applier.apply(conn, "s", [_item("customer", "DELETE", {"id": "c1", "version": 2})])
        # nothing was delivered, so the delete rows are done by hand: every target acknowledged
        conn.execute(deliveries.update().values(state="done"))
        assert erasure_ops.scrub_completed(conn, 0.0) == ["c1"]
    with store.transaction() as conn:
        applier.apply(
            conn,
            "s",
            [
                _item("customer", "UPDATE", _customer(3, LATE_EMAIL, LATE_PHONE)),
                _item("event", "CREATE", _order("e-late", LATE_EMAIL), 1),
            ],
        )
    texts = _texts(store)
    assert "e-late" in texts  # the event is known (ingest dedupes on its id)
    assert LATE_EMAIL not in texts and LATE_PHONE not in texts


def test_what_follows_a_delete_in_the_same_batch_keeps_only_its_ids(store: Store) -> None:
    applier = _applier()
    with store.transaction() as conn:
        applier.apply(
            conn,
            "s",
            [
                _item("customer", "DELETE", {"id": "c1", "version": 2}),
                _item("customer", "UPDATE", _customer(3, LATE_EMAIL, LATE_PHONE), 1),
                _item("event", "CREATE", _order("e-late", LATE_EMAIL), 2),
            ],
        )
        kinds = {(r.pipeline, r.action) for r in conn.execute(select(deliveries))}
    assert ("orders", "upsert") not in kinds
    texts = _texts(store)
    assert "e-late" in texts
    assert LATE_EMAIL not in texts and LATE_PHONE not in texts
