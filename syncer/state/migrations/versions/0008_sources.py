"""several sources: an index for the "one contact, several customers" check

Nothing else changes for several sources: the single ``source:`` form is the source
``default``, whose streams keep their checkpoint keys (``<ws>/<node>``) and whose customers
keep plain ids, so an existing state database is carried across as it is (no re-read, no id
rewrite). The index serves :mod:`syncer.state.conflicts`, which looks id map rows up by the
contact a write resolved to.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_id_map_target_id", "id_map", ["target", "target_id"])


def downgrade() -> None:
    op.drop_index("ix_id_map_target_id", table_name="id_map")
