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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from ..base import Change, Known, Outcome
from .client import MAX_LIST_NAME, MAX_TAG

__all__ = ["CONTACT_KEYS", "ChangePlan", "Join", "Leave", "normalise_phone", "plan_change"]

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
        parsed = phonenumbers.parse(raw.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _old_key(change: Change) -> str | None:
    known = change.known
    return known.member_keys.get(change.pipeline) or known.target_key


def _shared(known: Known, pipeline: str, list_name: str, phone: str) -> bool:
    """Whether another pipeline keeps this customer in ``list_name`` under ``phone``."""
    for other, names in known.memberships.items():
        if other == pipeline or list_name not in names:
            continue
        if (known.member_keys.get(other) or known.target_key) == phone:
            return True
    return False


def _leaves(change: Change, phone: str, lists: frozenset[str]) -> list[Leave]:
    return [
        Leave(phone, name)
        for name in sorted(lists)
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
    old_key = _old_key(change)
    old_lists = change.known.memberships.get(change.pipeline, frozenset())
    if old_key and old_key != phone:
        plan.leaves = _leaves(change, old_key, old_lists)
    else:
        plan.leaves = _leaves(change, phone, old_lists - {name})
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
    lists = change.known.memberships.get(change.pipeline, frozenset())
    if not lists and record is not None and record.list_name:
        lists = frozenset({record.list_name})
    plan.key = key
    if key is not None:
        plan.leaves = _leaves(change, key, lists)
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
        plan.leaves = [Leave(plan.key, None)] if plan.key else []
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
