"""nrs-ratelimit: 360NRS contacts/s under a 20/s limit (simulator and config), 5 minutes.

Floor: 20/s. The backlog is larger than 5 minutes of work; the deliverer is stopped
gracefully at the deadline and contacts/s = contacts done / elapsed. The 429 share and the
requests/s come from the simulator's request log. E-mails are made unique (see
:func:`.nrs_common.load_unique_customers`) and ``lookup_before_create: false`` (one call per
new contact, as the floor assumes). One repetition (the 5-minute run once).
"""

from __future__ import annotations

from ..core import Check, NotRun, Row
from ..engine import require
from ..sandbox import SandboxProcess
from ..scenario import Context, Metric, Scenario
from .nrs_common import (
    api_calls,
    done_count,
    load_unique_customers,
    nrs_config,
    status_count,
    sync,
)

NAME = "nrs-ratelimit"
LIMIT = 20.0
METRICS = (
    Metric("contacts/s at a 20/s limit", "c/s", (Check("ratio", ">=", 0.95),)),
    Metric("429 share of requests", "", (Check("value", "<=", 0.01),)),
    Metric("requests/s at a 20/s limit", "req/s", (Check("ratio", ">=", 0.95),)),
)


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.deliver", "syncer.targets.nrs360", "syncer.engine.ratelimit")
    duration = 60.0 if ctx.quick else 300.0
    # ~94 % have an e-mail: keep more than `duration` seconds of work queued.
    customers = int(LIMIT * duration * 1.3)
    with SandboxProcess(["contacthub", "nrs360"]) as sb:
        load_unique_customers(sb.admin("contacthub"), customers, seed=51)
        nrs = sb.admin("nrs360")
        nrs.faults(rate_limit=LIMIT)
        ctx.log(f"nrs-ratelimit: delivering for {duration:.0f} s at {LIMIT:.0f}/s")
        done = sync(
            nrs_config(
                ctx.dir("nrs-ratelimit"),
                sb,
                max_in_flight=8,
                rate_limit="20/s",
                lookup_before_create=False,
            ),
            deadline_s=duration,
        )
        requests = nrs.requests()
    contacts = done_count(done)
    if contacts == 0:
        raise NotRun(f"nothing delivered to 360NRS (stats: {done.stats})")
    calls = api_calls(requests)
    throttled = status_count(requests, 429)
    rate = contacts / done.seconds
    ctx.log(f"nrs-ratelimit: {contacts:,} contacts, {calls:,} calls, {throttled} x 429")
    row = METRICS[0].row(NAME, value=rate, floor=LIMIT, floor_label="limit", samples=[rate])
    cut = "stopped at the deadline" if not done.finished else "backlog ran out first"
    row.notes.append(
        f"{contacts:,} contacts, {calls:,} calls ({calls / done.seconds:.2f} calls/s) in "
        f"{done.seconds:.0f} s ({cut}); statuses {requests.get('statuses')}"
    )
    share = throttled / calls if calls else None
    share_row = METRICS[1].row(NAME, value=share, samples=[share or 0.0])
    share_row.notes.append(f"{throttled} of {calls:,} requests answered 429")
    req_rate = calls / done.seconds
    req_row = METRICS[2].row(
        NAME, value=req_rate, floor=LIMIT, floor_label="limit", samples=[req_rate]
    )
    return [row, share_row, req_row]


SCENARIO = Scenario(
    name=NAME,
    description="360NRS contacts/s under a 20/s limit for 5 minutes, and the 429 share",
    metrics=METRICS,
    run=run,
    budget_s=310,
)
