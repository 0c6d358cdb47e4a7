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
* leave: ``PUT`` with the other pipelines' groups. 360NRS requires at least one group on every
  contact write and has no call to drop a membership, so a contact that would be left in no
  group is deleted.
* dropping groups: the reference says a ``PUT`` with ``groupsIds`` adds the contact to them
  ("se añadirá"), the account may replace them instead. The first ``PUT`` that drops a group
  (a leave, or an upsert whose groups shrank) reads the contact's groups back once: if the
  dropped ones stayed, this account adds, and from then on such a write deletes the contact
  and creates it again with the groups it must keep (a leave re-creates it with its identity
  and groups only: the other pipelines' fields come back with their next change).
* delete: ``on_delete: delete`` deletes the contact (404 counts as done); ``unsubscribe`` puts
  the email on the ``mailing`` and the phone on the ``sms`` blacklist; ``remove_from_list``
  acts as leave.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ...errors import AuthError
from ...http import Action
from ..base import Change, FlushPolicy, Outcome, TargetContext
from ..phones import InvalidPhone
from .client import ApiFailure, Nrs360Client
from .groups import GroupResolver
from .index import ContactIndex
from .payload import contact_body, identity_body, key_of

TAKEN = "has already been taken"


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
        except ApiFailure as failure:
            if failure.action is Action.STOP:
                raise AuthError(f"target {self.name!r}: {failure.message}") from None
            raise

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
            return self._delete(change)
        except ApiFailure as failure:
            return self._failed(change, failure)

    def _failed(self, change: Change, failure: ApiFailure) -> Outcome:
        if failure.action is Action.STOP:
            raise AuthError(f"target {self.name!r}: {failure.message}")
        if failure.action is Action.RATE_LIMIT:
            return Outcome.retry(
                change, failure.message, retry_after=failure.retry_after, rate_limited=True
            )
        if failure.action is Action.RETRY:
            return Outcome.retry(change, failure.message, retry_after=failure.retry_after)
        return Outcome.dead(change, failure.message)

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
        dropped = bool(
            change.known.memberships.get(change.pipeline, frozenset()) - set(record.groups)
        )
        for tries in (1, 2):
            body = contact_body(record, self.groups.ids(names, ctx))
            try:
                contact_id, detail = self._write(change, body)
                if dropped and detail == "updated":
                    contact_id = self._groups_dropped(contact_id, body)
                break
            except ApiFailure as failure:
                # A cached group id the account no longer has: list the groups again, once.
                if (
                    tries == 1
                    and failure.action is Action.PERMANENT
                    and "groupsIds" in (failure.message)
                ):
                    self.groups.invalidate()
                    continue
                out = self._failed(change, failure)
                # the identity this write used: if it reached 360NRS, a retry finds it there
                # even when the customer's email or phone changed meanwhile
                return dataclasses.replace(out, target_key=key_of(body))
        return Outcome.done(
            change,
            detail,
            target_id=str(contact_id),
            target_key=key_of(body),
            memberships=frozenset(record.groups),
        )

    def _write(self, change: Change, body: dict[str, Any]) -> tuple[int | str, str]:
        contact_id: int | str | None = change.known.target_id
        if contact_id is not None:
            try:
                self.client.update_contact(contact_id, body)
                self.index.written(body, contact_id)
                return contact_id, "updated"
            except ApiFailure as failure:
                if failure.action is not Action.NOT_FOUND:
                    raise
                self.index.deleted(contact_id)
        if not self.lookup_first or change.resent or contact_id is not None:
            written, detail = self._write_looked_up(change, body, contact_id)
            self.index.written(body, written)
            return written, detail
        answered, found = self.index.lookup(body)  # reserves its e-mail/phone until finish
        result: tuple[int | str, str] | None = None
        try:
            if not answered:  # the account is not listed (yet): look it up
                result = self._write_looked_up(change, body, None)
            elif found is not None and self._put_listed(found, body):
                result = found, "updated"
            else:  # the listing did not show it: create without a lookup
                result = self._create(body)
            return result
        finally:
            self.index.finish(body, result[0] if result is not None else None)

    def _put_listed(self, contact_id: int, body: dict[str, Any]) -> bool:
        """``PUT`` a contact the listing showed; False when it is gone since (404)."""
        try:
            self.client.update_contact(contact_id, body)
        except ApiFailure as failure:
            if failure.action is not Action.NOT_FOUND:
                raise
            self.index.deleted(contact_id)
            return False
        return True

    def _write_looked_up(
        self, change: Change, body: dict[str, Any], contact_id: int | str | None
    ) -> tuple[int | str, str]:
        if change.resent or self.lookup_first or contact_id is not None:
            found = self._find(body)
            earlier = identity_body(change.known.target_key)  # what an earlier try sent
            if found is None and change.resent and earlier and key_of(earlier) != key_of(body):
                found = self._find(earlier)
            if found is not None:
                self.client.update_contact(found, body)
                return found, "updated"
        return self._create(body)

    def _create(self, body: dict[str, Any]) -> tuple[int | str, str]:
        """``POST``; when 360NRS says the e-mail/phone is taken, find that contact and ``PUT``."""
        try:
            return self.client.create_contact(body), "created"
        except ApiFailure as failure:
            if failure.action is not Action.PERMANENT or TAKEN not in failure.message:
                raise
            found = self._find(body)
            if found is None:
                raise
            self.client.update_contact(found, body)
            return found, "updated"

    def _find(self, body: dict[str, Any]) -> int | None:
        return self.client.find_contact(email=body.get("email"), phone=body.get("phone"))

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
        if contact_id is None and change.resent:
            # an earlier create may have reached 360NRS without its answer reaching us
            ident = self._identity(change)
            contact_id = self._find(ident) if ident else None
        if contact_id is None:
            return Outcome.done(change, "skipped", memberships=frozenset())
        remaining = known.other_pipelines_names(change.pipeline)
        if not remaining:  # 360NRS cannot hold a contact in no group through its API
            self.client.delete_contact(contact_id)
            self.index.deleted(contact_id)
            return Outcome.done(change, "left", memberships=frozenset(), forget=True)
        body = {**self._identity(change), "groupsIds": self.groups.ids(remaining, ctx)}
        try:
            self.client.update_contact(contact_id, body)
            new_id = self._groups_dropped(contact_id, body)
        except ApiFailure as failure:
            if failure.action is Action.NOT_FOUND:
                return Outcome.done(change, "left", memberships=frozenset(), forget=True)
            raise
        if new_id != contact_id:
            return Outcome.done(change, "left", target_id=str(new_id), memberships=frozenset())
        return Outcome.done(change, "left", memberships=frozenset())

    def _groups_dropped(self, contact_id: int | str, body: dict[str, Any]) -> int | str:
        """After a ``PUT`` meant to drop groups: the contact's id, re-created in ``body``'s
        groups when this account's ``PUT`` adds groups instead of replacing them."""
        if self.put_adds_groups is None:
            kept = self.client.contact_group_ids(contact_id)
            self.put_adds_groups = not kept <= set(body.get("groupsIds") or [])
        if not self.put_adds_groups:
            return contact_id
        self.client.delete_contact(contact_id)
        self.index.deleted(contact_id)
        new_id = self.client.create_contact(body)
        self.index.written(body, new_id)
        return new_id

    def _delete(self, change: Change) -> Outcome:
        if change.on_delete == "ignore":
            return Outcome.done(change, "skipped")
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
