"""deploy/prometheus/alerts.yaml and deploy/grafana/syncer.json use only metrics syncer serves,
and the alerts cover what docs/operations.md recommends watching."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from syncer.observability.metrics import REGISTRY, StateCollector
from syncer.state.store import Store

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DASHBOARD = DEPLOY / "grafana" / "syncer.json"
METRIC = re.compile(r"\bsyncer_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def served_names(sqlite_url: str) -> dict[str, set[str]]:
    """Every series name syncer's registry and state collector serve, with its label names."""
    store = Store(sqlite_url)
    store.set_offset("ws/node", 1)
    store.record_stream_position("ws/node", 2)
    collector = StateCollector(store)
    names: dict[str, set[str]] = {}
    try:
        families = [*REGISTRY.collect(), *collector.collect()]
        for family in families:
            labels = {k for s in family.samples for k in s.labels} - {"le"}
            for name in (family.name, *(family.name + s for s in SUFFIXES.get(family.type, ()))):
                names.setdefault(name, set()).update(labels)
    finally:
        store.close()
    # labelled metrics with no sample yet: their label names come from the declaration
    for metric in REGISTRY._collector_to_names:  # no public API lists the label names
        labels = set(getattr(metric, "_labelnames", ()))
        for name in REGISTRY._collector_to_names[metric]:
            names.setdefault(name, set()).update(labels)
    return names


def alert_rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for panel in doc["panels"] for t in panel["targets"]]


def test_alerts_and_dashboard_use_only_served_metrics(sqlite_url: str) -> None:
    served = served_names(sqlite_url)
    exprs = [str(r["expr"]) for r in alert_rules()] + dashboard_exprs()
    exprs += [str(v) for r in alert_rules() for v in dict(r["annotations"]).values()]  # type: ignore[call-overload]
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert used, "no metric found: the files were not parsed"
    unknown = sorted(used - set(served))
    assert not unknown, f"not served by syncer: {unknown}"
    # label matchers name labels the metric has: {job="ingest"} on a metric without job is a typo
    for expr in exprs:
        for name, matchers in re.findall(r"\b(syncer_[a-z0-9_]+)\{([^}]*)\}", expr):
            for label in re.findall(r"([a-z_]+)\s*=~?", matchers):
                assert label in served[name], f"{name} has no label {label!r} ({expr})"


def test_alerts_cover_the_recommended_signals() -> None:
    rules = alert_rules()
    for rule in rules:
        assert rule["alert"] and rule["expr"], rule
        assert dict(rule["labels"])["severity"] in {"warning", "critical"}, rule  # type: ignore[call-overload]
        assert dict(rule["annotations"])["summary"], rule  # type: ignore[call-overload]
    text = " ".join(str(r["expr"]) for r in rules)
    for metric in (
        "syncer_stream_lag_seconds",
        "syncer_last_success_timestamp",
        "syncer_dead_letters",
        "syncer_circuit_state",
        "syncer_erasure_oldest_pending_seconds",
        "syncer_source_up",
    ):
        assert metric in text, f"no alert on {metric}"
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))


def test_dashboard_panels_are_well_formed() -> None:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert doc["uid"] == "syncer" and doc["panels"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["title"] and panel["targets"] and panel["gridPos"]["w"] > 0
