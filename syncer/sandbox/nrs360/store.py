"""In-memory 360NRS data: contacts, groups, blacklists, with O(1) indexes.

Contacts are indexed by case-folded email and by mobile phone (MySQL's default collation makes
the real API's email lookups case-insensitive); groups by case-folded name. Dicts keep insertion
order, and ids only grow, so iterating ``contacts`` lists them by id as the API does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

BLACKLIST_TYPES = ("sms", "mailing", "voice")
CUSTOM_FIELD_TYPES = ("string", "date", "decimal")

#: API field name -> :class:`Contact` attribute, for the scalar fields.
SCALAR_FIELDS = {
    "email": "email",
    "phone": "phone",
    "countryIso": "country_iso",
    "landline": "landline",
    "name": "name",
    "surname": "surname",
    "externalId": "external_id",
}


def format_ts(moment: datetime) -> str:
    """``2018-03-13T14:32:25+00:00``: the documented timestamp format (UTC, no fraction)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class CustomField:
    """One ``customFields`` entry."""

    key: str
    type: str
    value: Any

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "value": self.value}


@dataclass
class Contact:
    """One contact; ``groups`` is an ordered set of group ids."""

    id: int
    created_at: str
    updated_at: str
    email: str | None = None
    phone: str | None = None
    country_iso: str | None = None
    landline: str | None = None
    name: str | None = None
    surname: str | None = None
    external_id: str | None = None
    custom_fields: dict[str, CustomField] = field(default_factory=dict)
    groups: dict[int, None] = field(default_factory=dict)


@dataclass
class Group:
    """One group (``{"id", "name"}`` in the API)."""

    id: int
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}


@dataclass
class BlacklistEntry:
    """One blacklisted recipient of one type."""

    type: str
    recipient: str
    created_at: str
    is_definitive: bool = False
    sending_id: int | None = None
    campaign_name: str | None = None

    def to_json(self, *, with_sending_id: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "recipient": self.recipient,
            "isDefinitive": self.is_definitive,
        }
        if with_sending_id:
            data["sendingId"] = self.sending_id
        data["campaignName"] = self.campaign_name
        data["createdAt"] = self.created_at
        return data


def blacklist_key(kind: str, recipient: str) -> str:
    """Identity of a recipient in a blacklist: emails compare case-insensitively."""
    return recipient.casefold() if kind == "mailing" else recipient


class Store:
    """All simulator data plus the indexes kept in step with it."""

    def __init__(self) -> None:
        self.contacts: dict[int, Contact] = {}
        self.groups: dict[int, Group] = {}
        self.members: dict[int, dict[int, None]] = {}  # group id -> contact ids
        self.blacklist: dict[str, dict[str, BlacklistEntry]] = {t: {} for t in BLACKLIST_TYPES}
        self.by_email: dict[str, dict[int, None]] = {}
        self.by_phone: dict[str, dict[int, None]] = {}
        self.groups_by_name: dict[str, dict[int, None]] = {}
        self.next_contact_id = 1
        self.next_group_id = 1

    # -- contacts -------------------------------------------------------------------------
    def contact_ids_with_email(self, email: str) -> dict[int, None]:
        return self.by_email.get(email.casefold(), {})

    def contact_ids_with_phone(self, phone: str) -> dict[int, None]:
        return self.by_phone.get(phone, {})

    def add_contact(self, contact: Contact) -> Contact:
        self.next_contact_id = max(self.next_contact_id, contact.id + 1)
        self.contacts[contact.id] = contact
        self._index(contact)
        for group_id in contact.groups:
            self.members.setdefault(group_id, {})[contact.id] = None
        return contact

    def unindex(self, contact: Contact) -> None:
        """Remove the contact from the email/phone indexes (before changing those fields)."""
        if contact.email is not None:
            _discard(self.by_email, contact.email.casefold(), contact.id)
        if contact.phone is not None:
            _discard(self.by_phone, contact.phone, contact.id)

    def reindex(self, contact: Contact) -> None:
        """Add the contact back to the indexes after its fields changed."""
        self._index(contact)

    def set_groups(self, contact: Contact, group_ids: list[int]) -> None:
        """Replace the contact's memberships."""
        for group_id in contact.groups:
            _discard(self.members, group_id, contact.id)
        contact.groups = dict.fromkeys(group_ids)
        for group_id in contact.groups:
            self.members.setdefault(group_id, {})[contact.id] = None

    def delete_contact(self, contact: Contact) -> None:
        self.unindex(contact)
        self.set_groups(contact, [])
        del self.contacts[contact.id]

    def _index(self, contact: Contact) -> None:
        if contact.email is not None:
            self.by_email.setdefault(contact.email.casefold(), {})[contact.id] = None
        if contact.phone is not None:
            self.by_phone.setdefault(contact.phone, {})[contact.id] = None

    # -- groups ---------------------------------------------------------------------------
    def add_group(self, group: Group) -> Group:
        self.next_group_id = max(self.next_group_id, group.id + 1)
        self.groups[group.id] = group
        self.groups_by_name.setdefault(group.name.casefold(), {})[group.id] = None
        return group

    def group_named(self, name: str) -> Group | None:
        """The oldest group with this name (case-insensitive), if any."""
        ids = self.groups_by_name.get(name.casefold())
        return self.groups[min(ids)] if ids else None

    def rename_group(self, group: Group, name: str) -> None:
        _discard(self.groups_by_name, group.name.casefold(), group.id)
        group.name = name
        self.groups_by_name.setdefault(name.casefold(), {})[group.id] = None

    def delete_group(self, group: Group) -> None:
        """Delete the group; its contacts stay, without that membership."""
        for contact_id in self.members.pop(group.id, {}):
            self.contacts[contact_id].groups.pop(group.id, None)
        _discard(self.groups_by_name, group.name.casefold(), group.id)
        del self.groups[group.id]

    # -- serialisation --------------------------------------------------------------------
    def contact_json(
        self, contact: Contact, *, include: frozenset[str] = frozenset(), external_id: bool = False
    ) -> dict[str, Any]:
        """The API's contact object; ``include`` may hold ``customFields`` and ``groups``."""
        data: dict[str, Any] = {
            "id": contact.id,
            "email": contact.email,
            "phone": contact.phone,
            "countryIso": contact.country_iso,
            "landline": contact.landline,
            "name": contact.name,
            "surname": contact.surname,
        }
        if external_id:
            data["externalId"] = contact.external_id
        data["createdAt"] = contact.created_at
        data["updatedAt"] = contact.updated_at
        if "customFields" in include:
            data["customFields"] = {"data": [f.to_json() for f in contact.custom_fields.values()]}
        if "groups" in include:
            data["groups"] = {"data": [self.groups[g].to_json() for g in contact.groups]}
        return data

    def dump(self) -> dict[str, Any]:
        """Everything, flat: contacts with externalId, groups and custom fields inlined."""
        contacts = []
        for contact in self.contacts.values():
            data = self.contact_json(contact, external_id=True)
            data["customFields"] = [f.to_json() for f in contact.custom_fields.values()]
            data["groups"] = [self.groups[g].to_json() for g in contact.groups]
            contacts.append(data)
        return {
            "contacts": contacts,
            "groups": [g.to_json() for g in self.groups.values()],
            "blacklist": {
                kind: [e.to_json() for e in entries.values()]
                for kind, entries in self.blacklist.items()
            },
        }


def _discard(index: dict[Any, dict[int, None]], key: Any, item: int) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.pop(item, None)
        if not bucket:
            del index[key]
