"""one claim per (target, customer), fenced by a token; deliveries know their customer

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("target", sa.String(100), primary_key=True),
        sa.Column("subject_id", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("subject_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("claim_token", sa.String(64), nullable=True))
    bind = op.get_bind()
    # the customer of every row: itself, or an event's customer (the event itself without one)
    bind.execute(
        sa.text(
            "UPDATE deliveries SET subject_id = COALESCE((SELECT e.customer_id FROM entities e "
            "WHERE e.entity_type = deliveries.entity_type "
            "AND e.entity_id = deliveries.entity_id), entity_id)"
        )
    )
    # rows claimed by an older syncer carry no token: due again at once (a re-send, not a skip)
    bind.execute(sa.text("UPDATE deliveries SET claim_expires_at = 0 WHERE state = 'in_flight'"))
    op.drop_index("ix_deliveries_entity_state", table_name="deliveries")
    op.create_index("ix_deliveries_subject_state", "deliveries", ["subject_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_subject_state", table_name="deliveries")
    op.create_index("ix_deliveries_entity_state", "deliveries", ["entity_id", "state"])
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claim_token")
        batch.drop_column("subject_id")
    op.drop_table("claims")
