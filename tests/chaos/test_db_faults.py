"""The state database misbehaving under a real ``syncer run`` (all three target types, over
real HTTP against the sandbox):

* SQLite locked by another connection holding the write lock for a while: syncer waits and
  resumes; PostgreSQL stopped and restarted under it: syncer logs, backs off, continues.
  Throughout, the committed offset equals the number of stream updates recorded in the inbox:
  it never moves past what was recorded (sampled many times a second), and never backwards.
* A database syncer cannot open at all (PostgreSQL down at start, an unsupported or malformed
  URL, an SQLite path that cannot be created): a clear one-line message, no traceback, exit 3
  (exit 2 when the config itself is wrong).
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import (
    STREAM,
    Background,
    Sandbox,
    cli,
    config_doc,
    customer,
    free_port,
    json_lines,
    order,
    sandbox,
    start,
    wait_for,
    write_config,
)
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool


def _read(url: str) -> tuple[int, int] | None:
    """(committed offset, stream updates in the inbox), read in one transaction; None while
    the database is unreachable or not created yet."""
    engine = create_engine(url, connect_args={"connect_timeout": 2} if "postgres" in url else {})
    try:
        with engine.connect() as conn:  # one statement: one snapshot, on PostgreSQL too
            offset, inbox = conn.execute(
                text(
                    'SELECT (SELECT "offset" FROM checkpoints WHERE stream = :s), '
                    "(SELECT COUNT(*) FROM inbox WHERE origin = 'stream')"
                ),
                {"s": STREAM},
            ).one()
        return int(offset or 0), int(inbox)
    except Exception:
        return None
    finally:
        engine.dispose()


class Watch:
    """Samples (offset, inbox) in a thread for as long as it runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = _read(self.url)
            if sample is not None:
                self.samples.append(sample)
            time.sleep(0.05)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def check(self) -> None:
        assert self.samples, "no sample of the offset was taken"
        for offset, inbox in self.samples:
            assert offset == inbox, f"offset {offset} but {inbox} stream updates recorded"
        offsets = [o for o, _ in self.samples]
        assert offsets == sorted(offsets), "the committed offset moved backwards"


def _offset(url: str) -> int:
    sample = _read(url)
    return sample[0] if sample else -1


def _load(sb: Sandbox, first: int, count: int) -> list[dict[str, Any]]:
    docs = [customer(n) for n in range(first, first + count)]
    sb.load(docs, [order(n, docs[n - first]["id"]) for n in range(first, first + count, 5)])
    return docs


def _stream_length(sb: Sandbox) -> int:
    return len(sb.contacthub.workspaces[sb.contacthub.workspace_id].updates)


def _delivered(sb: Sandbox, count: int) -> Callable[[], bool]:
    def check() -> bool:
        nrs = len(sb.state("nrs360")["contacts"])
        octo = len(sb.state("octopush")["contacts"])
        return nrs == count and octo == count

    return check


def _stop_daemon(proc: Background) -> str:
    code, _, err = proc.stop()
    assert code == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return err


def _outage_run(
    tmp_path: Path, state_url: str, outage: Callable[[Sandbox], None]
) -> list[dict[str, Any]]:
    """Daemon running; 30 customers synced; ``outage`` runs while 30 more arrive; then all 60
    must be read and delivered, with the offset invariant checked throughout. Returns the
    daemon's log events."""
    with sandbox() as sb:
        cfg = write_config(tmp_path / "syncer.yaml", config_doc(sb, state_url, page_size=10))
        _load(sb, 1, 30)
        with Watch(state_url) as watch, start(cfg, "run") as proc:
            wait_for(lambda: _offset(state_url) == _stream_length(sb), 60, "first read")
            wait_for(_delivered(sb, 30), 60, "first delivery")
            _load(sb, 31, 30)
            outage(sb)
            assert proc.alive(), "the daemon died during the outage"
            wait_for(lambda: _offset(state_url) == _stream_length(sb), 90, "read after")
            wait_for(_delivered(sb, 60), 90, "delivered after")
            wait_for(lambda: len(sb.state("np6")["targets"]) == 12, 60, "orders delivered")
            err = _stop_daemon(proc)
        watch.check()
    return json_lines(err)


