"""Pausing a target: a flag in ``target_kv`` (``target=<name>, key="paused", value="1"``).

The console writes it; the daemon reads it with :func:`is_paused` before claiming for a
target, so a paused target's queue grows and nothing is sent to it until it is resumed. The
flag lives in the state database, so every replica sees it.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from ..state.schema import target_kv
from ..state.store import Store

__all__ = ["PAUSED_KEY", "is_paused", "paused_targets", "set_paused"]

PAUSED_KEY = "paused"


def is_paused(store: Store, target: str) -> bool:
    """Whether ``target`` is paused (the daemon skips its delivery job while it is)."""
    return store.kv_get(target, PAUSED_KEY) == "1"


def paused_targets(conn: Connection) -> set[str]:
    """Every paused target, in one query (for the console's pages)."""
    query = select(target_kv.c.target).where(
        target_kv.c.key == PAUSED_KEY, target_kv.c.value == "1"
    )
    return set(conn.execute(query).scalars())


def set_paused(conn: Connection, target: str, paused: bool) -> None:
    """Pause (``True``) or resume (``False``) ``target`` inside the caller's transaction."""
    from ..state.store import upsert

    if paused:
        upsert(
            conn,
            target_kv,
            [{"target": target, "key": PAUSED_KEY, "value": "1"}],
            ["target", "key"],
        )
    else:
        conn.execute(
            delete(target_kv).where(target_kv.c.target == target, target_kv.c.key == PAUSED_KEY)
        )
