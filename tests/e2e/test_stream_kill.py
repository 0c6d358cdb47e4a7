"""SIGKILL a real ``syncer sync --once`` at random moments while it ingests, restart it, and
check the inbox and the checkpoint match the stream exactly: nothing lost, nothing twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from chub_kit import ENV, NEVER, STREAM, api, served_contacthub, stream_entries, write_config

SYNCER = str(Path(sys.executable).with_name("syncer"))


def _offset(engine: Engine) -> int:
    """The committed stream offset (0 before the first page)."""
    with engine.connect() as conn:
        value = conn.execute(text('SELECT "offset" FROM checkpoints')).scalar()
    return int(value or 0)


def _kill_loop(tmp_path: Path, kills: int, customers: int, seed: int) -> None:
    rng = random.Random(seed)
    with served_contacthub() as (sim, served):
        sim.load({"generate": {"customers": customers, "events": customers // 2, "seed": seed}})
        client = api(served)
        # the stream: every generated customer and event, then more writes while we kill
        docs = sim.dump_state()
        client.post("/_sandbox/load", json={"customers": [], "events": []})
        sim.reset()
        client.post(
            "/_sandbox/load",
            json={
                "customers": docs["customers"],
                "events": docs["events"],
                "append_updates": True,
            },
        )
        client.put("/_sandbox/faults", json={"latency_ms": 40})
        state = f"sqlite:///{tmp_path / 'state.db'}"
        cfg = write_config(tmp_path, served.url, state, pipelines=NEVER, page_size=50)
        env = {**os.environ, **ENV, "SYNCER_CONFIG": str(cfg)}
        engine = create_engine(state)
        # The kills are about ingest, not start-up: create the schema first, and kill each
        # run once it has committed progress (waited for, not timed), a random moment later,
        # so every kill lands mid-stream whatever the machine's speed.
        subprocess.run([SYNCER, "db", "upgrade"], env=env, check=True, capture_output=True)
        offsets = [0]
        for n in range(kills):
            proc = subprocess.Popen(
                [SYNCER, "--log-level", "warning", "sync", "--once"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 120  # a hang guard, not a speed limit
            while _offset(engine) <= offsets[-1]:
                if proc.poll() is not None:
                    pytest.fail(
                        f"syncer ended before kill {n}: {proc.stderr.read().decode()[-500:]}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail(f"no ingest progress before kill {n}")
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stderr.close()  # type: ignore[union-attr]
            if n % 4 == 0:  # the stream keeps growing while syncer is down
                for i in range(3):
                    client.post(
                        f"/hub/v1/workspaces/{sim.workspace_id}/customers",
                        json={
                            "nodeId": sim.node_id,
                            "externalId": f"k{n}-{i}",
                            "base": {"firstName": "K"},
                        },
                    )
            offsets.append(_offset(engine))
        last = len(stream_entries(sim))
        # each run stops after a few pages (40 ms each at least): the last kill is mid-stream
        assert offsets[-1] < last, "every kill must land before the end of the stream"
        client.put("/_sandbox/faults", json={})  # the last run reads the rest at full speed
        done = subprocess.run(
            [SYNCER, "sync", "--once"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        with engine.connect() as conn:
            inbox = conn.execute(
                text(
                    "SELECT operation, entity_type, entity_id FROM inbox "
                    "WHERE origin = 'stream' ORDER BY page_offset, position"
                )
            ).all()
            by_id = (
                conn.execute(
                    text("SELECT entity_id FROM inbox WHERE origin = 'stream' ORDER BY id")
                )
                .scalars()
                .all()
            )
            offset = conn.execute(
                text('SELECT "offset" FROM checkpoints WHERE stream = :s'), {"s": STREAM}
            ).scalar_one()
        engine.dispose()
        assert [tuple(r) for r in inbox] == stream_entries(sim)
        assert by_id == [r[2] for r in inbox]
        assert offset == sim.workspaces[sim.workspace_id].updates.last_offset(None, None)


def test_twenty_sigkills_during_ingest_lose_nothing_and_apply_nothing_twice(
    tmp_path: Path,
) -> None:
    _kill_loop(tmp_path, kills=20, customers=16_000, seed=4)


@pytest.mark.slow
def test_a_hundred_sigkills(tmp_path: Path) -> None:
    _kill_loop(tmp_path, kills=100, customers=60_000, seed=5)
