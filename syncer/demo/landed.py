"""What landed in each target, read from the simulators' ``GET /_sandbox/state``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Landed", "read_landed"]

SAMPLES = 3
# Samples are the first records by content, without the ids the targets assign: targets see
# records in delivery order, which concurrent delivery does not fix, and ``--seed`` promises
# the same results every time.
HELD = {
    "nrs360": "contacts",
    "octopush": "contacts",  # a number leaving its list stays in the account
    "np6": "targets",
}


@dataclass
class Landed:
    """One simulator's holdings: headline counts, members per group/list, sample records."""

    simulator: str
    counts: dict[str, int]
    held: int  # records syncer keeps there (contacts, targets): see ``HELD``
    members: dict[str, int] = field(default_factory=dict)  # group/list name -> members
    samples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "simulator": self.simulator,
            "counts": self.counts,
            "held": self.held,
            "members": self.members,
            "samples": self.samples,
        }


def _nrs360(state: dict[str, Any]) -> Landed:
    contacts: list[dict[str, Any]] = state.get("contacts", [])
    members: Counter[str] = Counter(g["name"] for c in contacts for g in c.get("groups") or [])
    samples = [
        {
            "email": c.get("email"),
            "phone": c.get("phone"),
            "name": c.get("name"),
            "surname": c.get("surname"),
            "groups": [g["name"] for g in c.get("groups") or []],
            "customFields": {f["key"]: f["value"] for f in c.get("customFields") or []},
        }
        for c in sorted(contacts, key=lambda c: (str(c.get("email")), str(c.get("phone"))))[
            :SAMPLES
        ]
    ]
    counts = {"contacts": len(contacts), "groups": len(state.get("groups", []))}
    return Landed("nrs360", counts, len(contacts), dict(sorted(members.items())), samples)


def _octopush(state: dict[str, Any]) -> Landed:
    contacts: dict[str, dict[str, Any]] = state.get("contacts", {})
    lists: dict[str, list[str]] = state.get("lists", {})
    samples = [
        {"phone_number": phone, **{k: v for k, v in c.items() if v not in (None, [], "")}}
        for phone, c in sorted(contacts.items())[:SAMPLES]
    ]
    counts = {"contacts": len(contacts), "lists": len(lists)}
    members = {n: len(m) for n, m in sorted(lists.items())}
    return Landed("octopush", counts, len(contacts), members, samples)


def _np6(state: dict[str, Any]) -> Landed:
    targets: list[dict[str, Any]] = state.get("targets", [])
    imports: list[dict[str, Any]] = state.get("imports", [])
    executions = [e for i in imports for e in i.get("executions", [])]
    counts = {
        "targets": len(targets),
        "imports": len(imports),
        "import executions": len(executions),
        "rows imported": sum(int(e.get("rows") or 0) for e in executions),
    }
    rows = sorted((t.get("fields", {}) for t in targets), key=lambda f: sorted(f.items()))
    samples = [dict(f) for f in rows[:SAMPLES]]
    return Landed("np6", counts, len(targets), {}, samples)


READERS: dict[str, Callable[[dict[str, Any]], Landed]] = {
    "nrs360": _nrs360,
    "octopush": _octopush,
    "np6": _np6,
}


def read_landed(urls: dict[str, str], timeout: float = 30.0) -> dict[str, Landed]:
    """``{simulator: Landed}`` for every target simulator in ``urls`` (name -> root URL)."""
    out: dict[str, Landed] = {}
    with httpx.Client(timeout=timeout) as client:
        for name, reader in READERS.items():
            if name in urls:
                resp = client.get(f"{urls[name]}/_sandbox/state")
                resp.raise_for_status()
                out[name] = reader(resp.json())
    return out
