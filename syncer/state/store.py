"""The state store: one object per process wrapping the database, with the operations every part
of syncer shares (checkpoints and the polling lease, per-target key/value memory and locks,
target jobs, runs, heartbeats). Ingest and delivery operations live next to it in
:mod:`.ingest_ops` and :mod:`.delivery_ops` and run inside :meth:`Store.transaction`.

Portability: the same code runs on SQLite (one process, WAL) and PostgreSQL (several processes);
:func:`upsert` hides the dialects' ``ON CONFLICT`` spelling, :meth:`Store.kv_lock` uses an
advisory lock on PostgreSQL and a process-local lock on SQLite (where only one process may run).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from ..errors import StateError
from ..targets.base import Job
from . import db
from .schema import checkpoints, heartbeats, runs, target_jobs, target_kv


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update_cols: Sequence[str] | None = None,
) -> None:
    """Insert ``rows``, updating ``update_cols`` (default: all non-key columns) on key conflict."""
    if not rows:
        return
    dialect = conn.dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - only the two supported backends
        raise StateError(f"unsupported database dialect {dialect!r}")
    cols = update_cols if update_cols is not None else [c for c in rows[0] if c not in keys]
    if cols:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt, list(rows))


@dataclass(frozen=True)
class Checkpoint:
    stream: str
    offset: int
    updated_at: float
    lease_owner: str | None
    lease_expires_at: float | None
    stream_last_offset: int | None
    backfill_offset: int | None
    backfill_state: str | None
    stream_checked_at: float | None = None  # when stream_last_offset was read


def _job_json(data: dict[str, Any]) -> str:
    """A job's data as JSON text (orjson: an NP6 import job holds up to ``max_rows`` rows)."""
    return orjson.dumps(data).decode()


