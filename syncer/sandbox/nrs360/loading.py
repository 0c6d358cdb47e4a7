"""Seeding the store from the admin API (``POST /_sandbox/load``).

Accepts the :meth:`Store.dump` format, so ``load(dump_state())`` into an empty simulator
round-trips. Loading adds to what is stored (an ``id`` already used replaces that record) and
does not validate like the API does: it is how tests set up states the API would refuse
(duplicates, ``externalId``, blacklist entries with a ``sendingId``...).
"""

from __future__ import annotations

from typing import Any

from .store import (
    BLACKLIST_TYPES,
    SCALAR_FIELDS,
    BlacklistEntry,
    Contact,
    CustomField,
    Group,
    Store,
    blacklist_key,
)


def load_into(store: Store, data: dict[str, Any], now: str) -> dict[str, int]:
    """Add the data set to ``store``; return how many records of each kind were loaded."""
    unknown = set(data) - {"contacts", "groups", "blacklist"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; known: blacklist, contacts, groups")
    for raw in data.get("groups", []):
        group_id = int(raw.get("id") or store.next_group_id)
        if group_id in store.groups:  # same id again: a rename, memberships kept
            store.rename_group(store.groups[group_id], str(raw["name"]))
        else:
            store.add_group(Group(group_id, str(raw["name"])))
    store.groups = dict(sorted(store.groups.items()))
    for raw in data.get("contacts", []):
        _load_contact(store, raw, now)
    store.contacts = dict(sorted(store.contacts.items()))
    blacklisted = 0
    for kind, entries in (data.get("blacklist") or {}).items():
        if kind not in BLACKLIST_TYPES:
            raise ValueError(f"unknown blacklist type {kind!r}; known: {BLACKLIST_TYPES}")
        for raw in entries:
            entry = BlacklistEntry(
                kind,
                str(raw["recipient"]),
                raw.get("createdAt") or now,
                bool(raw.get("isDefinitive", False)),
                raw.get("sendingId"),
                raw.get("campaignName"),
            )
            store.blacklist[kind][blacklist_key(kind, entry.recipient)] = entry
            blacklisted += 1
    return {
        "contacts": len(data.get("contacts", [])),
        "groups": len(data.get("groups", [])),
        "blacklist": blacklisted,
    }


def _load_contact(store: Store, raw: dict[str, Any], now: str) -> None:
    contact_id = int(raw.get("id") or store.next_contact_id)
    if contact_id in store.contacts:
        store.delete_contact(store.contacts[contact_id])
    contact = Contact(
        contact_id, created_at=raw.get("createdAt") or now, updated_at=raw.get("updatedAt") or now
    )
    for api_name, attr in SCALAR_FIELDS.items():
        setattr(contact, attr, raw.get(api_name))
    fields = raw.get("customFields") or []
    if isinstance(fields, dict):  # the API's {"data": [...]} form
        fields = fields.get("data", [])
    for item in fields:
        field = CustomField(str(item["key"]), item.get("type") or "string", item.get("value"))
        contact.custom_fields[field.key] = field
    group_refs = raw.get("groups") or raw.get("groupsIds") or []
    if isinstance(group_refs, dict):
        group_refs = group_refs.get("data", [])
    group_ids = [int(ref["id"] if isinstance(ref, dict) else ref) for ref in group_refs]
    for name in raw.get("groupsNames") or []:
        group = store.group_named(name) or store.add_group(Group(store.next_group_id, name))
        group_ids.append(group.id)
    missing = [g for g in group_ids if g not in store.groups]
    if missing:
        raise ValueError(f"contact {contact_id}: unknown group ids {missing}")
    contact.groups = dict.fromkeys(group_ids)
    store.add_contact(contact)
