"""A snapshot of the account's contacts, so a backfill creates without a lookup per contact.

Without it a contact with no known id is looked up (email, then phone) before it is created:
two or three calls per new contact. :class:`ContactIndex` lists the account instead,
``GET /contacts?limit=1000&page=n`` (the documented maximum page, S004:L3066), and answers
those lookups from memory: a contact the listing showed is updated (``PUT``), one it did not
show is created at once.

When to list (a rent-or-buy rule): the first unknown contact fetches page 1, which also tells
how many pages the account has (``meta.pagination.total_pages``). An account of one page is
then fully known. Otherwise lookups go on until as many unknown contacts as there are pages
were met, and the other pages are listed: a run that meets few new contacts never pays for
listing a large account, one that meets many pays at most twice the cheaper of the two.

The listing asks for each contact's groups (``include=groups``): a contact that was on the
account before syncer keeps the groups syncer does not manage (see :mod:`.target`).

The snapshot is kept for :data:`SNAPSHOT_TTL` seconds, and kept true meanwhile: every contact
syncer creates, updates or deletes is written into it. Two changes creating one e-mail (or
phone) at once are serialised (the second waits for the first's id), so a 360NRS that accepts
a second contact with the same e-mail still gets one. A contact created in 360NRS by someone
else after the listing is not seen (a re-send after a lost answer always looks up for real).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .client import groups_of

__all__ = ["SNAPSHOT_TTL", "ContactIndex"]

SNAPSHOT_TTL = 600.0  # seconds a listing is trusted
Lister = Callable[[int], tuple[list[dict[str, Any]], int]]  # page -> (contacts, total pages)


def _keys(body: dict[str, Any]) -> list[str]:
    """The lookup keys of a contact, in the order a lookup tries them (email, then phone)."""
    keys = []
    if body.get("email"):
        keys.append("e:" + str(body["email"]).strip().casefold())
    if body.get("phone"):
        keys.append("p:" + str(body["phone"]))
    return keys


class ContactIndex:
    """Contact ids by e-mail and phone, from a listing of the account (thread-safe)."""

    def __init__(self, lister: Lister, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._list = lister
        self._clock = clock
        self._cond = threading.Condition()
        self._warming = False
        self._reset()

    def _reset(self) -> None:
        self._ids: dict[str, set[int]] = {}  # key -> contact ids (the oldest is used)
        self._keys_of: dict[int, list[str]] = {}
        # groups of listed contacts syncer has not written since (listed with include=groups)
        self._groups: dict[int, list[dict[str, Any]]] = {}
        self._pages: int | None = None  # of the account, from page 1
        self._listed: set[int] = set()
        self._unknown = 0  # contacts met with no id since the snapshot began
        self._since = self._clock()
        self.complete = False
        self._creating: set[str] = set()

    # -- the listing -------------------------------------------------------------------------
    def _fresh(self) -> None:
        stale = self._clock() - self._since > SNAPSHOT_TTL
        if stale and not self._creating and not self._warming:
            self._reset()

    def _take(self, contacts: list[dict[str, Any]]) -> None:
        for contact in contacts:
            try:
                contact_id = int(contact["id"])
            except (KeyError, TypeError, ValueError):
                continue
            self._add(contact_id, _keys(contact))
            if contact_id in self._keys_of:
                self._groups[contact_id] = groups_of(contact)

    def _warm(self) -> None:
        """Fetch page 1, or every other page once enough unknown contacts were met; one
        thread at a time (the others wait for it: a lookup meanwhile would be a wasted call).
        Call with the lock held."""
        while self._warming:
            self._cond.wait(timeout=30)
        if self.complete:
            return
        if self._pages is not None and self._unknown < self._pages:
            return
        pages = [1] if self._pages is None else [p for p in range(2, self._pages + 1)]
        self._warming = True
        self._cond.release()
        try:
            got = [(p, *self._list(p)) for p in pages]
        finally:
            self._cond.acquire()
            self._warming = False
            self._cond.notify_all()
        for page, contacts, total in got:
            if page == 1:
                self._pages = max(1, total)
            self._take(contacts)
            self._listed.add(page)
        if self._pages is not None and self._listed >= set(range(1, self._pages + 1)):
            self.complete = True

    # -- use ---------------------------------------------------------------------------------
    def lookup(self, body: dict[str, Any]) -> tuple[bool, int | None]:
        """``(answered, contact id or None)`` for a contact syncer has no id of. Not
        answered: look it up for real (the listing is not complete yet). Answered with None:
        the account does not have it, create it. Either way ``body``'s e-mail and phone are
        reserved until :meth:`finish` (another change writing them waits), which the caller
        must call with the id written, or None."""
        keys = _keys(body)
        with self._cond:
            self._fresh()
            if not self.complete and keys:
                self._unknown += 1
                self._warm()
            while any(k in self._creating for k in keys):  # the same contact, written now
                self._cond.wait(timeout=30)
            self._creating.update(keys)
            if not self.complete or not keys:
                return False, None
            return True, next((min(self._ids[k]) for k in keys if self._ids.get(k)), None)

    def finish(self, body: dict[str, Any], contact_id: int | str | None) -> None:
        """The write :meth:`lookup` answered is over (``contact_id``: what it wrote)."""
        if contact_id is not None:
            self.written(body, contact_id)
        with self._cond:
            self._creating.difference_update(_keys(body))
            self._cond.notify_all()

    def written(self, body: dict[str, Any], contact_id: int | str) -> None:
        """A contact syncer created or updated now holds ``body``'s e-mail and phone."""
        try:
            cid = int(contact_id)
        except (TypeError, ValueError):
            return
        with self._cond:
            self._forget(cid)
            self._add(cid, _keys(body))

    def deleted(self, contact_id: int | str) -> None:
        try:
            cid = int(contact_id)
        except (TypeError, ValueError):
            return
        with self._cond:
            self._forget(cid)

    def listed_groups(self, contact_id: int) -> list[dict[str, Any]] | None:
        """The groups the listing showed for a contact syncer has not written since, if any."""
        with self._cond:
            groups = self._groups.get(contact_id)
            return list(groups) if groups is not None else None

    def _add(self, cid: int, keys: list[str]) -> None:
        if self._pages is None and not self._warming:
            return  # nothing listed: nothing to keep true (and no memory spent)
        for key in keys:
            self._ids.setdefault(key, set()).add(cid)
        self._keys_of.setdefault(cid, []).extend(keys)

    def _forget(self, cid: int) -> None:
        self._groups.pop(cid, None)
        for key in self._keys_of.pop(cid, []):
            ids = self._ids.get(key)
            if ids is not None:
                ids.discard(cid)
                if not ids:
                    del self._ids[key]
