"""Shared by the delivery engine tests: served 360NRS simulators, configs, feeding customers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import orjson

from syncer.config import SyncerConfig
from syncer.engine.apply import Applier, Incoming, rules_from_config
from syncer.state.store import Store

USER, PASSWORD = "sandbox-user", "sandbox-api-password"
SOURCE = {
    "type": "contacthub",
    "base_url": "http://contacthub.invalid",
    "workspace_id": "w",
    "node_id": "n",
    "token": "unused",
}


def nrs_target(url: str, **kw: Any) -> dict[str, Any]:
    return {
        "type": "360nrs",
        "base_url": url + "/api/rest",
        "username": USER,
        "api_password": PASSWORD,
        **kw,
    }


def pipeline(name: str, target: str, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "target": target,
        "entity": "customer",
        "when": {"tags_any": [name]},
        "fields": {"email": "email", "name": "name", "phone": "phone", "countryIso": "country"},
        "groups": [f"G-{name}"],
        "on_delete": "delete",
        **kw,
    }


def config(targets: dict[str, Any], pipelines: list[dict[str, Any]], **engine: Any) -> SyncerConfig:
    return SyncerConfig.model_validate(
        {
            "version": 1,
            "source": SOURCE,
            "targets": targets,
            "pipelines": pipelines,
            "engine": {"batch_size": 200, "backoff_base": 0.05, "backoff_max": 0.2, **engine},
        }
    )


class Feed:
    """Customers into the state store through the real ingest ``Applier``."""

    def __init__(self, cfg: SyncerConfig, store: Store) -> None:
        self.store = store
        self.applier = Applier(rules_from_config(cfg))
        self.versions: Counter[str] = Counter()

    def put(self, docs: list[tuple[str, dict[str, Any], set[str]]]) -> None:
        items = []
        for position, (cid, doc, tags) in enumerate(docs):
            self.versions[cid] += 1
            full = {
                **doc,
                "id": cid,
                "version": self.versions[cid],
                "tags": {"auto": [], "manual": sorted(tags)},
            }
            items.append(
                Incoming(
                    "stream", "customer", "UPDATE", full, orjson.dumps(full).decode(), 1, position
                )
            )
        with self.store.transaction() as conn:
            self.applier.apply(conn, "s", items)

    def delete(self, cid: str) -> None:
        self.versions[cid] += 1
        doc = {"id": cid, "version": self.versions[cid]}
        with self.store.transaction() as conn:
            self.applier.apply(
                conn,
                "s",
                [Incoming("stream", "customer", "DELETE", doc, orjson.dumps(doc).decode(), 1, 0)],
            )


def person(n: int, name: str = "Ana") -> dict[str, Any]:
    return {"email": f"p{n}@example.com", "name": name}


def admin(url: str, what: str, **body: Any) -> Any:
    if what == "faults":
        return httpx.put(url + "/_sandbox/faults", json=body).raise_for_status().json()
    if what == "reset":
        return httpx.post(url + "/_sandbox/reset").raise_for_status().json()
    if what == "clear":
        return httpx.delete(url + "/_sandbox/requests").json()
    return httpx.get(url + f"/_sandbox/{what}").json()


def emails(url: str) -> Counter[str]:
    return Counter(c["email"] for c in admin(url, "state")["contacts"])
