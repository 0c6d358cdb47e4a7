"""The scenarios, in the order ``make bench`` runs them."""

from __future__ import annotations

from ..scenario import Scenario
from . import (
    backfill_memory,
    change_latency,
    console_pages,
    ingest,
    np6_imports,
    nrs_backfill,
    nrs_latency,
    nrs_ratelimit,
    octopush_batching,
    octopush_lists,
    steady_state,
)

SCENARIOS: list[Scenario] = [
    ingest.SCENARIO,
    nrs_latency.SCENARIO,
    nrs_ratelimit.SCENARIO,
    nrs_backfill.SCENARIO,
    steady_state.SCENARIO,
    octopush_batching.SCENARIO,
    octopush_lists.SCENARIO,
    np6_imports.SCENARIO,
    backfill_memory.SCENARIO,
    change_latency.SCENARIO,
    console_pages.SCENARIO,
    console_pages.SCENARIO_PG,
]
