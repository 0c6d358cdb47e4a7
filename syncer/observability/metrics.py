"""Prometheus metrics, one registry per process.

Counters and histograms are updated where things happen (the delivery engine, the HTTP
transport, ingest). Gauges that describe the database (deliveries by state, dead letters, offsets
and lag, pending erasures) are read from the state store at scrape time by
:class:`StateCollector`, so they are right even when another replica did the work.

========================================  ==================================================
metric                                    meaning
========================================  ==================================================
syncer_stream_offset{stream}              committed Contacthub offset
syncer_stream_last_offset{stream}         the stream's last offset, as last seen
syncer_stream_lag_offsets{stream}         last - committed
syncer_stream_lag_seconds{stream}         seconds ingest has gone without progress
syncer_source_lag_offsets{source}         lag of the source's streams, summed
syncer_source_lag_seconds{source}         the longest lag_seconds of the source's streams
syncer_deliveries{pipeline,state}         delivery rows by state (pending, in_flight, ...)
syncer_dead_letters{pipeline}             deliveries in the dead-letter store
syncer_inbox_rows                         updates recorded in the inbox
syncer_records_delivered_total            records finished, by pipeline/target/outcome
syncer_delivery_attempts_total{target}    records handed to a target (incl. retries)
syncer_http_429_total{target}             429 answers received
syncer_http_request_seconds               request latency by target and endpoint
syncer_circuit_state{target}              0 closed, 1 half-open, 2 open
syncer_last_success_timestamp{job}        end of the last successful run of each job
syncer_source_up{stream}                  1 when the last call to Contacthub worked, else 0
syncer_erasures_pending                   erasure requests not yet applied to every target
syncer_erasure_oldest_pending_seconds     age of the oldest pending erasure (0: none)
syncer_optional_fields_omitted_total      optional field values left out as invalid
========================================  ==================================================
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..source.contacthub import source_of_stream

if TYPE_CHECKING:
    from ..state.store import Checkpoint, Store

REGISTRY = CollectorRegistry(auto_describe=True)

RECORDS = Counter(
    "syncer_records_delivered",
    "Records finished, by outcome (created, updated, unchanged, left, deleted, dead, invalid).",
    ["pipeline", "target", "outcome"],
    registry=REGISTRY,
)
ATTEMPTS = Counter(
    "syncer_delivery_attempts",
    "Records handed to a target, retries included.",
    ["target"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "syncer_http_429", "429 Too Many Requests answers received.", ["target"], registry=REGISTRY
)
REQUEST_SECONDS = Histogram(
    "syncer_http_request_seconds",
    "HTTP request latency by target and endpoint.",
    ["target", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
CIRCUIT_STATE = Gauge(
    "syncer_circuit_state",
    "Circuit breaker: 0 closed, 1 half-open, 2 open.",
    ["target"],
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "syncer_last_success_timestamp",
    "Unix time of the last successful run of a job.",
    ["job"],
    registry=REGISTRY,
)
SOURCE_UP = Gauge(
    "syncer_source_up",
    "1 when this process's last call to the Contacthub update stream worked, 0 when it failed.",
    ["stream"],
    registry=REGISTRY,
)
# syncer_erasures_pending and syncer_erasure_oldest_pending_seconds: StateCollector (the
# erasure ledger, syncer/state/erasure_ops.py).
OPTIONAL_OMITTED = Counter(
    "syncer_optional_fields_omitted",
    "Optional field values left out of a record because they were invalid.",
    ["pipeline", "field"],
    registry=REGISTRY,
)


def lag_seconds(cp: Checkpoint, behind: int, now: float) -> float:
    """Seconds ingest has gone without progress: behind the stream's end, since the offset
    last moved; at the end, since the end was last checked (it grows while Contacthub cannot
    be read, or while nothing polls). Either way, it grows only when ingest is stuck."""
    since = cp.updated_at if behind else (cp.stream_checked_at or cp.updated_at)
    return max(0.0, now - since)


class StateCollector(Collector):
    """Reads the database-backed gauges from the store at each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from ..state.stats import state_snapshot

        snap = state_snapshot(self.store)
        offset = GaugeMetricFamily("syncer_stream_offset", "Committed offset.", labels=["stream"])
        last = GaugeMetricFamily(
            "syncer_stream_last_offset", "Stream's last offset, as last seen.", labels=["stream"]
        )
        lag = GaugeMetricFamily("syncer_stream_lag_offsets", "Last - committed.", labels=["stream"])
        lag_s = GaugeMetricFamily(
            "syncer_stream_lag_seconds", "Seconds since ingest was at the end.", labels=["stream"]
        )
        now = time.time()
        # per source (a source of several nodes has a stream each): lag summed, seconds max
        by_source: dict[str, tuple[int, float]] = {}
        for cp in snap.checkpoints:
            offset.add_metric([cp.stream], cp.offset)
            if cp.stream_last_offset is not None:
                last.add_metric([cp.stream], cp.stream_last_offset)
                behind = max(0, cp.stream_last_offset - cp.offset)
                seconds = lag_seconds(cp, behind, now)
                lag.add_metric([cp.stream], behind)
                lag_s.add_metric([cp.stream], seconds)
                was = by_source.get(source_of_stream(cp.stream), (0, 0.0))
                by_source[source_of_stream(cp.stream)] = (was[0] + behind, max(was[1], seconds))
        yield from (offset, last, lag, lag_s)
        source_lag = GaugeMetricFamily(
            "syncer_source_lag_offsets", "Updates not read yet, per source.", labels=["source"]
        )
        source_lag_s = GaugeMetricFamily(
            "syncer_source_lag_seconds",
            "Longest time a stream of the source has gone without progress.",
            labels=["source"],
        )
        for name, (behind_total, worst) in sorted(by_source.items()):
            source_lag.add_metric([name], behind_total)
            source_lag_s.add_metric([name], worst)
        yield from (source_lag, source_lag_s)
        deliveries = GaugeMetricFamily(
            "syncer_deliveries", "Delivery rows by state.", labels=["pipeline", "state"]
        )
        dead = GaugeMetricFamily("syncer_dead_letters", "Dead letters.", labels=["pipeline"])
        for (pipeline, state), count in sorted(snap.deliveries.items()):
            deliveries.add_metric([pipeline, state], count)
            if state == "dead":
                dead.add_metric([pipeline], count)
        yield deliveries
        yield dead
        inbox = GaugeMetricFamily("syncer_inbox_rows", "Updates recorded in the inbox.")
        inbox.add_metric([], snap.inbox_rows)
        yield inbox
        pending = GaugeMetricFamily(
            "syncer_erasures_pending",
            "Erasure requests (customers deleted in Contacthub) not yet acknowledged by every "
            "target.",
        )
        pending.add_metric([], snap.erasures_pending)
        oldest = GaugeMetricFamily(
            "syncer_erasure_oldest_pending_seconds",
            "Age in seconds of the oldest pending erasure request (0 when none is pending).",
        )
        since = snap.erasure_oldest_requested_at
        oldest.add_metric([], 0.0 if since is None else max(0.0, now - since))
        yield pending
        yield oldest
