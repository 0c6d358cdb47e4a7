"""Full calls for batch targets whose call carries one list (Octopush ``contact/create``).

A claim of the oldest due rows spreads over every list a templated ``list`` names (one per
country, say), so sending it as it comes makes one partial call per list and per claim. A
target that batches per list says so with ``batch_key(change)`` (the list, or None when the
change goes into no such call) and ``batch_size``; the worker then, per claim:

1. sends every list's whole calls (``batch_size`` customers each);
2. holds the rest of each list back, still claimed, in front of its next claim, so it is sent
   with the next rows of that list;
3. claims more first when no list has a whole call yet (at most :data:`HOLD_CALLS` calls'
   worth of rows in memory), and sends everything when nothing more is due, when that cap is
   reached, or when the drain ends.

Calls for n adds over L lists drained in one run: ``sum(ceil(n_list / batch_size))``, at most
``ceil(n / batch_size) + L``. A customer's rows stay together (keyed by its first change).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..targets.base import Change
from .planner import Planned

__all__ = ["HOLD_CALLS", "split_full"]

HOLD_CALLS = 16  # rows held in memory: at most this many calls' worth

BatchKey = Callable[[Change], str | None]


def split_full(
    planned: Sequence[Planned],
    key_of: BatchKey,
    size: int,
    cache: dict[int, str | None] | None = None,
) -> tuple[list[Planned], list[Planned], bool]:
    """``(send now, hold back, whether any list has a whole call)``: per key, the customers of
    whole calls go now and the remainder is held; rows with nothing to send, and customers
    whose first change has no key, go now. ``cache`` keeps each row's key by row id (a held
    row is split again with every claim; its key, a phone parse away, is computed once)."""
    cache = {} if cache is None else cache
    customers: dict[str, list[Planned]] = {}
    for p in planned:
        customers.setdefault(p.subject_id, []).append(p)
    by_key: dict[str, list[str]] = {}
    send: list[Planned] = []
    for subject, rows in customers.items():
        first = next((p for p in rows if p.change is not None), None)
        key = None
        if first is not None and first.change is not None:
            if first.row.id not in cache:
                cache[first.row.id] = key_of(first.change)
            key = cache[first.row.id]
        if key is None:
            send.extend(rows)
        else:
            by_key.setdefault(key, []).append(subject)
    hold: list[Planned] = []
    whole = False
    for subjects in by_key.values():
        cut = len(subjects) - len(subjects) % size
        whole = whole or cut > 0
        for i, subject in enumerate(subjects):
            (send if i < cut else hold).extend(customers[subject])
    return send, hold, whole
