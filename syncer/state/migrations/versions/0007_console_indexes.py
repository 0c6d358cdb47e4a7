"""the console's indexes: counts by pipeline, dead letters, erasures, a customer's history,
throughput, and customer search by e-mail, phone and externalId

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:30:00

The console's queries (syncer.console.queries, .debugger, .erasures) spell the same expressions
with the same literals ('dead', 'delete', substr(..., 1, 200), the JSON paths): SQLite uses a
partial or an expression index only for a query whose text has the same constant. The numbers
with and without them: bench/console_indexes.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def both(ddl: str) -> tuple[str, str]:
    """The same statement on SQLite and PostgreSQL."""
    return ddl, ddl


# name -> (SQLite DDL, PostgreSQL DDL)
INDEXES: dict[str, tuple[str, str]] = {
    # Pipelines page: counts by (pipeline, state), a covering scan
    "ix_deliveries_pipeline_state": both(
        "CREATE INDEX ix_deliveries_pipeline_state ON deliveries (pipeline, state)"
    ),
    # Dead letters by pipeline / target / reason: dead rows only, the hot path never pays
    # (PostgreSQL: INCLUDE last_error, as it reads an expression index without the table only
    # when the index holds the expression's columns too: the dead rows are spread over it)
    "ix_deliveries_dead": (
        "CREATE INDEX ix_deliveries_dead ON deliveries "
        "(pipeline, target, substr(last_error, 1, 200)) WHERE state = 'dead'",
        "CREATE INDEX ix_deliveries_dead ON deliveries "
        "(pipeline, target, substr(last_error, 1, 200)) INCLUDE (last_error) "
        "WHERE state = 'dead'",
    ),
    # Erasures pending: open delete rows (deletes are rare: a small index)
    "ix_deliveries_deletes": both(
        "CREATE INDEX ix_deliveries_deletes ON deliveries (state, subject_id) "
        "WHERE action = 'delete'"
    ),
    # Record debugger: a customer's updates, and its delivery log lines
    "ix_inbox_entity": both("CREATE INDEX ix_inbox_entity ON inbox (entity_id)"),
    "ix_delivery_log_entity": both(
        "CREATE INDEX ix_delivery_log_entity ON delivery_log (entity_id)"
    ),
    # Overview throughput: range counts per target and time bucket, covering
    "ix_delivery_log_target_at": both(
        "CREATE INDEX ix_delivery_log_target_at ON delivery_log (target, at, outcome)"
    ),
    # Erasures page order
    "ix_suppression_at": both("CREATE INDEX ix_suppression_at ON suppression (suppressed_at)"),
    # Customer search: one expression index per JSON path
    "ix_entities_email": (
        "CREATE INDEX ix_entities_email ON entities "
        "(lower(json_extract(payload, '$.base.contacts.email')))",
        "CREATE INDEX ix_entities_email ON entities "
        "(lower((payload::jsonb) #>> '{base,contacts,email}'))",
    ),
    "ix_entities_mobile": (
        "CREATE INDEX ix_entities_mobile ON entities "
        "(json_extract(payload, '$.base.contacts.mobilePhone'))",
        "CREATE INDEX ix_entities_mobile ON entities "
        "(((payload::jsonb) #>> '{base,contacts,mobilePhone}'))",
    ),
    "ix_entities_phone": (
        "CREATE INDEX ix_entities_phone ON entities "
        "(json_extract(payload, '$.base.contacts.phone'))",
        "CREATE INDEX ix_entities_phone ON entities "
        "(((payload::jsonb) #>> '{base,contacts,phone}'))",
    ),
    "ix_entities_external": (
        "CREATE INDEX ix_entities_external ON entities (json_extract(payload, '$.externalId'))",
        "CREATE INDEX ix_entities_external ON entities (((payload::jsonb) #>> '{externalId}'))",
    ),
}

# the table of each index, for the downgrade
TABLES = {
    "ix_deliveries_pipeline_state": "deliveries",
    "ix_deliveries_dead": "deliveries",
    "ix_deliveries_deletes": "deliveries",
    "ix_inbox_entity": "inbox",
    "ix_delivery_log_entity": "delivery_log",
    "ix_delivery_log_target_at": "delivery_log",
    "ix_suppression_at": "suppression",
    "ix_entities_email": "entities",
    "ix_entities_mobile": "entities",
    "ix_entities_phone": "entities",
    "ix_entities_external": "entities",
}


def upgrade() -> None:
    column = 1 if op.get_bind().dialect.name == "postgresql" else 0
    for ddl in INDEXES.values():
        op.execute(ddl[column])


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name=TABLES[name])
