"""The standard target suite (tests/targets/contract.py) run against the Octopush simulator.

Adapted: ``bad_values_go_dead``. The only values the Octopush simulator rejects for one record
(an invalid phone number, a list name over 30 or a tag over 20 characters) are caught by the
target before sending, with the same rules, so the record ends ``invalid`` (dead-lettered
without a call) rather than ``dead`` after a 400. The 400 path (a whole ``contact/create``
rejected and split in halves) is tested in ``test_octopush_target.py`` with a simulator that
rejects chosen numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from contract import Harness, Seen, TargetContract

from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp

LOGIN, KEY = "sandbox@example.com", "sandbox-octopush-key"


def phone(n: int) -> str:
    return f"+336{n:08d}"


class TestOctopushContract(TargetContract):
    on_delete_modes: ClassVar[tuple[str, ...]] = ("delete",)
    bad_reason = "not a valid E.164 phone"

    @pytest.fixture(scope="class")
    @classmethod
    def served(cls) -> Iterator[str]:
        with ServedApp(OctopushSimulator(api_login=LOGIN, api_key=KEY).asgi()) as app:
            yield app.url

    def target_settings(self, sim_url: str) -> dict[str, Any]:
        return {
            "type": "octopush",
            "base_url": sim_url + "/v1/public",
            "api_login": LOGIN,
            "api_key": KEY,
            # one contact per call: the suite's 429 test needs more calls than the simulator's
            # one-second burst (batching itself is tested in test_octopush_target.py)
            "batch_size": 1,
        }

    def pipeline_settings(self, name: str) -> dict[str, Any]:
        if name == "a":
            return {
                "fields": {
                    "phone_number": "base.contacts.mobilePhone",
                    "first_name": "base.firstName",
                },
                "list": "List {{ base.address.country }}",
                "tag": "syncer",
            }
        return {
            "fields": {"phone_number": "base.contacts.mobilePhone", "last_name": "base.lastName"},
            "list": "VIP",
        }

    def customer_doc(self, n: int, variant: int = 0) -> dict[str, Any]:
        return {
            "base": {
                "firstName": f"Ana{variant}",
                "lastName": "Diaz",
                "contacts": {"email": f"c{n}@example.com", "mobilePhone": phone(n)},
                "address": {"country": "FR"},
            }
        }

    def bad_customer_doc(self, n: int) -> dict[str, Any]:
        doc = self.customer_doc(n)
        doc["base"]["contacts"]["mobilePhone"] = "+3312"
        return doc

    def key_of(self, n: int) -> str:
        return phone(n)

    def seen(self, state: dict[str, Any]) -> list[Seen]:
        blocked = set(state["blacklist"])
        return [
            Seen(
                number,
                {"first_name": c["first_name"], "last_name": c["last_name"]},
                frozenset(c["lists"]),
                number in blocked,
            )
            for number, c in state["contacts"].items()
        ]

    def expected_fields(self, n: int, variant: int) -> dict[str, Any]:
        return {"first_name": f"Ana{variant}"}

    def existing_contact(self, n: int, group: str) -> dict[str, Any]:
        return {"lists": {group: [phone(n)]}}

    def expected_memberships(self, n: int, pipelines: set[str]) -> frozenset[str]:
        names = set()
        if "a" in pipelines:
            names.add("List FR")
        if "b" in pipelines:
            names.add("VIP")
        return frozenset(names)

    def test_bad_values_go_dead(  # adapted: see the module docstring
        self, harness: Harness, sim_state: Callable[[], dict[str, Any]]
    ) -> None:
        harness.put("c1", self.bad_customer_doc(1), {"a"})
        self.put(harness, 2, {"a"})
        stats = harness.run()
        assert (stats.invalid, stats.dead, stats.created) == (1, 0, 1), stats
        [dead] = harness.dead()
        assert dead.entity_id == "c1" and self.bad_reason in (dead.last_error or ""), dead
        self.check(sim_state(), 2, 0, {"a"})
