"""the console's customer search keys, filled behind the stream instead of four expression
indexes on entities.payload

The expression indexes of 0007 (e-mail, mobile, phone, externalId) made every ingest write
parse the document once per index: 15-20 % of ingest's throughput. ``search_keys`` holds one
row per key and customer, written from the inbox by :func:`syncer.state.search_ops.catch_up`
after ingest committed; ``search_cursor`` is the last inbox row it read. The upgrade fills it
from the customers stored now and sets the cursor at the newest inbox row.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 22:50:00
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from syncer.state.search_ops import keys_of_payload

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 5000

# 0007's DDL of the indexes this revision drops (name -> (SQLite, PostgreSQL)), for the
# downgrade: read from 0007 itself (its module name starts with a digit: no import statement)
_0007 = importlib.import_module("syncer.state.migrations.versions.0007_console_indexes")
OLD_INDEXES: dict[str, tuple[str, str]] = {
    name: ddl for name, ddl in _0007.INDEXES.items() if name.startswith("ix_entities_")
}


def upgrade() -> None:
    keys = op.create_table(
        "search_keys",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("entity_id", sa.String(100), primary_key=True),
    )
    op.create_index("ix_search_keys_entity", "search_keys", ["entity_id"])
    cursor = op.create_table(
        "search_cursor",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("inbox_id", sa.BigInteger(), nullable=False),
    )
    bind = op.get_bind()
    newest = bind.execute(sa.text("SELECT max(id) FROM inbox")).scalar()
    op.bulk_insert(cursor, [{"name": "customers", "inbox_id": int(newest or 0)}])
    # the customers stored now (suppressed ones keep their id only: no key), a chunk at a time
    after = ""
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT entity_id, payload FROM entities WHERE entity_type = 'customer' "
                "AND entity_id > :after ORDER BY entity_id LIMIT :n"
            ),
            {"after": after, "n": CHUNK},
        ).all()
        if not rows:
            break
        pairs = {(k, r.entity_id) for r in rows for k in keys_of_payload(r.payload)}
        if pairs:
            op.bulk_insert(keys, [{"key": k, "entity_id": e} for k, e in sorted(pairs)])
        after = rows[-1].entity_id
    for name in OLD_INDEXES:
        op.drop_index(name, table_name="entities")


def downgrade() -> None:
    column = 1 if op.get_bind().dialect.name == "postgresql" else 0
    for ddl in OLD_INDEXES.values():
        op.execute(ddl[column])
    op.drop_table("search_cursor")
    op.drop_index("ix_search_keys_entity", table_name="search_keys")
    op.drop_table("search_keys")
