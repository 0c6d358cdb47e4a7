"""What each target type accepts from a pipeline: the one place to change per-target rules.

The loader's cross checks and the mapper's key-field check both read :data:`RULES`; the
target config models in :mod:`syncer.config.models` use the same type names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["RULES", "TargetRules", "known_target_types"]


@dataclass(frozen=True)
class TargetRules:
    """The pipeline features one target type supports.

    ``fields`` are exact field names; ``field_patterns`` are extra accepted names given as
    ``(regex, how to show it to a user)``. ``key_fields`` lists the fields of which at least
    one must be mapped for the target to identify a record (empty: any field will do).
    ``field_requires`` says that mapping a field needs another field mapped too.
    """

    type: str
    label: str
    fields: frozenset[str]
    field_patterns: tuple[tuple[re.Pattern[str], str], ...] = ()
    key_fields: tuple[str, ...] = ()
    field_requires: dict[str, str] = field(default_factory=dict)
    # fields that must hold a mobile number (checked at map time, before any call)
    mobile_fields: tuple[str, ...] = ()
    on_delete: frozenset[str] = frozenset({"ignore"})
    groups: bool = False
    list_required: bool = False
    tag: bool = False

    def accepts_field(self, name: str) -> bool:
        """Whether a pipeline may map a field called ``name`` for this target type."""
        return name in self.fields or any(p.fullmatch(name) for p, _ in self.field_patterns)

    def describe_fields(self) -> str:
        """The accepted field names, for error messages."""
        names = sorted(self.fields) + [shown for _, shown in self.field_patterns]
        return ", ".join(names)


RULES: dict[str, TargetRules] = {
    "360nrs": TargetRules(
        type="360nrs",
        label="360NRS",
        # externalId is a read filter only: the create/update calls do not take it.
        fields=frozenset({"email", "phone", "landline", "countryIso", "name", "surname"}),
        field_patterns=((re.compile(r"customFields\.[A-Za-z0-9_-]+"), "customFields.<key>"),),
        key_fields=("email", "phone"),
        # "countryIso: required with phone/landline" (360NRS create/update parameters).
        field_requires={"phone": "countryIso", "landline": "countryIso"},
        # "phone: mobile with prefix"; landlines go in `landline` (360NRS parameters table).
        mobile_fields=("phone",),
        on_delete=frozenset({"delete", "unsubscribe", "remove_from_list", "ignore"}),
        groups=True,
    ),
    "octopush": TargetRules(
        type="octopush",
        label="Octopush",
        fields=frozenset(
            {"phone_number", "first_name", "last_name"} | {f"param{i}" for i in range(1, 6)}
        ),
        key_fields=("phone_number",),
        on_delete=frozenset({"remove_from_list", "delete", "ignore"}),
        list_required=True,
        tag=True,
    ),
    "np6": TargetRules(
        type="np6",
        label="NP6",
        fields=frozenset(),
        # NP6 write bodies are keyed by the tenant's numeric field ids.
        field_patterns=((re.compile(r"[0-9]+"), "<numeric field id, e.g. 1001>"),),
        on_delete=frozenset({"delete", "unsubscribe", "ignore"}),
    ),
}


def known_target_types() -> list[str]:
    """The target type names, sorted, for error messages."""
    return sorted(RULES)
