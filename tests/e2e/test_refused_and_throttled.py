"""Long ``Retry-After`` and refused credentials on a batch, against the real ``syncer`` binary
(issue 13, defects 6 and 7).

360NRS sits behind a small ASGI wrapper that answers its contact writes (``POST``/``PUT
/api/rest/contacts``) with a 429 ``Retry-After: 3600``, or with a 401/403, while its other calls
(the start-up credential check ``GET /groups``) reach the simulator. Sources: 360NRS documents
no 429 at all (DIGEST 2.9, "Rate limit: not documented"), so a server that asks for an hour is
a choice, the worst case the cap exists for; 401 is 360NRS's answer to unknown credentials
(DIGEST 2.7, error 103), 403 the generic "forbidden" syncer treats the same way (choice).

Only state and exit codes are asserted: where the rows are, their attempts and due times
(compared with the clock readings taken around the run, not with how long anything took).
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from syncer.state import db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))
from workload import Sims, build_dataset, load_contacthub, start_daemon, sync_once, write_config


class AnswerContactWrites:
    """360NRS, except that contact writes get ``status`` (and ``headers``) unsent."""

    def __init__(self, app: ASGIApp, status: int, headers: dict[str, str]) -> None:
        self.app, self.status, self.headers = app, status, headers
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        write = scope["type"] == "http" and scope["method"] in ("POST", "PUT")
        if not (write and path.startswith("/api/rest/contacts")):
            await self.app(scope, receive, send)
            return
        self.answered += 1
        headers = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        start = {
            "type": "http.response.start",
            "status": self.status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b'{"error":"answered by the test"}'})


def _nrs_rows(path: Path) -> list[tuple[str, int, float, str | None, str]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(
            "SELECT state, attempts, due_at, last_error, entity_id FROM deliveries "
            "WHERE target = 'nrs'"
        ).fetchall()


def _parked(rows: list[tuple[str, int, float, str | None, str]]) -> bool:
    """Every customer's first row parked (``failed``); its later rows wait behind it,
    ``pending`` (a change never overtakes an older one waiting for its retry)."""
    parked = {r[4] for r in rows if r[0] == "failed"}
    return bool(rows) and all(
        r[0] == "failed" or (r[0] == "pending" and r[4] in parked) for r in rows
    )


def _setup(tmp_path: Path, sims: Sims, status: int, headers: dict[str, str], **cfg: Any) -> Any:
    wrapper = AnswerContactWrites(sims.taps["nrs360"].app, status, headers)
    sims.taps["nrs360"].app = wrapper
    data, events = build_dataset(30, 0, seed=7)
    load_contacthub(sims.url("contacthub"), data, events)
    config, url = write_config(tmp_path, sims, **cfg)
    engine = db.create_state_engine(url)
    db.upgrade(engine)  # the schema first: the test reads the tables while syncer starts
    engine.dispose()
    return wrapper, config


@pytest.mark.parametrize(
    ("delivery", "cap"),
    [(None, 900.0), ({"max_retry_after_seconds": "1m"}, 60.0)],
    ids=["default-cap", "configured-cap"],
)
def test_a_retry_after_of_an_hour_parks_the_rows_until_the_cap_and_stop_ends_the_run(
    tmp_path: Path, delivery: dict[str, str] | None, cap: float
) -> None:
    with Sims() as sims:
        wrapper, config = _setup(tmp_path, sims, 429, {"Retry-After": "3600"})
        if delivery is not None:
            with config.open("a", encoding="utf-8") as f:
                f.write(f"delivery: {delivery}\n")
        state = tmp_path / "state.db"
        before = time.time()
        daemon = start_daemon(config, tmp_path / "syncer.log")
        try:
            # a hang guard: every 360NRS customer parked (due later), nothing left in flight
            deadline = time.monotonic() + 60
            while True:
                rows = _nrs_rows(state)
                if _parked(rows):
                    break
                assert daemon.poll() is None, (tmp_path / "syncer.log").read_text()[-2000:]
                assert time.monotonic() < deadline, f"rows not parked: {rows}"
                time.sleep(0.2)
            after = time.time()
            daemon.terminate()  # SIGTERM: a stop request; nothing sleeps through it
            code = daemon.wait(timeout=60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    rows = _nrs_rows(state)
    assert code == 0, (tmp_path / "syncer.log").read_text()[-2000:]
    assert wrapper.answered > 0
    assert _parked(rows) and all(attempts == 0 for _, attempts, _, _, _ in rows), rows
    # due at the cap after the 429 (not an hour later): between the clock readings around it
    for _, _, due_at, error, _ in (r for r in rows if r[0] == "failed"):
        assert before + cap - 1 <= due_at <= after + cap + 1, (due_at - before, rows)
        assert error and "429" in error, error


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_on_a_batch_release_the_rows_untouched_and_exit_3(
    tmp_path: Path, status: int
) -> None:
    with Sims() as sims:
        wrapper, config = _setup(tmp_path, sims, status, {}, max_attempts=1)
        state = tmp_path / "state.db"
        runs = [sync_once(config, timeout=120) for _ in range(2)]  # one attempt would kill
    for run in runs:
        # docs/operations.md, exit codes: a target that refuses its credentials during a
        # `sync --once` stops and the run exits 3
        assert run.returncode == 3, run.stdout[-2000:] + run.stderr[-2000:]
        assert "error: target nrs stopped" in run.stderr, run.stderr[-2000:]
        assert "Traceback" not in run.stderr
    assert wrapper.answered >= 2  # each run met the refusal on a batch, after its start check
    rows = _nrs_rows(state)
    assert rows
    assert all(state == "pending" and attempts == 0 for state, attempts, *_ in rows), rows
