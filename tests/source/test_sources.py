"""Several sources against the served simulator: one stream per source node, ids namespaced by
source in the state (``default`` keeps plain ids), pipelines of a source only see its
documents, and a source that is down does not stop the others."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from syncer.engine.deliver import TargetStats
from syncer.engine.runner import sync_once
from syncer.errors import RetryableError
from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.serve import ServedApp
from syncer.source.contacthub import source_of_stream, stream_key
from syncer.source.sources import source_clients
from syncer.state.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chub_kit import ENV, NODE, TOKEN, WS, config

WS2, NODE_A, NODE_B = "ws-two", "node-a", "node-b"


def _config(tmp_path: Path, url: str, poll: str = "30s") -> Path:
    body = f"""\
        version: 1
        state: {{url: "sqlite:///{tmp_path / "state.db"}"}}
        metrics: {{address: "127.0.0.1:0"}}
        sources:
          default:
            type: contacthub
            base_url: {url}/hub/v1
            workspace_id: {WS}
            node_id: {NODE}
            token: ${{CH_TOKEN}}
            poll_interval: {poll}
          brand-fr:
            type: contacthub
            base_url: {url}/hub/v1
            workspace_id: {WS2}
            node_ids: [{NODE_A}, {NODE_B}]
            token: ${{CH_TOKEN}}
            poll_interval: {poll}
        targets:
          nrs:
            type: 360nrs
            base_url: http://127.0.0.1:9/api/rest
            username: ${{NRS_USER}}
            api_password: ${{NRS_PASSWORD}}
        pipelines:
          - name: fr-only
            source: brand-fr
            target: nrs
            entity: customer
            fields: {{email: base.contacts.email}}
          - name: fr-orders
            source: brand-fr
            target: nrs
            entity: event
            fields: {{email: customer.base.contacts.email}}
        """
    path = tmp_path / "syncer.yaml"
    path.write_text(textwrap.dedent(body))
    return path


class _NoDelivery:
    """Delivery is not what these tests are about (the target is unreachable)."""

    def run_all_once(
        self, force_flush: bool = True, *, wait_for_retries: float = 0.0
    ) -> dict[str, TargetStats]:
        return {}

    def stop(self) -> None: ...

    def close(self) -> None: ...


def _customer(cid: str, node: str) -> dict[str, Any]:
    return {
        "id": cid,
        "nodeId": node,
        "externalId": cid,
        "updatedAt": "2026-01-01T00:00:00.000+0000",
        "base": {"contacts": {"email": f"{cid}@example.com"}},
    }


def _served(tmp_path: Path) -> tuple[ContacthubSimulator, ServedApp]:
    sim = ContacthubSimulator(
        workspace_id=WS,
        node_ids=[NODE],
        token=TOKEN,
        extra_workspaces={WS2: [NODE_A, NODE_B]},
    )
    # the same customer id in both workspaces: two customers
    sim.load({"customers": [_customer("c1", NODE)], "append_updates": True})
    sim.load(
        {
            "workspace_id": WS2,
            "customers": [_customer("c1", NODE_A), _customer("c2", NODE_B)],
            "events": [
                {
                    "id": "e1",
                    "customerId": "c2",
                    "type": "completedOrder",
                    "context": "ECOMMERCE",
                    "date": "2026-01-01T00:00:00.000+0000",
                    "properties": {},
                }
            ],
            "append_updates": True,
        }
    )
    return sim, ServedApp(sim.asgi())


def test_stream_keys_round_trip() -> None:
    assert stream_key("default", "w", "n") == "w/n"
    assert stream_key("brand-fr", "w", "n") == "brand-fr:w/n"
    assert source_of_stream("w/n") == "default"
    assert source_of_stream("brand-fr:w/n") == "brand-fr"


def test_each_source_node_is_a_stream_and_ids_are_namespaced(tmp_path: Path) -> None:
    _sim, served = _served(tmp_path)
    with served:
        cfg = config(_config(tmp_path, served.url))
        clients = source_clients(cfg)
        assert [c.stream for c in clients] == [
            f"{WS}/{NODE}",
            f"brand-fr:{WS2}/{NODE_A}",
            f"brand-fr:{WS2}/{NODE_B}",
        ]
        store = Store(cfg.state.url)
        report = sync_once(cfg, store, clients, deliverer_factory=lambda *_: _NoDelivery())
        store.close()
    assert not report.source_errors
    engine = create_engine(cfg.state.url)
    with engine.connect() as conn:
        entities = {
            tuple(r)
            for r in conn.execute(
                text("SELECT entity_type, entity_id, customer_id, pipelines FROM entities")
            )
        }
        deliveries = sorted(
            tuple(r)
            for r in conn.execute(text("SELECT pipeline, entity_id, subject_id FROM deliveries"))
        )
        offsets = dict(conn.execute(text('SELECT stream, "offset" FROM checkpoints')).all())
    engine.dispose()
    assert entities == {
        ("customer", "c1", None, ""),  # default: plain id, and no fr pipeline took it
        ("customer", "brand-fr:c1", None, "fr-only"),
        ("customer", "brand-fr:c2", None, "fr-only"),
        ("event", "brand-fr:e1", "brand-fr:c2", None),
    }
    assert deliveries == [
        ("fr-only", "brand-fr:c1", "brand-fr:c1"),
        ("fr-only", "brand-fr:c2", "brand-fr:c2"),
        ("fr-orders", "brand-fr:e1", "brand-fr:c2"),
    ]
    # offsets are per workspace in Contacthub: node a's customer is 1, node b's updates 2, 3
    assert offsets == {
        f"{WS}/{NODE}": 1,
        f"brand-fr:{WS2}/{NODE_A}": 1,
        f"brand-fr:{WS2}/{NODE_B}": 3,
    }


def test_a_source_that_is_down_does_not_stop_the_others(tmp_path: Path) -> None:
    sim, served = _served(tmp_path)
    sim.behaviour = sim.behaviour.updated({"down_workspaces": [WS2]})
    with served:
        cfg = config(_config(tmp_path, served.url))
        clients = source_clients(cfg)
        for c in clients:
            c.max_attempts = 1  # no retry waits in the test
        store = Store(cfg.state.url)
        with pytest.raises(RetryableError, match="503"):
            sync_once(cfg, store, clients, deliverer_factory=lambda *_: _NoDelivery())
        assert store.checkpoint(f"{WS}/{NODE}").offset == 1  # type: ignore[union-attr]
        cp = store.checkpoint(f"brand-fr:{WS2}/{NODE_A}")
        assert cp is None or cp.offset == 0
        # back up: the next run reads it, the default source has nothing new
        sim.behaviour = sim.behaviour.updated({"down_workspaces": []})
        report = sync_once(cfg, store, clients, deliverer_factory=lambda *_: _NoDelivery())
        store.close()
    streams = report.streams
    assert streams[f"{WS}/{NODE}"] is not None and streams[f"{WS}/{NODE}"].updates == 0  # type: ignore[union-attr]
    assert streams[f"brand-fr:{WS2}/{NODE_B}"].updates == 2  # type: ignore[union-attr]


def test_unknown_source_option(tmp_path: Path) -> None:
    from syncer.config import ConfigError

    cfg = config(_config(tmp_path, "http://127.0.0.1:9"))
    with pytest.raises(ConfigError, match=r"unknown source 'brand-f' \(did you mean 'brand-fr'"):
        source_clients(cfg, only="brand-f")
    assert ENV["CH_TOKEN"] == TOKEN


def test_dlq_and_metrics_per_source(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from syncer.cli.main import app
    from syncer.observability.metrics import StateCollector

    _sim, served = _served(tmp_path)
    path = _config(tmp_path, served.url)
    with served:
        cfg = config(path)
        clients = source_clients(cfg)
        store = Store(cfg.state.url)
        sync_once(cfg, store, clients, deliverer_factory=lambda *_: _NoDelivery())
        with store.transaction() as conn:  # one dead row per source (the default one by hand)
            conn.execute(
                text("UPDATE deliveries SET state = 'dead' WHERE entity_id = 'brand-fr:c1'")
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (pipeline, target, entity_type, entity_id, action, "
                    "state, attempts, due_at, created_at, updated_at, subject_id) VALUES "
                    "('fr-only', 'nrs', 'customer', 'c9', 'upsert', 'dead', 1, 0, 0, 0, 'c9')"
                )
            )
        families = {f.name: f for f in StateCollector(store).collect()}
        store.close()
    lag = {s.labels["source"]: s.value for s in families["syncer_source_lag_offsets"].samples}
    assert lag == {"default": 0, "brand-fr": 0}  # read to the end: nothing waits

    def dead(*args: str) -> list[str]:
        result = CliRunner().invoke(
            app, ["dlq", "list", "--all", "--json", "--config", str(path), *args], env=ENV
        )
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        # the groups (and their total) are of the same source as the records
        assert doc["total"] == sum(g["count"] for g in doc["groups"]) == len(doc["records"])
        return [d["entity_id"] for d in doc["records"]]

    assert sorted(dead()) == ["brand-fr:c1", "c9"]
    assert dead("--source", "brand-fr") == ["brand-fr:c1"]
    assert dead("--source", "default") == ["c9"]
    wrong = CliRunner().invoke(
        app, ["dlq", "retry", "--source", "brand", "--config", str(path)], env=ENV
    )
    assert wrong.exit_code == 2
    assert "unknown source 'brand' (did you mean 'brand-fr'?)" in wrong.stderr


def test_the_daemon_polls_a_source_while_another_is_stuck_in_retries(tmp_path: Path) -> None:
    import threading
    import time

    import httpx

    from syncer.engine.daemon import Daemon

    sim, served = _served(tmp_path)
    sim.behaviour = sim.behaviour.updated({"down_workspaces": [WS2]})
    path = _config(tmp_path, served.url, poll="1s")
    with served:
        cfg = config(path)
        stop = threading.Event()
        clients = source_clients(cfg, stop)
        for c in clients:
            if c.source == "brand-fr":
                c.backoff_base = c.backoff_cap = 60.0  # each retry waits a minute
        store = Store(cfg.state.url)
        daemon = Daemon(cfg, store, clients, stop=stop)
        runner = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
        runner.start()
        try:

            def offset() -> int:
                cp = store.checkpoint(f"{WS}/{NODE}")
                return cp.offset if cp else 0

            deadline = time.monotonic() + 30  # a hang guard, not a speed limit
            while offset() < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert offset() == 1
            # a new customer of the default source is read by a later poll, while the other
            # source's first poll still waits in its retries (a minute each)
            body = {"nodeId": NODE, "externalId": "late", "base": {"firstName": "L"}}
            httpx.post(
                f"{served.url}/hub/v1/workspaces/{WS}/customers",
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
            ).raise_for_status()
            while offset() < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert offset() == 2
            stuck = store.checkpoint(f"brand-fr:{WS2}/{NODE_A}")
            assert stuck is None or stuck.offset == 0
        finally:
            daemon.request_stop()
            runner.join(60)
            for c in clients:
                c.http.close()
            store.close()
    assert not runner.is_alive()


def test_backfill_status_and_offsets_report_every_stream(tmp_path: Path) -> None:
    """The operator output (--json, plain status) of a config with two sources, three nodes:
    each source node's stream has its own backfill run, row and offsets."""
    import json

    from typer.testing import CliRunner

    from syncer.cli.main import app

    _sim, served = _served(tmp_path)
    path = _config(tmp_path, served.url)

    def cli(*args: str) -> Any:
        result = CliRunner().invoke(app, [*args, "--config", str(path)], env=ENV)
        assert result.exit_code == 0, result.output
        return result

    with served:
        # default has no pipeline: only brand-fr's two nodes are backfilled, each its own run
        done = json.loads(cli("backfill", "--quiet", "--json").stdout)
        streams = [stream_key("brand-fr", WS2, n) for n in (NODE_A, NODE_B)]
        assert [d["stream_key"] for d in done["streams"]] == streams
        assert done["stream_key"] == streams[0] and done["source"] == "brand-fr"
        assert sum(d["customers"] for d in done["streams"]) == 2
        assert len({d["run_id"] for d in done["streams"]}) == 2
        status = json.loads(cli("status", "--json").stdout)
        assert [(s["source"], s["backfill"]["state"]) for s in status["streams"]] == [
            ("default", None),
            ("brand-fr", "done"),
            ("brand-fr", "done"),
        ]
        assert status["source"] == status["streams"][0]
        assert [r["kind"] for r in status["runs"]] == ["backfill", "backfill"]
        plain = cli("status").stdout.splitlines()
        assert [line.split(": offset")[0] for line in plain if line.startswith("source ")] == [
            f"source {WS}/{NODE}",
            f"source brand-fr ({streams[0]})",
            f"source brand-fr ({streams[1]})",
        ]
        shown = json.loads(cli("offsets", "show", "--json").stdout)
        every = [stream_key("default", WS, NODE), *streams]
        assert [s["stream"] for s in shown["streams"]] == every
