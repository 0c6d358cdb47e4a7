"""the erasure ledger: one row per forgotten customer, per-target acknowledgements

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("entity_id", sa.String(100), primary_key=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("scrubbed_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_erasures_scrubbed", "erasures", ["scrubbed_at"])
    op.create_index("ix_erasures_requested", "erasures", ["requested_at"])
    op.create_table(
        "erasure_acks",
        sa.Column("entity_id", sa.String(100), primary_key=True),
        sa.Column("pipeline", sa.String(100), primary_key=True),
        sa.Column("target", sa.String(100), primary_key=True),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("acked_at", sa.Float(), nullable=False),
    )
    bind = op.get_bind()
    # every customer already suppressed (deleted in Contacthub) is an erasure request...
    bind.execute(
        sa.text(
            "INSERT INTO erasures (entity_id, reason, requested_at) "
            "SELECT entity_id, reason, suppressed_at FROM suppression"
        )
    )
    # ...and each of its delete deliveries already done is that target's acknowledgement
    # (the newest per pipeline and target; the outcome is no longer known: "done")
    bind.execute(
        sa.text(
            "INSERT INTO erasure_acks (entity_id, pipeline, target, delivery_id, outcome, "
            "acked_at) SELECT d.subject_id, d.pipeline, d.target, MAX(d.id), 'done', "
            "MAX(d.updated_at) FROM deliveries d JOIN suppression s "
            "ON s.entity_id = d.subject_id WHERE d.action = 'delete' AND d.state = 'done' "
            "GROUP BY d.subject_id, d.pipeline, d.target"
        )
    )


def downgrade() -> None:
    op.drop_table("erasure_acks")
    op.drop_index("ix_erasures_requested", table_name="erasures")
    op.drop_index("ix_erasures_scrubbed", table_name="erasures")
    op.drop_table("erasures")
