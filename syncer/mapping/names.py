"""Which group or list names a pipeline's name templates can render (pure).

A target that merges memberships with what is on the account (360NRS keeps the groups syncer
does not manage on a contact it did not create) must tell syncer's groups from everyone
else's, also for a group a write put there whose outcome was never recorded (an answer lost, a
crash) and that the customer has left since: ``Country IT`` stays syncer's after the customer
moved to Belgium. The state cannot say that; the config can: a name is syncer's when one of
the account's pipelines can render it.

``"Newsletter"`` matches itself; ``"Country {{ base.address.country | upper }}"`` matches
``Country`` followed by anything. Names compare case-insensitively, as 360NRS does. A template
with control blocks (``{% %}``), or one that prints only values (``"{{ tag }}"``), gives no
pattern: any name could come from it, so only the state says which of its names are syncer's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_PART = re.compile(r"(\{\{.*?\}\}|\{#.*?#\})", re.DOTALL)


def name_pattern(source: str) -> re.Pattern[str] | None:
    """The names ``source`` can render, as a case-insensitive pattern; None when it cannot be
    told (see the module docstring)."""
    if "{%" in source:
        return None
    regex, literal = [], False
    for part in _PART.split(source.strip()):
        if part.startswith("{{"):
            regex.append(".*")
        elif part.startswith("{#"):
            continue
        elif part:
            literal = literal or bool(part.strip())
            # a rendered name is stripped, and a value may print as nothing: spaces are loose
            regex.append(r"\s*".join(re.escape(w) for w in re.split(r"\s+", part)))
    if not literal:
        return None
    return re.compile("".join(regex), re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class NamePatterns:
    """The names some pipeline of one target can render (empty: none is known)."""

    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, sources: Iterable[str]) -> NamePatterns:
        found = (name_pattern(s) for s in dict.fromkeys(sources))
        return cls(tuple(p for p in found if p is not None))

    def match(self, name: str) -> bool:
        text = name.strip()
        return any(p.fullmatch(text) for p in self.patterns)
