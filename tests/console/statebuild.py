"""A small real state database for the console tests: the sandbox, the example config's
pipelines, one ingest to the end of the stream and one delivery pass (as ``syncer sync``).

The generated data holds customers whose phone is not a valid number: their newsletter rows
die as invalid. ``outage`` (see :func:`set_outage`) makes a target answer 503 meanwhile, so its
rows die with the target's answer and can be retried once it is back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from syncer.config.loader import load_config
from syncer.config.models import SyncerConfig
from syncer.demo.workspace import EXAMPLE_CONFIG, Workspace
from syncer.engine import runner
from syncer.engine.apply import Applier, rules_from_config
from syncer.engine.deliver import Deliverer
from syncer.engine.ingest import Ingestor
from syncer.sandbox.cluster import SandboxCluster
from syncer.sandbox.contacthub import DEFAULT_NODE_ID
from syncer.sandbox.datagen import generate_dataset
from syncer.source.contacthub import ContacthubClient
from syncer.state.store import Store


@dataclass
class BuiltState:
    cluster: SandboxCluster
    cfg: SyncerConfig
    store: Store
    config_path: Path
    env: dict[str, str]
    customers: list[dict[str, Any]]


@contextmanager
def source(cfg: SyncerConfig) -> Iterator[ContacthubClient]:
    token = cfg.source.token.get_secret_value()
    with httpx.Client(
        base_url=cfg.source.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        yield ContacthubClient(http, cfg.source.workspace_id, cfg.source.node_id)


def ingest(cfg: SyncerConfig, store: Store) -> None:
    """Read the update stream to its end (no delivery)."""
    with source(cfg) as client:
        Ingestor(store, client, Applier(rules_from_config(cfg)), page_size=500).run_to_end()


def deliver(cfg: SyncerConfig, store: Store) -> None:
    """One delivery pass over every target, waiting for no retry."""
    with Deliverer(cfg, store, run_id="console-test") as deliverer:
        deliverer.run_all_once(force_flush=True, wait_for_retries=0)


def sync_once(cfg: SyncerConfig, store: Store) -> None:
    """``syncer sync --once`` in-process (recorded in ``runs``), waiting for no retry."""
    with source(cfg) as client:
        runner.sync_once(cfg, store, client, retry_window=0)


def customers_api(cluster: SandboxCluster) -> str:
    hub = cluster.connection_info()["contacthub"]
    return f"{hub['api_base']}/workspaces/{hub['workspace_id']}/customers/"


def _auth(cluster: SandboxCluster) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.connection_info()['contacthub']['token']}"}


def patch_customer(cluster: SandboxCluster, cid: str, patch: dict[str, Any]) -> None:
    url = customers_api(cluster) + cid
    httpx.patch(url, json=patch, headers=_auth(cluster)).raise_for_status()


def delete_customer(cluster: SandboxCluster, cid: str) -> None:
    httpx.delete(customers_api(cluster) + cid, headers=_auth(cluster)).raise_for_status()


def build_state(root: Path, cluster: SandboxCluster, customers: int = 40) -> BuiltState:
    docs, _ = generate_dataset(customers, 0, seed=3, node_id=DEFAULT_NODE_ID)
    cluster.contacthub.load({"customers": docs, "events": [], "append_updates": True})
    ws = Workspace(root)
    ws.prepare()
    path = ws.write_config(EXAMPLE_CONFIG, cluster.connection_info())
    cfg = load_config(path, env=ws.env)
    # one attempt: a target that is down dead-letters at once (the test needs no retry wait)
    nrs = cfg.targets["nrs"].model_copy(update={"max_attempts": 1})
    cfg = cfg.model_copy(update={"targets": {**cfg.targets, "nrs": nrs}})
    store = Store(cfg.state.url)
    return BuiltState(cluster, cfg, store, path, ws.env, docs)


def set_outage(cluster: SandboxCluster, name: str, on: bool) -> None:
    """Every API call of simulator ``name`` answers 503 (``faults.outage``) while ``on``."""
    url = cluster.urls[name] + "/_sandbox/faults"
    httpx.put(url, json={"outage": on}).raise_for_status()
