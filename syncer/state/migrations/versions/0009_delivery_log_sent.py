"""delivery_log: what each delivery sent, and the record it landed on

``sent`` is the change handed to the target (action, mapped fields, groups or list: the
customer's data, never a credential), ``target_id`` the record the target answered with. The
console's record debugger shows both per delivery. Both are personal data: an erasure clears
them with the line's ``detail`` (:mod:`syncer.state.erasure_ops`), retention prunes the lines.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ALTER TABLE ... ADD COLUMN on both databases: no copy of a 100,000-line log
    op.add_column("delivery_log", sa.Column("sent", sa.Text(), nullable=True))
    op.add_column("delivery_log", sa.Column("target_id", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_log") as batch:
        batch.drop_column("target_id")
        batch.drop_column("sent")
