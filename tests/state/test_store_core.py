"""Contract tests of the store's shared operations, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import warnings

import pytest
from sqlalchemy import inspect

from syncer.errors import StateError
from syncer.state import db
from syncer.state.schema import metadata
from syncer.state.store import Store


def test_migrations_create_every_table_of_the_schema(state_url: str) -> None:
    store = Store(state_url)
    tables = set(inspect(store.engine).get_table_names())
    assert set(metadata.tables) <= tables
    assert db.is_current(store.engine)
    store.close()


def test_upgrade_is_idempotent(state_url: str) -> None:
    Store(state_url).close()
    store = Store(state_url)
    assert db.current_revision(store.engine) == db.head_revision()
    store.close()


def test_a_database_from_a_newer_syncer_is_refused(state_url: str) -> None:
    store = Store(state_url)
    with store.transaction() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    store.close()
    with pytest.raises(StateError, match="newer syncer"):
        Store(state_url)


def test_lease_is_exclusive_until_it_expires(state_url: str) -> None:
    store = Store(state_url)
    assert store.acquire_lease("ws/node", "a", ttl=30)
    assert not store.acquire_lease("ws/node", "b", ttl=30)
    assert store.acquire_lease("ws/node", "a", ttl=30)  # renewal
    assert store.lease_is_live("ws/node")
    store.release_lease("ws/node", "a")
    assert store.acquire_lease("ws/node", "b", ttl=0.01)
    time.sleep(0.05)
    assert store.acquire_lease("ws/node", "a", ttl=30)  # b's lease expired
    store.close()


def test_offset_override_keeps_the_lease_and_rejects_negatives(state_url: str) -> None:
    store = Store(state_url)
    store.set_offset("s", 42)
    cp = store.checkpoint("s")
    assert cp is not None and cp.offset == 42
    with pytest.raises(StateError):
        store.set_offset("s", -1)
    store.close()


def test_kv_and_jobs_round_trip(state_url: str) -> None:
    store = Store(state_url)
    assert store.kv_get("nrs", "group:Newsletter") is None
    store.kv_set("nrs", "group:Newsletter", "7")
    store.kv_set("nrs", "group:Newsletter", "8")
    assert store.kv_get("nrs", "group:Newsletter") == "8"
    job = store.job_create("np6", "orders", "import", "prepared", {"rows": 3})
    store.job_update(job, "uploaded", {"rows": 3, "import_id": "5"})
    [open_job] = store.jobs_open("np6", "import")
    assert (open_job.phase, open_job.data["import_id"]) == ("uploaded", "5")
    store.job_finish(job)
    assert store.jobs_open("np6", "import") == []
    store.close()


def test_kv_lock_serialises_creators(state_url: str) -> None:
    store = Store(state_url)
    created: list[int] = []

    def create_once(n: int) -> None:
        with store.kv_lock("nrs", "group:VIP"):
            if store.kv_get("nrs", "group:VIP") is None:
                time.sleep(0.02)
                created.append(n)
                store.kv_set("nrs", "group:VIP", str(n))

    threads = [threading.Thread(target=create_once, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 1
    store.close()


def test_runs_and_heartbeats(state_url: str) -> None:
    store = Store(state_url)
    store.run_started("r1", "sync")
    store.run_finished("r1", "ok", {"done": 3})
    [run] = store.last_runs()
    assert run["status"] == "ok" and run["counts"] == {"done": 3}
    store.heartbeat("ingest", "me", 30)
    assert store.heartbeats()[0]["job"] == "ingest"
    store.close()


def test_migrations_and_schema_module_agree(state_url: str) -> None:
    """Every table, column and index of schema.py is what the migrations create."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = Store(state_url)
    with store.engine.connect() as conn, warnings.catch_warnings():
        # expression indexes (0007, the console's): SQLite does not reflect them
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping")
        context = MigrationContext.configure(conn)
        diff = compare_metadata(context, metadata)
    store.close()
    assert diff == []


def test_upgrade_from_0002_moves_every_match_into_its_customer(state_url: str) -> None:
    """0003 folds ``matches`` into ``entities.pipelines`` (and 0003's downgrade back)."""
    from alembic import command

    engine = db.create_state_engine(state_url)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.exec_driver_sql(
            "INSERT INTO entities (entity_type, entity_id, payload, version, updated_at, "
            "deleted) VALUES ('customer', 'a', '{}', 1, '', FALSE), "
            "('customer', 'b', '{}', 1, '', FALSE), ('customer', 'c', '{}', 1, '', FALSE)"
        )
        conn.exec_driver_sql(
            "INSERT INTO matches (pipeline, entity_id) VALUES ('q', 'a'), ('p', 'b'), ('p', 'a')"
        )
    db.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT entity_id, pipelines FROM entities ORDER BY entity_id"
        ).all()
        tables = set(inspect(conn).get_table_names())
    assert [tuple(r) for r in rows] == [("a", "p q"), ("b", "p"), ("c", None)]
    assert "matches" not in tables
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
        pairs = conn.exec_driver_sql("SELECT pipeline, entity_id FROM matches").all()
    engine.dispose()
    assert sorted(tuple(r) for r in pairs) == [("p", "a"), ("p", "b"), ("q", "a")]


def test_reads_are_not_blocked_by_a_long_write(sqlite_url: str) -> None:
    """SQLite writers take the lock at BEGIN; readers take none and never wait for them."""
    store = Store(sqlite_url)
    store.set_offset("s", 5)
    holding, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with store.transaction() as conn:
            conn.exec_driver_sql("UPDATE checkpoints SET updated_at = 0")
            holding.set()
            release.wait(10)

    writer = threading.Thread(target=long_write)
    writer.start()
    holding.wait(5)
    started = time.monotonic()
    cp = store.checkpoint("s")
    jobs = store.jobs_open("np6", "import")
    waited = time.monotonic() - started
    release.set()
    writer.join()
    store.close()
    assert cp is not None and cp.offset == 5 and jobs == []
    assert waited < 2.0  # the busy timeout is 30 s: a blocked read would wait that long


def test_a_new_sqlite_database_uses_the_configured_page_size(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    with store.engine.connect() as conn:
        size = conn.exec_driver_sql("PRAGMA page_size").scalar()
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    store.close()
    assert (size, mode) == (db.SQLITE_PAGE_SIZE, "wal")
