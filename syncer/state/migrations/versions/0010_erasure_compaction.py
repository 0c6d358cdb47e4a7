"""erasures.compacted_at: when the file was rewritten after a customer's scrub

SQLite's ``secure_delete`` zeroes what a statement deletes, but a page rebuilt when rows move
between pages keeps stale copies of them in its free area: a scrubbed customer's e-mail can
stay readable in the file until the file is rewritten (``VACUUM``). ``compacted_at`` records
that rewrite per erasure, so a scrub whose compaction did not happen (the process died, a
reader held the write-ahead log) is compacted by the next one, in any process
(:func:`syncer.state.retention_ops.scrub`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("erasures", sa.Column("compacted_at", sa.Float(), nullable=True))
    op.create_index("ix_erasures_compacted", "erasures", ["compacted_at"])


def downgrade() -> None:
    op.drop_index("ix_erasures_compacted", table_name="erasures")
    with op.batch_alter_table("erasures") as batch:
        batch.drop_column("compacted_at")