# -- SQLite locked ---------------------------------------------------------------------------


def _hold_sqlite_lock(path: Path, seconds: float, url: str) -> Callable[[Sandbox], None]:
    def outage(sb: Sandbox) -> None:
        before = _offset(url)
        lock = sqlite3.connect(path, timeout=60, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")  # the write lock: syncer's writers must wait
            lock.execute("UPDATE heartbeats SET at = at")
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(0.2)
                assert _offset(url) == before, "the offset moved while the database was locked"
        finally:
            lock.execute("COMMIT")
            lock.close()

    return outage


def test_sqlite_locked_for_a_while_syncer_waits_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    events = _outage_run(tmp_path, url, _hold_sqlite_lock(path, 4.0, url))
    assert not [e for e in events if e.get("level") == "error"], events


@pytest.mark.slow
def test_sqlite_locked_longer_than_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    events = _outage_run(tmp_path, url, _hold_sqlite_lock(path, 45.0, url))
    locked = [e for e in events if "database is locked" in str(e)]
    assert locked, "the jobs must have hit the busy timeout and said so"


# -- PostgreSQL stopped and restarted --------------------------------------------------------


def _pg_ctl(action: str) -> None:
    ctl, data = os.environ.get("SYNCER_TEST_PG_CTL"), os.environ.get("SYNCER_TEST_PG_DATA")
    if not ctl or not data:
        pytest.skip("needs SYNCER_TEST_PG_CTL and SYNCER_TEST_PG_DATA (tools/with-postgres.sh)")
    if action == "stop":
        extra = "-m fast"
    else:  # start the server as tools/with-postgres.sh did: same port, socket directory...
        opts = shlex.split(Path(data, "postmaster.opts").read_text())[1:]
        while "-D" in opts:
            at = opts.index("-D")
            del opts[at : at + 2]
        extra = f"-l '{data}/../restart.log' -o {shlex.quote(shlex.join(opts))}"
    command = f"'{ctl}' -D '{data}' -w {extra} {action}"
    if os.geteuid() == 0:
        subprocess.run(["su", "syncer-pg", "-s", "/bin/sh", "-c", command], check=True)
    else:
        subprocess.run(["sh", "-c", command], check=True)


def _admin(statement: str) -> None:
    """One statement on the server's maintenance database, on a connection of its own (a
    pooled one would not survive the restart)."""
    base = os.environ["SYNCER_TEST_PG_URL"]
    engine = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def restartable_pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the server of tools/with-postgres.sh, which the test
    may stop and start (the suite's ``pg_url`` keeps a pooled admin connection)."""
    if not os.environ.get("SYNCER_TEST_PG_URL"):
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: SYNCER_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL server: run the suite with `make test` to start one")
    name = f"t_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield os.environ["SYNCER_TEST_PG_URL"].rsplit("/", 1)[0] + "/" + name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
@pytest.mark.serial
def test_postgresql_stopped_and_restarted_syncer_backs_off_and_continues(
    tmp_path: Path, restartable_pg_url: str
) -> None:
    pg_url = restartable_pg_url
    _pg_ctl("status")

    def outage(sb: Sandbox) -> None:
        _pg_ctl("stop")
        try:
            time.sleep(5.0)  # a few poll and delivery ticks fail meanwhile
        finally:
            _pg_ctl("start")

    events = _outage_run(tmp_path, pg_url, outage)
    backoffs = [e for e in events if e.get("event") == "state database unavailable; job backs off"]
    assert backoffs, "the failing ticks must have been logged"
    assert {e["job"] for e in backoffs} >= {"ingest", "deliver:nrs", "deliver:octo"}
    assert max(e["retry_in"] for e in backoffs) > 1.0, "the jobs back off"
    assert any(e.get("event") == "state database reachable again" for e in events)
    assert not [e for e in events if "exception" in e], "an outage is logged, not a traceback"


# -- cannot start at all ----------------------------------------------------------------------


def _cannot_start_cases(tmp_path: Path) -> list[tuple[str, str, int, str]]:
    (tmp_path / "a-file").write_text("x")
    closed = free_port()
    return [
        (
            "postgresql down",
            f"postgresql+psycopg://postgres@127.0.0.1:{closed}/syncer",
            3,
            "error: cannot open the state database: connection failed: connection to server "
            f'at "127.0.0.1", port {closed} failed: Connection refused '
            f"(state.url postgresql+psycopg://postgres@127.0.0.1:{closed}/syncer)",
        ),
        (
            "sqlite in a missing directory",
            f"sqlite:///{tmp_path}/no/such/dir/state.db",
            3,
            f"error: cannot open the SQLite state database {tmp_path}/no/such/dir/state.db: "
            f"No such file or directory ({tmp_path}/no/such/dir/state.db.lock)",
        ),
        (
            "sqlite under a file",
            f"sqlite:///{tmp_path}/a-file/state.db",
            3,
            f"error: cannot open the SQLite state database {tmp_path}/a-file/state.db: "
            f"Not a directory ({tmp_path}/a-file/state.db.lock)",
        ),
        (
            "not a URL",
            "not a url",
            2,
            "{cfg}: state.url: invalid database URL: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DATABASE",
        ),
        (
            "unsupported database",
            "mysql://syncer:pw@db/syncer",
            2,
            "{cfg}: state.url: unsupported database 'mysql': use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DATABASE",
        ),
        (
            "SQLite in memory",
            "sqlite://",
            2,
            "{cfg}: state.url: a SQLite state database needs a file path, e.g. "
            "sqlite:///./syncer.db (in memory, the state would be lost at exit)",
        ),
        (
            "another PostgreSQL driver",
            "postgresql+psycopg2://syncer:pw@db/syncer",
            2,
            "{cfg}: state.url: unsupported PostgreSQL driver 'psycopg2': use "
            "postgresql+psycopg://USER@HOST/DATABASE",
        ),
    ]


def test_a_database_that_cannot_be_opened_stops_with_one_clear_line(tmp_path: Path) -> None:
    """Every case through ``syncer run``; two of them through the other commands too (the
    processes run concurrently: most of their time is the interpreter starting)."""
    with sandbox() as sb:
        runs: list[tuple[str, list[str], Path, int, str]] = []
        for n, (name, url, code, message) in enumerate(_cannot_start_cases(tmp_path)):
            cfg = write_config(tmp_path / f"syncer-{n}.yaml", config_doc(sb, url))
            commands = [["run"]]
            if name == "postgresql down":
                commands += [["sync", "--once"], ["status", "--json"]]
            runs += [(name, c, cfg, code, message.format(cfg=cfg)) for c in commands]
            if name == "sqlite under a file":  # status takes no lock: Store says it
                db = f"{tmp_path}/a-file/state.db"
                said = f"error: cannot open the state database {db}: unable to open database file"
                runs.append((name, ["status"], cfg, 3, said))
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda r: cli(r[2], *r[1], timeout=60), runs))
        for (name, command, _cfg, code, message), result in zip(runs, results, strict=True):
            got = (result.returncode, result.stderr.strip(), result.stdout)
            assert got == (code, message, ""), (name, command)
        assert sb.state("nrs360")["contacts"] == []


def test_which_database_errors_mean_unavailable() -> None:
    """The daemon backs off (one line, no traceback) on these, and only these."""
    import sqlite3 as lite

    import psycopg
    from sqlalchemy.exc import IntegrityError, OperationalError

    from syncer.state.db import db_unavailable

    def wrap(orig: Exception, cls: type[Any] = OperationalError) -> Any:
        return cls("SELECT secret_sql", {"p": "param"}, orig)

    refused = psycopg.OperationalError("connection failed: Connection refused\nIs it running?")
    assert db_unavailable(wrap(refused)) == "connection failed: Connection refused"
    assert db_unavailable(wrap(lite.OperationalError("database is locked"))) == (
        "database is locked"
    )
    assert db_unavailable(wrap(lite.OperationalError("no such table: inbox"))) is None
    assert db_unavailable(wrap(lite.IntegrityError("UNIQUE failed"), IntegrityError)) is None
    assert db_unavailable(ValueError("x")) is None
