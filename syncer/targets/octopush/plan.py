"""From changes to Octopush operations (pure: no I/O).

Each :class:`~syncer.targets.base.Change` becomes a :class:`ChangePlan`: either a final
outcome decided before any call (invalid record, nothing to do), or operations:

* :class:`Join`: upsert the contact under ``phone`` into ``list_name`` (``contact/create``);
* :class:`Leave`: remove ``phone`` from ``list_name`` (``contact/delete`` with ``list_name``),
  or delete the contact from the account when ``list_name`` is None.

Keys: the contact key is the E.164 phone. The key used before is
``known.member_keys[pipeline]`` (else ``known.target_key``), the lists before are
``known.memberships[pipeline]``. A phone change leaves every old list under the old number and
joins under the new one; a list change leaves the old list. A list still held by another
pipeline of this customer under the same number is not left.

Adds whose answer was lost. ``contact/create`` may have put the number in the list although
its answer never came (lost response, process killed): syncer then has no confirmed contact
(``known.target_id`` is None) and no memberships, and a re-send mapped from a newer version of
the customer (another phone, another list) would add the new number and leave the old one in
the list for good. So the identity of an add, ``"<phone> <list>"`` (:func:`identity_key`), is
kept in the id map (noted by the engine before the call through ``OctopushTarget.identity``,
and returned with a retry). A confirmed contact's ``target_key`` is a bare phone; a key of
the form ``"<phone> <list>"`` is an unconfirmed add (:func:`unconfirmed_add`), whether the
contact is new (``known.target_id`` None) or already known (a known contact's add into
another list, or under another phone, whose answer was lost: the engine keeps the key next to
the id). A re-send treats it as what the customer may be in, on top of the memberships: the
add's number leaves the add's list (and this change's list) unless that is where this change
puts it; a ``leave``/``delete`` removes it too. Octopush has no
read call (DIGEST 3.5), so the removal is blind; removing a number that is not in the list is
a no-op (204). Decision: the old number only *leaves the lists*; it is never deleted from the
account, because ``contact/create`` is an upsert and syncer cannot know whether that number
was on the account (in other lists, added by hand) before the lost add. The same holds for an
ordinary phone change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import phones
from ..base import Change, Known, Outcome
from .client import MAX_LIST_NAME, MAX_TAG

__all__ = [
    "CONTACT_KEYS",
    "ChangePlan",
    "Join",
    "Leave",
    "identity_key",
    "normalise_phone",
    "plan_change",
    "unconfirmed_add",
]

CONTACT_KEYS = ("first_name", "last_name", "param1", "param2", "param3", "param4", "param5")


@dataclass(frozen=True)
class Join:
    """Upsert ``contact`` (with ``phone_number``) into ``list_name`` with ``tag``."""

    phone: str
    list_name: str
    tag: str | None
    contact: dict[str, Any]


@dataclass(frozen=True)
class Leave:
    """Remove ``phone`` from ``list_name``; ``None`` deletes the contact from the account."""

    phone: str
    list_name: str | None


@dataclass
class ChangePlan:
    """What to do for one change, and what to answer when every operation succeeds."""

    change: Change
    final: Outcome | None = None  # decided without any call
    joins: list[Join] = field(default_factory=list)
    leaves: list[Leave] = field(default_factory=list)
    detail: str = ""
    key: str | None = None
    memberships: frozenset[str] | None = None
    forget: bool = False

    def success(self, join_status: str | None) -> Outcome:
        """The outcome when all operations went through (``join_status`` from Octopush)."""
        detail = {"added": "created", None: self.detail}.get(join_status, join_status or "")
        return Outcome.done(
            self.change,
            detail,
            target_id=self.key,
            target_key=self.key,
            member_key=self.key,
            memberships=self.memberships,
            forget=self.forget,
        )


def normalise_phone(raw: Any) -> str | None:
    """E.164 form of a valid international number (``+`` prefix required), else None."""
    if not isinstance(raw, str) or not raw.strip().startswith("+"):
        return None
    try:
        return phones.e164(raw)
    except phones.InvalidPhone:
        return None


def identity_key(phone: str, list_name: str) -> str:
    """The id map key of an add: ``"<E.164 phone> <list name>"`` (a phone has no space)."""
    return f"{phone} {list_name}"


def _phone_of(key: str | None) -> str | None:
    """The phone of an id map key: a bare phone, or the phone of an :func:`identity_key`."""
    if not key:
        return None
    return key.split(" ", 1)[0] or None


def unconfirmed_add(known: Known) -> tuple[str, str | None] | None:
    """``(phone, list or None)`` of an add that may have reached Octopush unconfirmed: the
    id map holds an add's identity key, or a key but no contact id (see the module
    docstring); else None."""
    if not known.target_key:
        return None
    phone, _, list_name = known.target_key.partition(" ")
    if not phone or (known.target_id is not None and not list_name):
        return None  # a confirmed contact: its key is its phone
    return phone, list_name or None


def _old_key(change: Change) -> str | None:
    known = change.known
    return known.member_keys.get(change.pipeline) or _phone_of(known.target_key)


def _may_be_in(change: Change, key: str | None, current: str | None) -> set[tuple[str, str]]:
    """``(phone, list)`` pairs the customer may be in for this pipeline: its lists before the
    change under ``key``, plus those an unconfirmed add may have joined under the add's phone
    (its list, and ``current``, this change's list, in case the add was this pipeline's while
    the id map kept another pipeline's identity)."""
    pairs: set[tuple[str, str]] = set()
    if key:
        pairs |= {(key, n) for n in change.known.memberships.get(change.pipeline, frozenset())}
    earlier = unconfirmed_add(change.known)
    if earlier is not None:
        phone, list_name = earlier
        pairs |= {(phone, n) for n in (list_name, current) if n}
    return pairs


def _shared(known: Known, pipeline: str, list_name: str, phone: str) -> bool:
    """Whether another pipeline keeps this customer in ``list_name`` under ``phone``."""
    for other, names in known.memberships.items():
        if other == pipeline or list_name not in names:
            continue
        if (known.member_keys.get(other) or _phone_of(known.target_key)) == phone:
            return True
    return False


def _leaves(change: Change, pairs: set[tuple[str, str]]) -> list[Leave]:
    return [
        Leave(phone, name)
        for phone, name in sorted(pairs)
        if not _shared(change.known, change.pipeline, name, phone)
    ]


def _contact(phone: str, fields: dict[str, Any]) -> dict[str, Any]:
    contact: dict[str, Any] = {"phone_number": phone}
    for key in CONTACT_KEYS:
        value = fields.get(key)
        if value is None:
            continue
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        contact[key] = value if ok else str(value)
    return contact


def _plan_upsert(change: Change) -> ChangePlan:
    plan = ChangePlan(change)
    record = change.record
    if record is None:
        plan.final = Outcome.invalid(change, "no mapped record to upsert")
        return plan
    raw = record.fields.get("phone_number")
    phone = normalise_phone(raw)
    if phone is None:
        reason = "no phone_number" if raw in (None, "") else f"not a valid E.164 phone: {raw!r}"
        plan.final = Outcome.invalid(change, f"phone_number: {reason}")
        return plan
    name = record.list_name
    if not name:
        plan.final = Outcome.invalid(change, "list: the pipeline gives no Octopush list name")
        return plan
    if len(name) > MAX_LIST_NAME:
        plan.final = Outcome.invalid(
            change, f"list: {name!r} has {len(name)} characters, Octopush allows {MAX_LIST_NAME}"
        )
        return plan
    if record.tag is not None and len(record.tag) > MAX_TAG:
        plan.final = Outcome.invalid(
            change,
            f"tag: {record.tag!r} has {len(record.tag)} characters, Octopush allows {MAX_TAG}",
        )
        return plan
    plan.leaves = _leaves(change, _may_be_in(change, _old_key(change), name) - {(phone, name)})
    plan.joins = [Join(phone, name, record.tag or None, _contact(phone, record.fields))]
    plan.key = phone
    plan.memberships = frozenset({name})
    return plan


def _plan_leave(change: Change, detail: str) -> ChangePlan:
    plan = ChangePlan(change, detail=detail, memberships=frozenset())
    record = change.record
    key = _old_key(change)
    if key is None and record is not None:
        key = normalise_phone(record.fields.get("phone_number"))
    pairs = _may_be_in(change, key, record.list_name if record is not None else None)
    if not pairs and key is not None and record is not None and record.list_name:
        pairs = {(key, record.list_name)}
    plan.key = key
    plan.leaves = _leaves(change, pairs)
    return plan


def plan_change(change: Change) -> ChangePlan:
    """The :class:`ChangePlan` of one change (see the module docstring)."""
    if change.action == "upsert":
        return _plan_upsert(change)
    if change.action == "leave":
        return _plan_leave(change, "left")
    if change.on_delete == "remove_from_list":
        return _plan_leave(change, "left")
    if change.on_delete == "delete":
        plan = _plan_leave(change, "deleted")
        # the contact leaves the account; another number an unconfirmed add used only
        # leaves the lists (see the module docstring)
        others = [leave for leave in plan.leaves if leave.phone != plan.key]
        plan.leaves = ([Leave(plan.key, None)] if plan.key else []) + others
        plan.forget = True
        return plan
    if change.on_delete == "ignore":
        return ChangePlan(change, final=Outcome.done(change, "ignored"))
    return ChangePlan(
        change,
        final=Outcome.invalid(
            change, f"on_delete {change.on_delete!r} does not exist for Octopush"
        ),
    )
