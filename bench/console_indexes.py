"""The indexes the console needs on large states (see ``bench/console_indexes.md``).

Not a migration yet: the migration chain's next revision (0005) is another branch's, so the
console's indexes wait for 0006. The bench applies these statements itself; the same DDL goes
into ``syncer/state/migrations/versions/0006_console_indexes.py`` once 0005 is merged.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# name -> (SQLite DDL, PostgreSQL DDL)
INDEXES: dict[str, tuple[str, str]] = {
    # Pipelines page: counts by (pipeline, state), a covering scan
    "ix_deliveries_pipeline_state": (
        "CREATE INDEX IF NOT EXISTS ix_deliveries_pipeline_state ON deliveries (pipeline, state)",
        "CREATE INDEX IF NOT EXISTS ix_deliveries_pipeline_state ON deliveries (pipeline, state)",
    ),
    # Dead letters by reason / pipeline / target; only dead rows, so the hot path never pays
    "ix_deliveries_dead": (
        "CREATE INDEX IF NOT EXISTS ix_deliveries_dead ON deliveries "
        "(pipeline, target, substr(last_error, 1, 200)) WHERE state = 'dead'",
        "CREATE INDEX IF NOT EXISTS ix_deliveries_dead ON deliveries "
        "(pipeline, target, substr(last_error, 1, 200)) WHERE state = 'dead'",
    ),
    # Erasures pending: open delete rows (deletes are rare: a small index)
    "ix_deliveries_deletes": (
        "CREATE INDEX IF NOT EXISTS ix_deliveries_deletes ON deliveries (state, subject_id) "
        "WHERE action = 'delete'",
        "CREATE INDEX IF NOT EXISTS ix_deliveries_deletes ON deliveries (state, subject_id) "
        "WHERE action = 'delete'",
    ),
    # Record debugger: a customer's updates, and its delivery log lines
    "ix_inbox_entity": (
        "CREATE INDEX IF NOT EXISTS ix_inbox_entity ON inbox (entity_id)",
        "CREATE INDEX IF NOT EXISTS ix_inbox_entity ON inbox (entity_id)",
    ),
    "ix_delivery_log_entity": (
        "CREATE INDEX IF NOT EXISTS ix_delivery_log_entity ON delivery_log (entity_id)",
        "CREATE INDEX IF NOT EXISTS ix_delivery_log_entity ON delivery_log (entity_id)",
    ),
    # Overview throughput: range counts per target and time bucket, covering
    "ix_delivery_log_target_at": (
        "CREATE INDEX IF NOT EXISTS ix_delivery_log_target_at ON delivery_log "
        "(target, at, outcome)",
        "CREATE INDEX IF NOT EXISTS ix_delivery_log_target_at ON delivery_log "
        "(target, at, outcome)",
    ),
    # Erasures page order
    "ix_suppression_at": (
        "CREATE INDEX IF NOT EXISTS ix_suppression_at ON suppression (suppressed_at)",
        "CREATE INDEX IF NOT EXISTS ix_suppression_at ON suppression (suppressed_at)",
    ),
    # Customer search: one expression index per JSON path, spelled as syncer.console.debugger
    "ix_entities_email": (
        "CREATE INDEX IF NOT EXISTS ix_entities_email ON entities "
        "(lower(json_extract(payload, '$.base.contacts.email')))",
        "CREATE INDEX IF NOT EXISTS ix_entities_email ON entities "
        "(lower((payload::jsonb) #>> '{base,contacts,email}'))",
    ),
    "ix_entities_mobile": (
        "CREATE INDEX IF NOT EXISTS ix_entities_mobile ON entities "
        "(json_extract(payload, '$.base.contacts.mobilePhone'))",
        "CREATE INDEX IF NOT EXISTS ix_entities_mobile ON entities "
        "(((payload::jsonb) #>> '{base,contacts,mobilePhone}'))",
    ),
    "ix_entities_phone": (
        "CREATE INDEX IF NOT EXISTS ix_entities_phone ON entities "
        "(json_extract(payload, '$.base.contacts.phone'))",
        "CREATE INDEX IF NOT EXISTS ix_entities_phone ON entities "
        "(((payload::jsonb) #>> '{base,contacts,phone}'))",
    ),
    "ix_entities_external": (
        "CREATE INDEX IF NOT EXISTS ix_entities_external ON entities "
        "(json_extract(payload, '$.externalId'))",
        "CREATE INDEX IF NOT EXISTS ix_entities_external ON entities "
        "(((payload::jsonb) #>> '{externalId}'))",
    ),
}


def create_console_indexes(conn: Connection) -> None:
    """Create every index above on ``conn``'s database (idempotent)."""
    column = 1 if conn.dialect.name == "postgresql" else 0
    for ddl in INDEXES.values():
        conn.execute(text(ddl[column]))
