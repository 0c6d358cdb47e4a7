"""indexes for the claim's in-flight check and ingest's per-page lookups

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # (entity_id, state) replaces the pipeline-first index, which no hot query could use
    op.drop_index("ix_deliveries_entity", table_name="deliveries")
    op.create_index("ix_deliveries_entity_state", "deliveries", ["entity_id", "state"])
    op.create_index("ix_matches_entity", "matches", ["entity_id"])


def downgrade() -> None:
    op.drop_index("ix_matches_entity", table_name="matches")
    op.drop_index("ix_deliveries_entity_state", table_name="deliveries")
    op.create_index("ix_deliveries_entity", "deliveries", ["pipeline", "entity_id", "state"])
