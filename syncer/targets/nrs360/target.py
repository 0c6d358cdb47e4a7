"""The 360NRS target: contacts with custom fields, group memberships, deletes, blacklist.

* upsert: ``PUT /contacts/{id}`` when the id is known (404: the contact is gone, find or
  create it again); otherwise, when the change may have been sent before (``resent``), look
  the contact up by email, then phone, and ``PUT`` it; else ``POST``, and if 360NRS answers
  that the email/phone is taken, look it up and ``PUT``. A re-send never creates a second
  contact. With ``lookup_before_create`` (the default) a new contact is looked up first;
  once a run meets many of them the account is listed instead (:mod:`.index`): a backfill
  then costs one call per contact, ``PUT`` for those the listing showed, ``POST`` for the
  others.
* groups: a contact's ``groupsIds`` are the union of every pipeline's groups for that customer
  on this account (this change's record plus what the other pipelines last delivered).
* provenance (``Outcome.origin``, kept in the id map): ``syncer`` when syncer's ``POST``
  created the contact, ``found`` when the contact was on the account before syncer wrote to it
  (a lookup or the listing showed it, or the ``POST`` was refused as taken). A contact found
  by the lookup of a re-send may be syncer's own create whose answer was lost: the failed
  try's outcome says what it was doing; after a crash that left no outcome, a contact created
  after syncer noted the create's identity (``Known.noted_at``, give or take
  ``CREATED_TOLERANCE``) is syncer's; otherwise provenance stays unknown, and unknown counts as
  ``found`` (never deleted on a leave without proof).
* contacts syncer did not create keep the groups syncer does not manage. A ``PUT`` replaces a
  contact's groups (the simulator's default ``put_groups="replace"``; the reference is silent,
  DIGEST 2.8), so syncer reads the contact's groups first (``include=groups`` on the lookup or
  the listing it made anyway, else ``GET /contacts/<ID>?include=groups``) and sends them minus
  syncer's groups, plus the groups it wants now. Syncer's groups are the ones it holds the
  customer in and every name a pipeline of this account can render
  (``Change.syncer_groups``): a group put there by a write whose answer was lost is syncer's
  even though the state never recorded it (:mod:`syncer.mapping.names`). A contact syncer
  created is written without that read: its groups are syncer's (groups added to it by hand
  in 360NRS are replaced on its next update).
* leave: ``PUT`` with the other pipelines' groups (and, for a contact syncer did not create,
  the groups syncer does not manage). 360NRS requires at least one group on every contact
  write and has no call to drop a membership, so a contact syncer created that would be left
  in no group is deleted; one syncer did not create is never deleted on a leave: when nothing
  would remain, the leave is dead with a message saying what to remove by hand.
* dropping groups: the reference says a ``PUT`` with ``groupsIds`` adds the contact to them
  ("se añadirá"), the account may replace them instead (sandbox switch ``put_groups``). The
  first ``PUT`` that drops a group (a leave, or an upsert whose groups shrank) reads the
  contact's groups back once: if the dropped ones stayed (not merely the ones kept next to
  them), this account adds, and from then on
  such a write of a contact syncer created deletes it and creates it again with the groups it
  must keep (its other fields come back with their pipelines' next change); a contact syncer
  did not create is never deleted for that: the write is dead, saying which groups to remove.
* delete: ``on_delete: delete`` deletes the contact (404 counts as done), whoever created it
  (the customer was forgotten and the pipeline opts in); ``unsubscribe`` puts the email on the
  ``mailing`` and the phone on the ``sms`` blacklist; ``remove_from_list`` acts as leave.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..base import Change, FlushPolicy, Known, Outcome, TargetContext
from ..errors import ApiRejected, AuthError, NotFound, RetryableError, outcome_for
from ..phones import InvalidPhone
from .client import Nrs360Client, groups_of
from .groups import GroupResolver
from .index import ContactIndex
from .payload import contact_body, identity_body, key_of

TAKEN = "has already been taken"
SYNCER, FOUND = "syncer", "found"  # provenance of a contact (id map ``origin``)
Groups = list[dict[str, Any]]  # a contact's groups as read: ``[{id, name}]``
Owned = Callable[[str], bool]  # is this group name one syncer manages on this contact?


class _Stage:
    """What the write of one upsert is doing now: ``origin`` is ``syncer`` while it creates,
    ``found`` while it writes a contact that was there before. A failed write reports it, so a
    re-send that finds the contact knows whose it is (a lost create's contact is syncer's)."""

    __slots__ = ("origin",)

    def __init__(self) -> None:
        self.origin: str | None = None


def _merged(body: dict[str, Any], current: Groups, managed: Owned) -> dict[str, Any]:
    """``body`` with the groups of ``current`` syncer does not manage (``managed`` says no)
    kept next to the groups syncer sends."""
    sent = list(body.get("groupsIds") or [])
    kept = [int(g["id"]) for g in current if not managed(str(g.get("name", "")))]
    return {**body, "groupsIds": sent + [g for g in dict.fromkeys(kept) if g not in sent]}


class Nrs360Target:
    """One 360NRS account (``per_record``: one contact per call)."""

    per_record = True

    def __init__(self, name: str, client: Nrs360Client, *, lookup_first: bool = False) -> None:
        self.name = name
        self.client = client
        self.groups = GroupResolver(client)
        #: look up before every create, not only on re-sends (slower: two calls per new contact)
        self.lookup_first = lookup_first
        #: the account's contacts as last listed (lookups of new contacts, answered locally)
        self.index = ContactIndex(client.contacts_page)
        #: does ``PUT groupsIds`` add (True) or replace (False) groups? None: not seen yet
        self.put_adds_groups: bool | None = None

    def flush_policy(self) -> FlushPolicy | None:
        return None

    def check(self) -> None:
        try:
            self.client.check()
        except AuthError as exc:
            raise AuthError(f"target {self.name!r}: {exc}") from None

    def identity(self, change: Change) -> str | None:
        """The key a create of ``change`` uses (the engine keeps it before the call)."""
        if change.action != "upsert" or change.record is None:
            return None
        try:
            return key_of(contact_body(change.record, []))
        except InvalidPhone:
            return None  # never sent: the upsert answers it invalid

    def apply(self, changes: Sequence[Change], ctx: TargetContext) -> list[Outcome]:
        return [self._one(change, ctx) for change in changes]

    def close(self) -> None:
        self.client.http.close()

    # -- one change --------------------------------------------------------------------------
    def _one(self, change: Change, ctx: TargetContext) -> Outcome:
        try:
            if change.action == "upsert":
                return self._upsert(change, ctx)
            if change.action == "leave" or change.on_delete == "remove_from_list":
                return self._leave(change, ctx)
            return self._delete(change, ctx)
        except (RetryableError, ApiRejected) as failure:
            return outcome_for(change, failure)
        except AuthError as exc:  # stops the target; the message names it
            raise AuthError(f"target {self.name!r}: {exc}") from None

    def _upsert(self, change: Change, ctx: TargetContext) -> Outcome:
        record = change.record
        if record is None:
            return Outcome.invalid(change, "nothing to send: the record could not be mapped")
        try:
            contact_body(record, [])
        except InvalidPhone as exc:
            return Outcome.invalid(change, str(exc))
        names = set(record.groups) | change.known.other_pipelines_names(change.pipeline)
        if not names:
            return Outcome.invalid(
                change, "a 360NRS contact needs at least one group; the pipeline maps none"
            )
        managed = _managed(change, names | _held(change))
        stage = _Stage()
        # this pipeline's groups no pipeline wants any more: the PUT must take them away
        dropping = change.known.memberships.get(change.pipeline, frozenset()) - names
        for tries in (1, 2):
            body = contact_body(record, self.groups.ids(names, ctx))
            try:
                contact_id, detail, origin = self._write(change, body, managed, stage)
                if detail == "updated":
                    contact_id = self._groups_dropped(change, contact_id, body, origin, dropping)
                break
            except (RetryableError, ApiRejected) as failure:
                # A cached group id the account no longer has: list the groups again, once.
                if tries == 1 and type(failure) is ApiRejected and "groupsIds" in str(failure):
                    self.groups.invalidate()
                    continue
                out = outcome_for(change, failure)
                # the identity this write used: if it reached 360NRS, a retry finds it there
                # even when the customer's email or phone changed meanwhile
                return dataclasses.replace(out, target_key=key_of(body), origin=stage.origin)
        return Outcome.done(
            change,
            detail,
            target_id=str(contact_id),
            target_key=key_of(body),
            memberships=frozenset(record.groups),
            origin=origin,
        )

    def _write(
        self, change: Change, body: dict[str, Any], managed: Owned, stage: _Stage
    ) -> tuple[int | str, str, str | None]:
        """Write the contact; ``(id, detail, provenance learnt or None)``."""
        contact_id: int | str | None = change.known.target_id
        if contact_id is not None:
            if self._put_known(change, contact_id, body, managed):
                return contact_id, "updated", None
            self.index.deleted(contact_id)
        if not self.lookup_first or change.resent or contact_id is not None:
            written, detail, origin = self._write_looked_up(
                change, body, contact_id, managed, stage
            )
            self.index.written(body, written)
            return written, detail, origin
        answered, found = self.index.lookup(body)  # reserves its e-mail/phone until finish
        result: tuple[int | str, str, str | None] | None = None
        try:
            if not answered:  # the account is not listed (yet): look it up
                result = self._write_looked_up(change, body, None, managed, stage)
            elif found is not None and self._put_listed(found, body, managed, stage):
                result = found, "updated", FOUND
            else:  # the listing did not show it: create without a lookup
                result = self._create(body, managed, stage)
            return result
        finally:
            self.index.finish(body, result[0] if result is not None else None)

    def _put_known(
        self, change: Change, contact_id: int | str, body: dict[str, Any], managed: Owned
    ) -> bool:
        """``PUT`` a contact of known id; False when it is gone (404). One syncer did not
        create is read first, so the groups syncer does not manage stay."""
        if change.known.origin != SYNCER:
            current = self.client.contact_groups(contact_id)
            if current is None:
                return False
            body = _merged(body, current, managed)
        try:
            self.client.update_contact(contact_id, body)
        except NotFound:
            return False
        self.index.written(body, contact_id)
        return True

    def _put_listed(
        self, contact_id: int, body: dict[str, Any], managed: Owned, stage: _Stage
    ) -> bool:
        """``PUT`` a contact the listing showed (it was there before syncer: its other groups
        stay); False when it is gone since (404)."""
        current = self.index.listed_groups(contact_id)
        if current is None:
            current = self.client.contact_groups(contact_id)
        try:
            if current is not None:
                stage.origin = FOUND
                self.client.update_contact(contact_id, _merged(body, current, managed))
                return True
        except NotFound:
            pass
        self.index.deleted(contact_id)  # gone since the listing
        return False

    def _write_looked_up(
        self,
        change: Change,
        body: dict[str, Any],
        contact_id: int | str | None,
        managed: Owned,
        stage: _Stage,
    ) -> tuple[int | str, str, str | None]:
        if change.resent or self.lookup_first or contact_id is not None:
            found = self._lookup(body)
            earlier = identity_body(change.known.target_key)  # what an earlier try sent
            if found is None and change.resent and earlier and key_of(earlier) != key_of(body):
                found = self._lookup(earlier)
            if found is not None:
                found_id = int(found["id"])
                origin = _resent_origin(found, change.known) if change.resent else FOUND
                stage.origin = origin
                mine = origin == SYNCER  # its groups are syncer's: nothing else to keep
                self.client.update_contact(
                    found_id, body if mine else _merged(body, groups_of(found), managed)
                )
                return found_id, "updated", origin
        return self._create(body, managed, stage)

    def _create(
        self, body: dict[str, Any], managed: Owned, stage: _Stage
    ) -> tuple[int | str, str, str | None]:
        """``POST``; when 360NRS says the e-mail/phone is taken, find that contact (it was
        there before syncer) and ``PUT``, keeping its other groups."""
        stage.origin = SYNCER
        try:
            return self.client.create_contact(body), "created", SYNCER
        except ApiRejected as failure:
            if type(failure) is not ApiRejected or TAKEN not in str(failure):
                raise
            found = self._lookup(body)
            if found is None:
                raise
            found_id = int(found["id"])
            stage.origin = FOUND
            self.client.update_contact(found_id, _merged(body, groups_of(found), managed))
            return found_id, "updated", FOUND

    def _find(self, body: dict[str, Any]) -> int | None:
        return self.client.find_contact(email=body.get("email"), phone=body.get("phone"))

    def _lookup(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.client.lookup_contact(email=body.get("email"), phone=body.get("phone"))

    def _identity(self, change: Change) -> dict[str, Any]:
        found = identity_body(change.known.target_key)
        if found or change.record is None:
            return found
        try:
            body = contact_body(change.record, [])
        except InvalidPhone:
            return {}  # such a record was never created
        return {k: body[k] for k in ("email", "phone", "landline", "countryIso") if k in body}

    def _leave(self, change: Change, ctx: TargetContext) -> Outcome:
        known = change.known
        contact_id: int | str | None = known.target_id
        current: Groups | None = None
        origin = known.origin
        if contact_id is None and change.resent:
            # an earlier create may have reached 360NRS without its answer reaching us
            ident = self._identity(change)
            found = self._lookup(ident) if ident else None
            if found is not None:
                contact_id, current = int(found["id"]), groups_of(found)
                origin = _resent_origin(found, known)
        if contact_id is None:
            return Outcome.done(change, "skipped", memberships=frozenset())
        remaining = known.other_pipelines_names(change.pipeline)
        # syncer's contact: its create succeeded, or failed with a lost answer (see _Stage)
        mine = origin == SYNCER or known.co_created  # created for this or another holder
        if mine and not remaining:  # 360NRS cannot hold a contact in no group through its API
            self.client.delete_contact(contact_id)
            self.index.deleted(contact_id)
            return Outcome.done(change, "left", memberships=frozenset(), forget=True)
        body = {**self._identity(change), "groupsIds": self.groups.ids(remaining, ctx)}
        if not mine:  # not syncer's contact: what syncer does not manage stays, it is kept
            if current is None:
                current = self.client.contact_groups(contact_id)
            if current is None:  # gone meanwhile
                return Outcome.done(change, "left", memberships=frozenset(), forget=True)
            body = _merged(body, current, _managed(change, remaining | _held(change)))
            if not body["groupsIds"]:
                names = sorted(str(g.get("name")) for g in current)
                return Outcome.dead(
                    change,
                    f"360NRS contact {contact_id} was not created by syncer (or before syncer "
                    f"recorded who created its contacts) and leaving would put it in no group, "
                    f"which 360NRS cannot do through its API; syncer keeps it: remove it from "
                    f"{', '.join(names)} by hand, or delete it",
                )
        try:
            self.client.update_contact(contact_id, body)
            dropping = known.memberships.get(change.pipeline, frozenset()) - remaining
            new_id = self._groups_dropped(change, contact_id, body, origin, dropping)
        except NotFound:
            return Outcome.done(change, "left", memberships=frozenset(), forget=True)
        except ApiRejected as failure:
            return Outcome.dead(change, str(failure))
        return Outcome.done(
            change, "left", target_id=str(new_id), memberships=frozenset(), origin=origin
        )

    def _groups_dropped(
        self,
        change: Change,
        contact_id: int | str,
        body: dict[str, Any],
        origin: str | None,
        dropping: frozenset[str],
    ) -> int | str:
        """After a ``PUT`` meant to drop the groups ``dropping``: the contact's id, re-created
        in ``body``'s groups when this account's ``PUT`` adds groups instead of replacing them
        (only a contact syncer created: another is never deleted, :class:`ApiRejected` says
        why). The first such ``PUT`` reads the contact back: did the dropped groups stay? (Not
        "is every group one syncer sent": the groups kept next to them are meant to stay.)"""
        if not dropping:
            return contact_id
        if self.put_adds_groups is None:
            current = self.client.contact_groups(contact_id)
            if current is None:  # gone meanwhile: the next write of it finds out
                return contact_id
            gone = {n.casefold() for n in dropping}
            self.put_adds_groups = any(str(g.get("name", "")).casefold() in gone for g in current)
        if not self.put_adds_groups:
            return contact_id
        if (origin or change.known.origin) != SYNCER:
            raise ApiRejected(
                0,
                f"360NRS contact {contact_id} keeps groups on a PUT (this account adds groups) "
                "and was not created by syncer, so syncer does not re-create it: remove it by "
                "hand from the groups this customer left",
            )
        self.client.delete_contact(contact_id)
        self.index.deleted(contact_id)
        new_id = self.client.create_contact(body)
        self.index.written(body, new_id)
        return new_id

    def _delete(self, change: Change, ctx: TargetContext) -> Outcome:
        if change.on_delete == "ignore":
            return Outcome.done(change, "skipped")
        if change.on_delete == "delete" and change.known.co_held:
            # another customer holds this contact too (the same e-mail): deleting it would take
            # it from them; this customer's groups go and its id map row with them
            left = self._leave(change, ctx)
            return dataclasses.replace(left, forget=True) if left.status == "done" else left
        ident = self._identity(change)
        if change.on_delete == "unsubscribe":
            if not ident.get("email") and not ident.get("phone"):
                return Outcome.done(change, "skipped")
            if ident.get("email"):
                self.client.blacklist_add("mailing", ident["email"])
            if ident.get("phone"):
                self.client.blacklist_add("sms", ident["phone"])
            return Outcome.done(change, "unsubscribed")
        contact_id: int | str | None = change.known.target_id
        if contact_id is None and ident:
            contact_id = self._find(ident)
        if contact_id is not None:
            self.client.delete_contact(contact_id)
            self.index.deleted(contact_id)
        return Outcome.done(change, "deleted", memberships=frozenset(), forget=True)


def _managed(change: Change, names: set[str] | frozenset[str]) -> Owned:
    """The groups syncer manages on this customer's contact: ``names`` (what syncer holds it
    in and sends now) and every name a pipeline of this account can render, so that a group
    put there by a write whose outcome was never recorded is syncer's too, not kept as if
    someone else had added it (see :mod:`syncer.mapping.names`)."""
    folded = {n.casefold() for n in names}
    return lambda name: name.casefold() in folded or change.syncer_groups.match(name)


def _held(change: Change) -> set[str]:
    """Every group syncer holds this customer in on the account (any pipeline), and the groups
    this change's record names: the groups syncer manages for this contact."""
    names: set[str] = set()
    for groups in change.known.memberships.values():
        names |= groups
    if change.record is not None:
        names |= set(change.record.groups)
    return names


CREATED_TOLERANCE = 120.0  # seconds: 360NRS's clock (whole seconds) against the database's


def _resent_origin(found: dict[str, Any], known: Known) -> str | None:
    """Whose is the contact a re-send found? What the failed try was doing says (a create whose
    answer was lost: syncer's); when the process died before it could say, the contact's age
    does (:func:`_created_since`); else unknown."""
    if known.origin is None and _created_since(found, known):
        return SYNCER
    return known.origin


def _created_since(contact: dict[str, Any], known: Known) -> bool:
    """Was ``contact`` created after syncer noted the identity of its create (give or take
    the clocks' difference)? Then nobody but that create made it. Unknown: not syncer's."""
    if known.noted_at is None:
        return False
    try:
        created = datetime.fromisoformat(str(contact.get("createdAt"))).timestamp()
    except ValueError:
        return False
    return created >= known.noted_at - CREATED_TOLERANCE
