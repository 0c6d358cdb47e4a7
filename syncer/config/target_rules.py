"""What each target type accepts from a pipeline, from the target registry.

The loader's cross checks and the mapper's key-field check both read :data:`RULES`; each
type's rules are declared in its :class:`~syncer.targets.spec.TargetSpec`
(``syncer/targets/<name>/spec.py`` for the built-in ones).
"""

from __future__ import annotations

from syncer.targets.registry import target_specs
from syncer.targets.spec import TargetRules

__all__ = ["RULES", "TargetRules", "known_target_types"]

#: the rules of every registered target type (each lives in its spec, ``syncer/targets/<name>/``)
RULES: dict[str, TargetRules] = {name: spec.rules for name, spec in target_specs().items()}


def known_target_types() -> list[str]:
    """The target type names, sorted, for error messages."""
    return sorted(RULES)
