"""fewer B-trees per ingested update: no inbox entity index, selections kept in entities

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing reads the inbox by entity; the index cost a random-key insert per update.
    op.drop_index("ix_inbox_entity", table_name="inbox")
    # Which pipelines select a customer moves from `matches` (one row, and two B-tree inserts,
    # per pipeline and customer) into the customer's own row, which ingest writes anyway.
    with op.batch_alter_table("entities") as batch:
        batch.add_column(sa.Column("pipelines", sa.Text(), nullable=True))
    bind = op.get_bind()
    selection: dict[str, list[str]] = {}
    for pipeline, cid in bind.execute(
        sa.text("SELECT pipeline, entity_id FROM matches ORDER BY entity_id, pipeline")
    ):
        selection.setdefault(cid, []).append(pipeline)
    if selection:
        bind.execute(
            sa.text(
                "UPDATE entities SET pipelines = :names "
                "WHERE entity_type = 'customer' AND entity_id = :cid"
            ),
            [{"names": " ".join(names), "cid": cid} for cid, names in selection.items()],
        )
    op.drop_index("ix_matches_entity", table_name="matches")
    op.drop_table("matches")


def downgrade() -> None:
    matches = op.create_table(
        "matches",
        sa.Column("pipeline", sa.String(100), primary_key=True),
        sa.Column("entity_id", sa.String(100), primary_key=True),
    )
    rows = op.get_bind().execute(
        sa.text(
            "SELECT entity_id, pipelines FROM entities "
            "WHERE entity_type = 'customer' AND pipelines IS NOT NULL AND pipelines <> ''"
        )
    )
    pairs = [{"pipeline": p, "entity_id": cid} for cid, names in rows for p in names.split()]
    if pairs:
        op.bulk_insert(matches, pairs)
    op.create_index("ix_matches_entity", "matches", ["entity_id"])
    with op.batch_alter_table("entities") as batch:
        batch.drop_column("pipelines")
    op.create_index("ix_inbox_entity", "inbox", ["entity_type", "entity_id"])
