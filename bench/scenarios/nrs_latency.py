"""nrs-latency: 360NRS contacts/s with 50 ms simulated latency, ``max_in_flight: 16``.

Floor: 16 / 0.05 s = 320 contacts/s (one call per new contact). Sanity floor measured in the
same run: a bare 16-thread httpx loop creating contacts against the same simulator. Each
repetition: empty 360NRS account, fresh state DB, ingest (untimed), delivery (timed).
E-mails are made unique (see :func:`.nrs_common.load_unique_customers`) and
``lookup_before_create: false``, so a new contact is one call, as the floor assumes (the
default, true, adds one lookup per new contact: half the contacts/s at the same calls/s).
"""

from __future__ import annotations

from ..core import Check, NotRun, Row, median
from ..engine import require
from ..sandbox import SandboxProcess
from ..scenario import Context, Metric, Scenario
from .nrs_common import (
    api_calls,
    bare_create_rate,
    done_count,
    load_unique_customers,
    nrs_config,
    sync,
)

NAME = "nrs-latency"
IN_FLIGHT = 16
LATENCY_MS = 50
IDEAL = IN_FLIGHT / (LATENCY_MS / 1000)
METRICS = (
    Metric("contacts/s delivered, 50 ms latency", "c/s", (Check("ratio", ">=", 0.9),)),
    Metric("bare 16-thread httpx loop (sanity floor)", "c/s"),
)


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.deliver", "syncer.targets.nrs360", "syncer.engine.ingest")
    customers = 1_000 if ctx.quick else 4_000
    values: list[float] = []
    bares: list[float] = []
    details: list[str] = []
    with SandboxProcess(["contacthub", "nrs360"]) as sb:
        load_unique_customers(sb.admin("contacthub"), customers, seed=41)
        nrs = sb.admin("nrs360")
        for rep in range(ctx.reps):
            nrs.reset()
            nrs.faults(latency_ms=LATENCY_MS)
            bare = bare_create_rate(sb.api("nrs360"), customers // 4, IN_FLIGHT)
            bares.append(bare)
            nrs.reset()
            nrs.faults(latency_ms=LATENCY_MS)
            config = nrs_config(
                ctx.dir(f"nrs-latency-{rep}"),
                sb,
                max_in_flight=IN_FLIGHT,
                lookup_before_create=False,
            )
            done = sync(config)
            contacts = done_count(done)
            if contacts == 0:
                raise NotRun(f"nothing delivered to 360NRS (stats: {done.stats})")
            calls = api_calls(nrs.requests())
            values.append(contacts / done.seconds)
            details.append(
                f"{contacts:,} contacts, {calls:,} calls ({calls / contacts:.3f}/contact) "
                f"in {done.seconds:.1f} s"
            )
            ctx.log(
                f"nrs-latency rep {rep + 1}: engine {contacts / done.seconds:,.0f} c/s, "
                f"bare {bare:,.0f} c/s; {details[-1]}"
            )
    row = METRICS[0].row(
        NAME,
        value=median(values),
        floor=IDEAL,
        floor_label="16/0.05 s",
        samples=values,
    )
    row.notes.extend(details)
    bare_row = METRICS[1].row(
        NAME, value=median(bares), floor=IDEAL, floor_label="16/0.05 s", samples=bares
    )
    return [row, bare_row]


SCENARIO = Scenario(
    name=NAME,
    description="360NRS contacts/s at 50 ms latency, 16 in flight, vs 320/s",
    metrics=METRICS,
    run=run,
    budget_s=75,
)