class Store:
    """The state database of one syncer process."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = db.create_state_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._local_locks: dict[str, threading.Lock] = {}
        self._local_locks_guard = threading.Lock()
        try:
            if migrate:
                db.upgrade(self.engine)
            else:
                db.check_schema(self.engine)
        except OperationalError as exc:
            where = f" {self.engine.url.database}" if self.is_sqlite else ""  # no password
            raise StateError(
                f"cannot open the state database{where}: {_safe_db_error(exc)}"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One database transaction: committed on success, rolled back on any exception."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A connection for reads only: on SQLite it takes no write lock."""
        with self.engine.connect() as conn:
            conn.execution_options(**{db.READ_ONLY: True})
            yield conn

    def truncate_wal(self) -> bool:
        """SQLite: copy the write-ahead log into the database and empty it, so the page images
        of past transactions (a scrubbed customer's documents among them) leave the disk;
        False when a reader still holds the log (it is overwritten later). PostgreSQL: no-op
        (old row versions go with VACUUM)."""
        if not self.is_sqlite:
            return True
        raw = self.engine.raw_connection()
        try:  # outside a transaction: a checkpoint cannot run inside one
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy = cursor.fetchone()
            cursor.close()
        finally:
            raw.close()
        return busy is None or not busy[0]

    def compact(self) -> bool:
        """SQLite: rewrite the whole file (``VACUUM``), then empty the write-ahead log, so no
        byte of a scrubbed row is left on disk: ``secure_delete`` zeroes what is deleted, but a
        page rebuilt when rows move between pages keeps stale copies in its free area. Holds
        the write lock for as long as the rewrite takes. False when the lock or the log was
        busy (the caller tries again later). PostgreSQL: no-op (dead row versions go with
        VACUUM, which autovacuum runs)."""
        if not self.is_sqlite:
            return True
        raw = self.engine.raw_connection()
        try:  # outside a transaction: VACUUM cannot run inside one
            cursor = raw.cursor()
            cursor.execute("VACUUM")
            cursor.close()
        except sqlite3.OperationalError as exc:  # a raw connection's errors are not wrapped
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return False
        finally:
            raw.close()
        return self.truncate_wal()

    def ping(self) -> bool:
        try:
            with self.reader() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except OperationalError:
            return False

    # -- checkpoints and the polling lease -------------------------------------------------
    def checkpoint(self, stream: str, conn: Connection | None = None) -> Checkpoint | None:
        query = select(checkpoints).where(checkpoints.c.stream == stream)
        if conn is None:
            with self.reader() as own:
                row = own.execute(query).mappings().first()
        else:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return Checkpoint(**{k: row[k] for k in Checkpoint.__dataclass_fields__})

    def ensure_checkpoint(self, conn: Connection, stream: str) -> None:
        upsert(
            conn,
            checkpoints,
            [{"stream": stream, "offset": 0, "updated_at": time.time()}],
            ["stream"],
            update_cols=[],
        )

    def acquire_lease(self, stream: str, owner: str, ttl: float) -> bool:
        """Take or renew the polling lease; False when another owner holds a live one."""
        now = time.time()
        with self.transaction() as conn:
            self.ensure_checkpoint(conn, stream)
            result = conn.execute(
                update(checkpoints)
                .where(checkpoints.c.stream == stream)
                .where(
                    (checkpoints.c.lease_owner.is_(None))
                    | (checkpoints.c.lease_owner == owner)
                    | (checkpoints.c.lease_expires_at < now)
                )
                .values(lease_owner=owner, lease_expires_at=now + ttl)
            )
            return result.rowcount == 1

    def release_lease(self, stream: str, owner: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                update(checkpoints)
                .where(checkpoints.c.stream == stream, checkpoints.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    def lease_is_live(self, stream: str, now: float | None = None) -> bool:
        cp = self.checkpoint(stream)
        now = time.time() if now is None else now
        return bool(cp and cp.lease_owner and (cp.lease_expires_at or 0) > now)

    def set_offset(self, stream: str, offset: int) -> None:
        """Operator override of the committed offset (the CLI checks the lease first)."""
        if offset < 0:
            raise StateError(f"offset must be >= 0, got {offset}")
        with self.transaction() as conn:
            self.ensure_checkpoint(conn, stream)
            conn.execute(
                update(checkpoints)
                .where(checkpoints.c.stream == stream)
                .values(offset=offset, updated_at=time.time())
            )

    def record_stream_position(self, stream: str, last_offset: int) -> None:
        with self.transaction() as conn:
            self.ensure_checkpoint(conn, stream)
            conn.execute(
                update(checkpoints)
                .where(checkpoints.c.stream == stream)
                .values(stream_last_offset=last_offset, stream_checked_at=time.time())
            )

    # -- per-target memory -----------------------------------------------------------------
    def kv_get(self, target: str, key: str, conn: Connection | None = None) -> str | None:
        query = select(target_kv.c.value).where(
            target_kv.c.target == target, target_kv.c.key == key
        )
        if conn is not None:
            return conn.execute(query).scalar_one_or_none()
        with self.reader() as own:
            return own.execute(query).scalar_one_or_none()

    def kv_set(self, target: str, key: str, value: str, conn: Connection | None = None) -> None:
        row = [{"target": target, "key": key, "value": value}]
        if conn is not None:
            upsert(conn, target_kv, row, ["target", "key"])
            return
        with self.transaction() as own:
            upsert(own, target_kv, row, ["target", "key"])

    @contextmanager
    def kv_lock(self, target: str, key: str) -> Iterator[None]:
        """Mutual exclusion on (target, key) across threads, and processes on PostgreSQL."""
        lock_key = f"{target}\x00{key}"
        with self._local_locks_guard:
            local = self._local_locks.setdefault(lock_key, threading.Lock())
        with local:
            if self.is_sqlite:
                yield
                return
            # A session-level advisory lock on a connection in autocommit: held across a
            # long NP6 import without a transaction left open (no idle-in-transaction, no
            # row lock blocking vacuum); released on exit, or by the server if we die.
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql(
                    "SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"{target}/{key}",)
                )
                try:
                    yield
                finally:
                    conn.exec_driver_sql(
                        "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"{target}/{key}",)
                    )

    # -- target jobs -----------------------------------------------------------------------
    def job_create(
        self, target: str, pipeline: str, kind: str, phase: str, data: dict[str, Any]
    ) -> int:
        now = time.time()
        with self.transaction() as conn:
            result = conn.execute(
                insert(target_jobs).values(
                    target=target,
                    pipeline=pipeline,
                    kind=kind,
                    phase=phase,
                    data=_job_json(data),
                    created_at=now,
                    updated_at=now,
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def job_update(self, job_id: int, phase: str, data: dict[str, Any]) -> None:
        with self.transaction() as conn:
            conn.execute(
                update(target_jobs)
                .where(target_jobs.c.id == job_id)
                .values(phase=phase, data=_job_json(data), updated_at=time.time())
            )

    def job_finish(self, job_id: int) -> None:
        with self.transaction() as conn:
            conn.execute(delete(target_jobs).where(target_jobs.c.id == job_id))

    def jobs_open(self, target: str, kind: str) -> list[Job]:
        with self.reader() as conn:
            rows = conn.execute(
                select(target_jobs)
                .where(target_jobs.c.target == target, target_jobs.c.kind == kind)
                .order_by(target_jobs.c.id)
            ).mappings()
            return [
                Job(r["id"], r["pipeline"], r["kind"], r["phase"], orjson.loads(r["data"]))
                for r in rows
            ]

    # -- runs and heartbeats ---------------------------------------------------------------
    def run_started(self, run_id: str, kind: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                insert(runs).values(
                    run_id=run_id, kind=kind, started_at=time.time(), status="running", counts="{}"
                )
            )

    def run_finished(
        self, run_id: str, status: str, counts: dict[str, Any], message: str | None = None
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    finished_at=time.time(),
                    status=status,
                    counts=json.dumps(counts),
                    message=message,
                )
            )

    def last_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self.reader() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit)).mappings()
            return [{**dict(r), "counts": json.loads(r["counts"])} for r in rows]

    def heartbeat(self, job: str, owner: str, interval: float) -> None:
        with self.transaction() as conn:
            upsert(
                conn,
                heartbeats,
                [{"job": job, "owner": owner, "at": time.time(), "interval": interval}],
                ["job"],
            )

    def heartbeats(self) -> list[dict[str, Any]]:
        with self.reader() as conn:
            return [dict(r) for r in conn.execute(select(heartbeats)).mappings()]


def _safe_db_error(exc: OperationalError) -> str:
    """The driver's message without the SQL statement or connection parameters."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "unknown error"
