"""In-memory state of one Contacthub workspace: customers, events and the update stream.

Entities are plain dicts and are never mutated once stored: a write stores a new dict. So an
update in the stream can reference the very dict that was current when it was written (a free
snapshot), and a 1,000,000-customer store costs one dict tree per customer and nothing more.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from typing import Any

from .query import get_path, parse_instant, sort_ids
from .rangesearch import query_range, run_of, sort_keys

# One update: (operation, entity type, node id, entity data as it was after the write).
Update = tuple[str, str, str, dict[str, Any]]


class UpdateLog:
    """The update stream of a workspace: the update with offset ``n`` is ``entries[n - 1]``.

    Offsets start at 1 and grow by one per write, so the workspace-wide stream needs no
    search; for the ``nodeId``/``entity`` filters an ascending list of offsets is kept per
    filter combination and searched with :func:`bisect`.
    """

    def __init__(self) -> None:
        self.entries: list[Update] = []
        self.times_ms: list[int] = []
        self._by_filter: dict[tuple[str | None, str | None], list[int]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def append(
        self, operation: str, entity: str, node_id: str, data: dict[str, Any], ms: int
    ) -> int:
        self.entries.append((operation, entity, node_id, data))
        # Keep the time axis non-decreasing so a timestamp maps to one position.
        self.times_ms.append(max(ms, self.times_ms[-1]) if self.times_ms else ms)
        offset = len(self.entries)
        for key in ((node_id, None), (None, entity), (node_id, entity)):
            self._by_filter.setdefault(key, []).append(offset)
        return offset

    def offset_before(self, ms: int) -> int:
        """The offset of the last update written before ``ms`` (0 if none)."""
        return bisect_left(self.times_ms, ms)

    def read(
        self, after: int, size: int, node_id: str | None, entity: str | None
    ) -> tuple[int, list[Update]]:
        """Up to ``size`` updates with offset > ``after``: ``(offset of the last one, updates)``.

        With nothing to return the offset is ``after`` itself.
        """
        if node_id is None and entity is None:
            chosen = self.entries[after : after + size]
            return (after + len(chosen) if chosen else after), chosen
        offsets = self._by_filter.get((node_id, entity), [])
        start = bisect_right(offsets, after)
        picked = offsets[start : start + size]
        if not picked:
            return after, []
        return picked[-1], [self.entries[o - 1] for o in picked]

    def last_offset(self, node_id: str | None, entity: str | None) -> int:
        if node_id is None and entity is None:
            return len(self.entries)
        offsets = self._by_filter.get((node_id, entity))
        return offsets[-1] if offsets else 0


_SCALARS = (str, int, float, bool, type(None))


class LeafSharer:
    """Shares equal small leaf objects between stored entities (bulk loads only).

    A million generated customers repeat the same consent leaves (``{"status": false, ...}``),
    addresses and ``sourceInfo``; as entities are never mutated in place, equal leaves can be
    one object. The table is bounded, so unique leaves (emails) cost at most ``limit`` entries.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._table: dict[tuple[Any, ...], dict[str, Any]] = {}

    def share(self, doc: dict[str, Any]) -> dict[str, Any]:
        for key, value in doc.items():
            if isinstance(value, dict) and value:
                doc[key] = self._leaf(value) or self.share(value)
        return doc

    def _leaf(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        if len(obj) > 5:
            return None
        key = tuple(obj.items())
        try:
            hit = self._table.get(key)  # most leaves are shared: look before checking them
        except TypeError:  # a list or dict inside: not a leaf
            return None
        if hit is not None:
            return hit
        if not all(
            isinstance(v, _SCALARS) and (not isinstance(v, str) or len(v) <= 40)
            for v in obj.values()
        ):
            return None
        if len(self._table) < self.limit:
            self._table[key] = obj
        return obj


class WorkspaceStore:
    """Customers, events, indexes and the update stream of one workspace."""

    def __init__(self, workspace_id: str, node_ids: Iterable[str]) -> None:
        self.workspace_id = workspace_id
        self.node_ids = list(node_ids)
        self.clear()

    def clear(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.customer_events: dict[str, list[str]] = {}
        self.updates = UpdateLog()
        self.next_int_id = 1
        self._match_index: dict[str, str] = {}
        self._match_sig: tuple[tuple[str, ...], bool] | None = None
        self._customer_sorts: dict[tuple[str, str, bool], list[str]] = {}
        self._sort_keys: dict[tuple[str, str], list[str] | None] = {}
        self._searches: dict[tuple[Any, ...], list[str]] = {}
        self._event_order: list[str] | None = None

    # -- unique matching policy ---------------------------------------------------------------
    @staticmethod
    def match_key(doc: dict[str, Any], policy: tuple[str, ...], case_sensitive: bool) -> str | None:
        """The composite key of ``doc`` under ``policy`` (None if any property is empty)."""
        parts = [str(doc.get("nodeId"))]
        for prop in policy:
            value = get_path(doc, prop)
            if value is None or value == "":
                return None
            text = value if isinstance(value, str) else repr(value)
            parts.append(text if case_sensitive else text.lower())
        return "\x1f".join(parts)

    def find_match(
        self, doc: dict[str, Any], policy: tuple[str, ...], case_sensitive: bool
    ) -> str | None:
        """The id of the stored customer ``doc`` matches under the policy, if any."""
        if self._match_sig != (policy, case_sensitive):
            self._match_sig = (policy, case_sensitive)
            self._match_index = {}
            for cid, stored in self.customers.items():
                key = self.match_key(stored, policy, case_sensitive)
                if key is not None:
                    self._match_index[key] = cid
        key = self.match_key(doc, policy, case_sensitive)
        return None if key is None else self._match_index.get(key)

    def _index(self, doc: dict[str, Any], add: bool) -> None:
        if self._match_sig is None:
            return
        key = self.match_key(doc, *self._match_sig)
        if key is None:
            return
        if add:
            self._match_index[key] = doc["id"]
        elif self._match_index.get(key) == doc["id"]:
            del self._match_index[key]

    # -- customers ----------------------------------------------------------------------------
    def put_customer(self, doc: dict[str, Any]) -> None:
        """Store ``doc`` (a new dict) as the current version of its customer."""
        old = self.customers.get(doc["id"])
        if old is not None:
            self._index(old, add=False)
        self.customers[doc["id"]] = doc
        self._index(doc, add=True)
        self._forget_searches()

    def put_customer_bulk_done(self) -> None:
        """Call after storing customers directly in ``customers`` (bulk load)."""
        self._forget_searches()
        self._match_sig = None

    def remove_customer(self, cid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Delete a customer and (cascade, since 1.52) its events; returns both."""
        doc = self.customers.pop(cid)
        self._index(doc, add=False)
        self._forget_searches()
        events = [self.events.pop(eid) for eid in self.customer_events.pop(cid, [])]
        if events:
            self._event_order = None
        return doc, events

    def _forget_searches(self) -> None:
        self._customer_sorts.clear()
        self._sort_keys.clear()
        self._searches.clear()

    def sorted_customer_ids(self, node_id: str, prop: str, desc: bool) -> list[str]:
        """Customer ids of a node in sort order; cached until the next customer write."""
        key = (node_id, prop, desc)
        ids = self._customer_sorts.get(key)
        if ids is None:
            docs = self.customers
            if len(self.node_ids) > 1:
                docs = {k: v for k, v in docs.items() if v.get("nodeId") == node_id}
            ids = self._customer_sorts[key] = sort_ids(docs, prop, desc)
        return ids

    def matching_ids(
        self,
        node_id: str,
        prop: str,
        desc: bool,
        query_text: str | None,
        pred: Callable[[dict[str, Any]], bool] | None,
    ) -> list[str]:
        """Ids of the node's customers matching the query (``pred`` is its compiled form),
        in sort order.

        A query bounding the sort property by date-time is narrowed by bisection first
        (:mod:`.rangesearch`): only that run is tested, and not at all when the bounds are
        the whole query.
        """
        ids = self.sorted_customer_ids(node_id, prop, desc)
        bounds = query_range(query_text, prop) if query_text else None
        keys = self._keys(node_id, prop) if bounds is not None else None
        if bounds is not None and keys is not None:
            start, end = run_of(keys, bounds, desc)
            ids = ids[start:end]
            if bounds.exact:
                return ids
        if pred is None:
            return ids
        return [cid for cid in ids if pred(self.customers[cid])]

    def _keys(self, node_id: str, prop: str) -> list[str] | None:
        key = (node_id, prop)
        if key not in self._sort_keys:
            ids = self.sorted_customer_ids(node_id, prop, False)
            self._sort_keys[key] = sort_keys(get_path(self.customers[c], prop) for c in ids)
        return self._sort_keys[key]

    def cached_search(self, key: tuple[Any, ...], compute: Callable[[], list[str]]) -> list[str]:
        """Matched ids of a search, cached (a few entries) until the next customer write.

        Paging through a filtered search re-asks the same question page after page.
        """
        hit = self._searches.get(key)
        if hit is None:
            if len(self._searches) >= 16:
                del self._searches[next(iter(self._searches))]
            hit = self._searches[key] = compute()
        return hit

    def customers_by_external_id(
        self, node_id: str, external_id: str, policy: tuple[str, ...], case_sensitive: bool
    ) -> set[str] | None:
        """Ids with this externalId via the match index, or None when the index can't tell."""
        if policy != ("externalId",) or not case_sensitive:
            return None
        cid = self.find_match({"nodeId": node_id, "externalId": external_id}, policy, True)
        return {cid} if cid else set()

    # -- events -------------------------------------------------------------------------------
    def put_event(self, event: dict[str, Any]) -> None:
        eid = event["id"]
        if eid not in self.events and event.get("customerId"):
            self.customer_events.setdefault(event["customerId"], []).append(eid)
        self.events[eid] = event
        self._event_order = None

    def remove_event(self, eid: str) -> dict[str, Any]:
        event = self.events.pop(eid)
        cid = event.get("customerId")
        if cid and cid in self.customer_events:
            self.customer_events[cid].remove(eid)
        self._event_order = None
        return event

    def event_node(self, event: dict[str, Any]) -> str:
        cid = event.get("customerId")
        if cid and cid in self.customers:
            return str(self.customers[cid].get("nodeId"))
        bring_back = event.get("bringBackProperties") or {}
        return str(bring_back.get("nodeId") or self.node_ids[0])

    def sorted_event_ids(self) -> list[str]:
        """Event ids by descending date (ties by id); cached until the next event write."""
        if self._event_order is None:
            self._event_order = sort_ids(self.events, "date", desc=True)
        return self._event_order

    def events_matching(self, pred: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [e for e in (self.events[i] for i in self.sorted_event_ids()) if pred(e)]


def instant_or_none(value: str | None) -> Any:
    """Parse an optional ISO date-time query parameter (ValueError when malformed)."""
    if value is None:
        return None
    parsed = parse_instant(value)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}")
    return parsed
