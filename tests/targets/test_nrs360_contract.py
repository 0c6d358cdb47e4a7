"""The standard target suite (tests/targets/contract.py) run against the 360NRS simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from contract import Seen, TargetContract

from syncer.sandbox.nrs360 import Nrs360Behaviour, Nrs360Simulator
from syncer.sandbox.serve import ServedApp

USER, PASSWORD = "sandbox-user", "sandbox-api-password"


def phone(n: int) -> str:
    return f"3461{n:07d}"  # a valid Spanish mobile, international digits as 360NRS wants


def nrs_seen(state: dict[str, Any]) -> list[Seen]:
    """360NRS simulator state -> :class:`Seen` (key: email)."""
    blocked = {e["recipient"].casefold() for e in state["blacklist"]["mailing"]}
    found = []
    for c in state["contacts"]:
        fields = {k: c.get(k) for k in ("name", "surname", "phone", "countryIso")}
        for f in c["customFields"]:
            fields[f"custom.{f['key']}"] = (f["type"], f["value"])
        found.append(
            Seen(
                c["email"],
                fields,
                frozenset(g["name"] for g in c["groups"]),
                c["email"].casefold() in blocked,
            )
        )
    for email in blocked - {c["email"].casefold() for c in state["contacts"]}:
        found.append(Seen(email, {}, frozenset(), True))
    return found


class TestNrs360Contract(TargetContract):
    on_delete_modes: ClassVar[tuple[str, ...]] = ("delete", "unsubscribe")
    bad_reason = "The email field must be a valid email address."

    @pytest.fixture(scope="class")
    @classmethod
    def served(cls) -> Iterator[str]:
        # Duplicates allowed: a client that POSTs twice would create two contacts (strict test).
        sim = Nrs360Simulator(
            username=USER, api_password=PASSWORD, behaviour=Nrs360Behaviour(duplicates="allow")
        )
        with ServedApp(sim.asgi()) as app:
            yield app.url

    def target_settings(self, sim_url: str) -> dict[str, Any]:
        return {
            "type": "360nrs",
            "base_url": sim_url + "/api/rest",
            "username": USER,
            "api_password": PASSWORD,
        }

    def pipeline_settings(self, name: str) -> dict[str, Any]:
        if name == "a":
            return {
                "fields": {
                    "email": "base.contacts.email",
                    "phone": "base.contacts.mobilePhone",
                    "countryIso": "base.address.country",
                    "name": "base.firstName",
                    "customFields.tier": "extended.tier",
                    "customFields.points": "extended.points",
                    "customFields.since": "extended.since",
                },
                "groups": ["Newsletter", "Country {{ base.address.country }}"],
            }
        return {
            "fields": {"email": "base.contacts.email", "surname": "base.lastName"},
            "groups": ["VIP"],
        }

    def customer_doc(self, n: int, variant: int = 0) -> dict[str, Any]:
        return {
            "base": {
                "firstName": f"Ana{variant}",
                "lastName": "Diaz",
                "contacts": {"email": self.key_of(n), "mobilePhone": phone(n)},
                "address": {"country": "ES"},
            },
            "extended": {
                "tier": ["gold", "silver"][variant % 2],
                "points": 10 + variant,
                "since": "2024-05-01",
            },
        }

    def bad_customer_doc(self, n: int) -> dict[str, Any]:
        doc = self.customer_doc(n)
        doc["base"]["contacts"]["email"] = "no-at-sign.example.com"  # mapping passes it
        return doc

    def key_of(self, n: int) -> str:
        return f"c{n}@example.com"

    def seen(self, state: dict[str, Any]) -> list[Seen]:
        return nrs_seen(state)

    def expected_fields(self, n: int, variant: int) -> dict[str, Any]:
        return {
            "name": f"Ana{variant}",
            "phone": phone(n),
            "countryIso": "ES",
            "custom.tier": ("string", ["gold", "silver"][variant % 2]),
            "custom.points": ("decimal", 10 + variant),
            "custom.since": ("date", "2024-05-01"),
        }

    def existing_contact(self, n: int, group: str) -> dict[str, Any]:
        return {
            "groups": [{"id": 900, "name": group}],
            "contacts": [{"email": self.key_of(n), "name": "Old", "groupsIds": [900]}],
        }

    def expected_memberships(self, n: int, pipelines: set[str]) -> frozenset[str]:
        names: set[str] = set()
        if "a" in pipelines:
            names |= {"Newsletter", "Country ES"}
        if "b" in pipelines:
            names.add("VIP")
        return frozenset(names)
