"""Migration 0007: the console's indexes exist after ``syncer db upgrade`` (SQLite and
PostgreSQL), go with its downgrade, and SQLite's planner uses them for the console's own
queries (a partial or expression index only serves a query spelling the same literal)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, event, text

from syncer.console import debugger, queries
from syncer.console.erasures import SuppressionLedger
from syncer.state import db
from syncer.state.store import Store

from .test_console_security import config as security_config

CFG = security_config("sqlite:///unused.db")  # the record page reads targets from it
CONSOLE_INDEXES = {
    "ix_deliveries_pipeline_state": "deliveries",
    "ix_deliveries_dead": "deliveries",
    "ix_deliveries_deletes": "deliveries",
    "ix_inbox_entity": "inbox",
    "ix_delivery_log_entity": "delivery_log",
    "ix_delivery_log_target_at": "delivery_log",
    "ix_suppression_at": "suppression",
}


def index_tables(conn: Connection) -> dict[str, str]:
    if conn.dialect.name == "postgresql":
        sql = "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"
    return {str(name): str(table) for name, table in conn.execute(text(sql))}


def test_upgrade_creates_the_console_indexes_and_downgrade_drops_them(state_url: str) -> None:
    store = Store(state_url)  # migrates to the head
    try:
        with store.engine.connect() as conn:
            found = index_tables(conn)
        assert {n: found.get(n) for n in CONSOLE_INDEXES} == CONSOLE_INDEXES
        cfg = db._alembic_config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        with store.engine.connect() as conn:
            assert not set(CONSOLE_INDEXES) & set(index_tables(conn))
        db.upgrade(store.engine)
        with store.engine.connect() as conn:
            assert set(CONSOLE_INDEXES) <= set(index_tables(conn))
    finally:
        store.close()


def plans_of(store: Store, run: Callable[[Connection], Any]) -> list[str]:
    """SQLite's query plan of every statement ``run`` executes, one string each."""
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    with store.engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        run(conn)
        event.remove(conn, "before_cursor_execute", capture)
        raw = conn.connection.driver_connection
        assert raw is not None
        return [
            " | ".join(str(row[-1]) for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in seen
        ]


@pytest.mark.parametrize(
    ("page", "run", "index"),
    [
        (
            "pipelines",
            lambda c: queries.counts_by_pipeline(c, ["p"]),
            "ix_deliveries_pipeline_state",
        ),
        ("dead letters", lambda c: queries.dead_groups(c), "ix_deliveries_dead"),
        ("erasures pending", lambda c: SuppressionLedger().pending(c), "ix_deliveries_deletes"),
        ("erasures page", lambda c: SuppressionLedger().page(c, None, 50), "ix_suppression_at"),
        (
            "throughput",
            lambda c: queries.throughput(c, ["t"], time.time()),
            "ix_delivery_log_target_at",
        ),
        # the search keys' primary key (migration 0011), and the inbox's for the unread tail
        ("search e-mail", lambda c: debugger.search(c, "A@Example.com"), "search_keys USING"),
        ("search phone", lambda c: debugger.search(c, "+393471234567"), "search_keys USING"),
        ("search tail", lambda c: debugger.search(c, "CRM-1"), "inbox USING INTEGER PRIMARY KEY"),
        ("record", lambda c: debugger.record(c, CFG, "cust-1"), "ix_inbox_entity"),
        ("record", lambda c: debugger.record(c, CFG, "cust-1"), "ix_delivery_log_entity"),
    ],
)
def test_sqlite_plans_use_the_console_indexes(
    tmp_path: Path, page: str, run: Callable[[Connection], Any], index: str
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    with store.engine.begin() as conn:  # the record debugger's customer
        conn.execute(
            text(
                "INSERT INTO entities (entity_type, entity_id, payload, version, updated_at, "
                "deleted) VALUES ('customer', 'cust-1', '{}', 1, '', FALSE)"
            )
        )
    try:
        plans = plans_of(store, run)
    finally:
        store.close()
    assert any(index in plan for plan in plans), (page, plans)
