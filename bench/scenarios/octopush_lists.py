"""octopush-lists: Octopush calls per added contact when the list is templated per country.

``list: "Bench {{ base.address.country }}"`` over the generated customers makes 8 lists (the
generator spells each country 2-4 ways: IT, Italia, Italy, ES, España, Spain, FR, France), so
every claim of the oldest due rows spreads over 8 lists. Before per-list batching
(:mod:`syncer.engine.listfill`) that was 8 partial ``contact/create`` calls per claim.

Floor: 1/500 (one ``contact/create`` per 500 contacts). Checked: ``contact/create`` calls per
added contact, <= 1.1x the floor (the 8 last calls of the lists are partial: about 4 calls of
~100 for 50,000 adds). Also shown: every API call per added contact, the 8 one-off
``contact-list/create`` included. ``syncer sync --once`` runs as a subprocess (killed at the
deadline); calls come from the simulator's request log, adds from its lists afterwards.
"""

from __future__ import annotations

from .. import configs
from ..core import Check, NotRun, Row, median
from ..engine import require, require_cli, run_measured, syncer_cmd
from ..sandbox import SandboxProcess
from ..scenario import Context, Metric, Scenario
from .octopush_batching import api_calls

NAME = "octopush-lists"
BATCH = 500
CREATE = "POST /v1/public/contact/create"
METRICS = (
    Metric(
        "contact/create calls per added contact, 8 lists", "calls", (Check("ratio", "<=", 1.1),)
    ),
    Metric("API calls per added contact, list creation included", "calls"),
)
PIPELINE = {**configs.OCTOPUSH_PIPELINE, "list": "Bench {{ base.address.country }}"}


def run(ctx: Context) -> list[Row]:
    require("syncer.engine.deliver", "syncer.targets.octopush", "syncer.engine.ingest")
    require_cli("sync")
    customers = 6_000 if ctx.quick else 58_000  # ~87 % map to a valid E.164 number
    deadline = 60.0 if ctx.quick else 100.0
    with SandboxProcess(["contacthub", "octopush"]) as sb:
        ctx.log(f"octopush-lists: loading {customers:,} customers into the stream")
        sb.admin("contacthub").load(
            {"generate": {"customers": customers, "seed": 21}, "append_updates": True}
        )
        creates: list[float] = []
        alls: list[float] = []
        details: list[str] = []
        for rep in range(ctx.reps):
            octo = sb.admin("octopush")
            octo.reset()
            cfg = configs.write_config(
                ctx.dir(f"octopush-lists-{rep}"),
                source_cfg=configs.source(sb),
                targets={"octo": configs.octopush_target(sb, batch_size=BATCH)},
                pipelines=[PIPELINE],
            )
            done = run_measured(syncer_cmd(cfg, "sync", "--once"), timeout=deadline)
            requests = octo.requests()
            lists = {n: len(p) for n, p in octo.state()["lists"].items() if p}
            added = sum(lists.values())
            if added == 0:
                raise NotRun(f"no contact reached Octopush; last error: {done.error}")
            n_creates = int(requests["counts"].get(CREATE, 0))
            ideal = sum(-(-n // BATCH) for n in lists.values())
            creates.append(n_creates / added)
            alls.append(api_calls(requests) / added)
            cut = f" (killed at the {deadline:.0f} s deadline)" if done.timed_out else ""
            details.append(
                f"{n_creates} contact/create for {added:,} adds in {len(lists)} lists "
                f"(sum of ceil(list/{BATCH}) = {ideal}), {api_calls(requests)} calls in all, "
                f"{done.seconds:.0f} s{cut}"
            )
            ctx.log(f"octopush-lists rep {rep + 1}: {details[-1]}; {dict(requests['counts'])}")
            if done.timed_out:
                break
    row = METRICS[0].row(
        NAME, value=median(creates), floor=1 / BATCH, floor_label=f"1/{BATCH}", samples=creates
    )
    row.notes.append("; ".join(details))
    every = METRICS[1].row(
        NAME, value=median(alls), floor=1 / BATCH, floor_label=f"1/{BATCH}", samples=alls
    )
    return [row, every]


SCENARIO = Scenario(
    name=NAME,
    description="Octopush calls per added contact over 8 per-country lists, batch_size 500",
    metrics=METRICS,
    run=run,
    budget_s=110,
)
