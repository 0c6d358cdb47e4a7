"""The whole system with several sources: two workspaces (one with two entry nodes) feeding one
360NRS target, churn on every node, one workspace down for a while (the sandbox's
``down_workspaces`` switch), ``syncer run`` SIGKILLed several times. The end state is exact:
every customer of every source is in the target once, with its latest data.

Deterministic: when the kills land changes how far each run gets, never the end state; nothing
is asserted about time."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import ENV, TOKEN

from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.serve import ServedApp

SYNCER = str(Path(sys.executable).with_name("syncer"))
WS_IT, NODE_IT = "ws-it", "n-it"
WS_AG, NODES_AG = "ws-agency", ["n-a", "n-b"]
NODES = {NODE_IT: WS_IT, **dict.fromkeys(NODES_AG, WS_AG)}

CONFIG = """\
version: 1
state: {{url: "{state}"}}
metrics: {{address: "127.0.0.1:0"}}
sources:
  brand-it:
    type: contacthub
    base_url: {ch}/hub/v1
    workspace_id: {ws_it}
    node_id: {node_it}
    token: ${{CH_TOKEN}}
    page_size: 10
    poll_interval: 1s
    timeout: 5s
  agency:
    type: contacthub
    base_url: {ch}/hub/v1
    workspace_id: {ws_ag}
    node_ids: [{nodes_ag}]
    token: ${{CH_TOKEN}}
    page_size: 10
    poll_interval: 1s
    timeout: 5s
targets:
  nrs:
    type: 360nrs
    base_url: {nrs}/api/rest
    username: ${{NRS_USER}}
    api_password: ${{NRS_PASSWORD}}
    max_attempts: 50
pipelines:
  - name: everyone
    target: nrs
    entity: customer
    fields: {{email: base.contacts.email, name: base.firstName}}
    groups: [All]
engine: {{backoff_base: 0.1s, backoff_max: 1s}}
"""


def _new_customer(node: str, n: int) -> dict[str, object]:
    return {
        "nodeId": node,
        "externalId": f"{node}-{n}",
        "base": {"firstName": f"v0-{node}-{n}", "contacts": {"email": f"{node}-{n}@x.org"}},
    }


class _Churn:
    """Creates and renames customers through the Contacthub API, seeded."""

    def __init__(self, api: httpx.Client, seed: int) -> None:
        self.api, self.rng = api, random.Random(seed)
        self.ids: dict[str, list[str]] = {node: [] for node in NODES}
        self.created = 0

    def round(self, down: set[str]) -> None:
        for node, ws in NODES.items():
            if ws in down:  # its API answers 503 too
                continue
            prefix = f"/hub/v1/workspaces/{ws}/customers"
            for _ in range(6):
                self.created += 1
                made = self.api.post(prefix, json=_new_customer(node, self.created))
                made.raise_for_status()
                self.ids[node].append(made.json()["id"])
            for cid in self.rng.sample(self.ids[node], min(4, len(self.ids[node]))):
                body = {"base": {"firstName": f"v{self.created}-{cid[:8]}"}}
                self.api.patch(f"{prefix}/{cid}", json=body).raise_for_status()


def _offsets(state: str) -> dict[str, int]:
    engine = create_engine(state)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text('SELECT stream, "offset" FROM checkpoints')).all()
    finally:
        engine.dispose()
    return {str(stream): int(offset) for stream, offset in rows}


def test_two_workspaces_three_nodes_churn_outage_and_sigkills(tmp_path: Path) -> None:
    ch = ContacthubSimulator(
        workspace_id=WS_IT, node_ids=[NODE_IT], token=TOKEN, extra_workspaces={WS_AG: NODES_AG}
    )
    nrs_sim = Nrs360Simulator(behaviour=Nrs360Behaviour(duplicates="allow"))  # doubles show
    rng = random.Random(19)
    with ServedApp(ch.asgi()) as chs, ServedApp(nrs_sim.asgi()) as nrs:
        state = f"sqlite:///{tmp_path / 'state.db'}"
        cfg = tmp_path / "syncer.yaml"
        cfg.write_text(
            CONFIG.format(
                state=state,
                ch=chs.url,
                nrs=nrs.url,
                ws_it=WS_IT,
                node_it=NODE_IT,
                ws_ag=WS_AG,
                nodes_ag=", ".join(NODES_AG),
            )
        )
        env = {**os.environ, **ENV, "SYNCER_CONFIG": str(cfg)}
        api = httpx.Client(base_url=chs.url, headers={"Authorization": f"Bearer {TOKEN}"})
        churn = _Churn(api, seed=7)
        churn.round(set())
        subprocess.run([SYNCER, "db", "upgrade"], env=env, check=True, capture_output=True)
        # runs 1-2: the agency workspace is down (its ingest backs off; brand-it goes on)
        plan = [{WS_AG}, {WS_AG}, set(), set()]
        for down in plan:
            ch.behaviour = ch.behaviour.updated({"down_workspaces": sorted(down)})
            proc = subprocess.Popen(
                [SYNCER, "--log-level", "error", "run"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            churn.round(down)
            time.sleep(rng.uniform(1.5, 3.0))  # when the kill lands, not a speed limit
            assert proc.poll() is None, "syncer run ended before its kill"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if down:  # a workspace that is down is never read
                assert all(v == 0 for s, v in _offsets(state).items() if s.startswith("agency:"))
            churn.round(down)  # changes while syncer is down
        ch.behaviour = ch.behaviour.updated({"down_workspaces": []})
        done = subprocess.run(
            [SYNCER, "sync", "--once"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        got = httpx.get(nrs.url + "/_sandbox/state", timeout=30).json()["contacts"]
        api.close()
    want = {
        str(c["base"]["contacts"]["email"]): str(c["base"]["firstName"])
        for ws in (WS_IT, WS_AG)
        for c in ch.workspaces[ws].customers.values()
    }
    assert len(want) == churn.created  # every customer created is one expected contact
    emails = Counter(c["email"] for c in got)
    assert [e for e, k in emails.items() if k > 1] == []  # each once
    assert {c["email"]: c["name"] for c in got} == want  # every customer, latest data
    engine = create_engine(state)
    with engine.connect() as conn:
        streams = set(conn.execute(text("SELECT stream FROM checkpoints")).scalars())
        ids = list(conn.execute(text("SELECT entity_id FROM entities")).scalars())
    engine.dispose()
    assert all(v > 0 for v in _offsets(state).values())  # every stream read
    assert streams == {f"brand-it:{WS_IT}/{NODE_IT}"} | {f"agency:{WS_AG}/{n}" for n in NODES_AG}
    assert {i.split(":")[0] for i in ids} == {"brand-it", "agency"}
    assert len(ids) == churn.created
