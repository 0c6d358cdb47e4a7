"""id map provenance: whether syncer created the record in the target

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:30:00

``id_map.origin``: ``syncer`` (syncer's create made the record), ``found`` (the record was in
the target before syncer wrote to it: found by a lookup, a listing, or a create refused as
taken), NULL (unknown). Rows written before this revision are ``syncer`` when the bounded
delivery log still shows a ``created`` outcome of that customer in that target, else NULL,
which targets treat as *not* created by syncer: a contact syncer cannot prove it made is never
deleted on a leave (a delete is irreversible; keeping it costs one extra read per write).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("id_map") as batch:
        batch.add_column(sa.Column("origin", sa.String(10), nullable=True))
    op.get_bind().execute(
        sa.text(
            # one pass over the log (a semi-join), not one scan of it per id map row
            "UPDATE id_map SET origin = 'syncer' WHERE (target, entity_id) IN "
            "(SELECT target, entity_id FROM delivery_log WHERE outcome = 'created')"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("id_map") as batch:
        batch.drop_column("origin")
