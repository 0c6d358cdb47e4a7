"""fewer B-trees per ingested update: no inbox entity index, matches keyed by its primary key

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing reads the inbox by entity; the index cost a random-key insert per update.
    op.drop_index("ix_inbox_entity", table_name="inbox")
    # Ingest now looks matches up by (pipeline, entity_id), the primary key.
    op.drop_index("ix_matches_entity", table_name="matches")
    if op.get_bind().dialect.name == "sqlite":
        # A WITHOUT ROWID table is its primary-key B-tree: one insert per row instead of two.
        op.execute(
            "CREATE TABLE matches_new (pipeline VARCHAR(100) NOT NULL, "
            "entity_id VARCHAR(100) NOT NULL, PRIMARY KEY (pipeline, entity_id)) WITHOUT ROWID"
        )
        op.execute(
            "INSERT INTO matches_new (pipeline, entity_id) SELECT pipeline, entity_id FROM matches"
        )
        op.execute("DROP TABLE matches")
        op.execute("ALTER TABLE matches_new RENAME TO matches")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE matches_old (pipeline VARCHAR(100) NOT NULL, "
            "entity_id VARCHAR(100) NOT NULL, PRIMARY KEY (pipeline, entity_id))"
        )
        op.execute(
            "INSERT INTO matches_old (pipeline, entity_id) SELECT pipeline, entity_id FROM matches"
        )
        op.execute("DROP TABLE matches")
        op.execute("ALTER TABLE matches_old RENAME TO matches")
    op.create_index("ix_matches_entity", "matches", ["entity_id"])
    op.create_index("ix_inbox_entity", "inbox", ["entity_type", "entity_id"])
