"""Read-only summaries of the state database, for ``status`` and the metrics collector."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from . import erasure_ops
from .schema import checkpoints, deliveries, inbox
from .store import Checkpoint, Store


@dataclass
class StateSnapshot:
    checkpoints: list[Checkpoint] = field(default_factory=list)
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    inbox_rows: int = 0
    erasures_pending: int = 0
    erasure_oldest_requested_at: float | None = None  # of the oldest pending erasure


def state_snapshot(store: Store) -> StateSnapshot:
    snap = StateSnapshot()
    with store.reader() as conn:
        for row in conn.execute(select(checkpoints.c.stream)):
            cp = store.checkpoint(row.stream, conn)
            if cp is not None:
                snap.checkpoints.append(cp)
        counts = conn.execute(
            select(deliveries.c.pipeline, deliveries.c.state, func.count()).group_by(
                deliveries.c.pipeline, deliveries.c.state
            )
        )
        snap.deliveries = {(p, s): int(n) for p, s, n in counts}
        snap.inbox_rows = int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())
        snap.erasures_pending, snap.erasure_oldest_requested_at = erasure_ops.pending_summary(conn)
    return snap
