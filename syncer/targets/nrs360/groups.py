"""Group names to 360NRS group ids: listed once, cached in memory and in the state store,
created when missing under a lock so two workers (threads or processes) never create one
group twice.

Names compare case-insensitively (as 360NRS does); several groups with one name resolve to the
oldest (lowest id), as the API's ``groupsNames`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ..base import TargetContext
from .client import Nrs360Client


def _kv_key(name: str) -> str:
    return f"group:{name.casefold()}"


class GroupResolver:
    """Thread-safe name -> id resolution for one 360NRS account."""

    def __init__(self, client: Nrs360Client) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._list_lock = threading.Lock()  # one first listing, not one per thread
        self._ids: dict[str, int] = {}
        self._listed = False
        self._trust_store = True  # False after the API refused a cached id
        self.created = 0

    def ids(self, names: Iterable[str], ctx: TargetContext) -> list[int]:
        """The ids of ``names`` (sorted by name, so equal sets give equal bodies)."""
        return [self._id(name, ctx) for name in sorted(set(names), key=str.casefold)]

    def invalidate(self) -> None:
        """Forget every cached id (a group was deleted on the 360NRS side)."""
        with self._lock:
            self._ids.clear()
            self._listed = False
            self._trust_store = False

    def _id(self, name: str, ctx: TargetContext) -> int:
        key = name.casefold()
        with self._lock:
            if key in self._ids:
                return self._ids[key]
            trust = self._trust_store
        if trust and (stored := ctx.kv_get(_kv_key(name))) is not None:
            return self._remember(key, int(stored))
        if not self._listed:
            with self._list_lock:
                if not self._listed:
                    self._list()
            with self._lock:
                if key in self._ids:
                    ctx.kv_set(_kv_key(name), str(self._ids[key]))
                    return self._ids[key]
        return self._create(name, ctx)

    def _list(self) -> None:
        found: dict[str, int] = {}
        for group in self.client.groups():
            key, gid = str(group["name"]).casefold(), int(group["id"])
            found[key] = min(gid, found.get(key, gid))
        with self._lock:
            self._ids.update(found)
            self._listed = True

    def _create(self, name: str, ctx: TargetContext) -> int:
        key = name.casefold()
        with ctx.kv_lock(_kv_key(name)):
            # The threads that missed the group together queue on this lock: the first creates
            # it and remembers its id before releasing the lock, the others find that id here
            # instead of each listing the groups again (one call each, one after the other).
            with self._lock:
                gid = self._ids.get(key)
                trust = self._trust_store
            if gid is not None:
                return gid
            # A worker sharing the state store records the ids it creates under this lock.
            if trust and (stored := ctx.kv_get(_kv_key(name))) is not None:
                return self._remember(key, int(stored))
            # Another worker may have created it meanwhile: ask the API, the only truth.
            self._list()
            with self._lock:
                gid = self._ids.get(key)
            if gid is None:
                gid = self.client.create_group(name)
                self.created += 1
            ctx.kv_set(_kv_key(name), str(gid))
            return self._remember(key, gid)

    def _remember(self, key: str, gid: int) -> int:
        with self._lock:
            self._ids[key] = gid
        return gid
