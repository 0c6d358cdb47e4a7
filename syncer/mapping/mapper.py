"""A pipeline compiled for mapping: :func:`compile_pipeline` gives a :class:`PipelineMapper`.

The engine calls only this API::

    mapper = compile_pipeline(pipeline_config, target_type="360nrs")
    if mapper.accepts("customer", doc):
        record = mapper.map(doc)          # MappedRecord, or raises InvalidRecord
        digest = payload_hash(record)

Field values: a plain dotted path gives the raw source value (numbers stay numbers); a
template gives the rendered string. ``None`` and ``""`` values are left out ("skip nulls").
A field marked ``optional`` whose value is invalid (a bad phone, a bad date, a landline where
the target takes only mobiles) is left out too: the record goes without it, the field's name is
in ``MappedRecord.omitted`` and ``syncer_optional_fields_omitted_total`` counts it. Any other
invalid value rejects the whole record (:class:`InvalidRecord`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template

from syncer.config.models import FieldSpec, PipelineConfig, SyncerConfig, field_source
from syncer.config.target_rules import RULES, TargetRules
from syncer.mapping.conditions import compile_when
from syncer.mapping.errors import InvalidRecord
from syncer.mapping.filters import is_mobile
from syncer.mapping.paths import compile_path
from syncer.mapping.templates import compile_template, is_template, render_name
from syncer.observability.metrics import OPTIONAL_OMITTED

__all__ = ["MappedRecord", "PipelineMapper", "compile_pipeline", "compile_pipelines"]

_Render = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class MappedRecord:
    """What one document becomes for one pipeline, before any target-specific shaping.

    ``fields`` keys are exactly the config's field names (``customFields.loyalty_tier``).
    ``groups`` are rendered, stripped, de-duplicated 360NRS group names in config order.
    """

    fields: dict[str, Any]
    groups: tuple[str, ...] = ()
    list_name: str | None = None
    tag: str | None = None
    omitted: tuple[str, ...] = ()  # optional fields left out as invalid (not in the hash)


def _renderer(template: Template) -> _Render:
    return lambda doc: template.render(doc)


def _field_getter(spec: str) -> _Render:
    if is_template(spec):
        return _renderer(compile_template(spec))
    return compile_path(spec)


def _name_getter(spec: str) -> _Render:
    """A group or list name: the rendered text, or None (see :func:`render_name`)."""
    if is_template(spec):
        template = compile_template(spec)
        return lambda doc: render_name(template, doc)
    name = spec.strip() or None
    return lambda doc: name


def _run(what: str, render: _Render, doc: Mapping[str, Any]) -> Any:
    try:
        return render(doc)
    except InvalidRecord as exc:
        raise InvalidRecord(f"{what}: {exc.reason}") from None
    except Exception as exc:  # any template failure is the record's problem, not ours
        detail = str(exc) or type(exc).__name__
        raise InvalidRecord(f"{what}: {detail}") from None


@dataclass(frozen=True)
class PipelineMapper:
    """A compiled pipeline: decides which documents it takes and maps them.

    Build it with :func:`compile_pipeline`. Thread-safe and reusable for any number of
    documents; holds no per-document state.
    """

    name: str
    target: str
    entity: str
    event_types: frozenset[str] | None
    _when: Callable[[Mapping[str, Any]], bool] = field(repr=False)
    _fields: tuple[tuple[str, _Render], ...] = field(repr=False)
    _optional: frozenset[str] = field(repr=False)
    _groups: tuple[tuple[str, _Render], ...] = field(repr=False)
    _list: _Render | None = field(repr=False)
    _tag: str | None = field(repr=False)
    _rules: TargetRules | None = field(repr=False)

    @property
    def group_sources(self) -> tuple[str, ...]:
        """The group names as the config writes them (templates unrendered)."""
        return tuple(source for source, _ in self._groups)

    def accepts(self, entity_type: str, doc: Mapping[str, Any]) -> bool:
        """Whether this pipeline takes ``doc`` of kind ``entity_type`` ("customer"/"event").

        For events, ``doc`` is the event with its customer under ``customer`` (or None);
        its ``type`` must be in ``event_types`` when those are set.
        """
        if entity_type != self.entity:
            return False
        if self.event_types is not None:
            event_type = doc.get("type")
            if not isinstance(event_type, str) or event_type not in self.event_types:
                return False
        return self._when(doc)

    def map(self, doc: Mapping[str, Any]) -> MappedRecord:
        """Map ``doc``; raises :class:`InvalidRecord` when it cannot be sent as it is."""
        values: dict[str, Any] = {}
        omitted: list[str] = []
        for name, render in self._fields:
            try:
                value = _run(f"field '{name}'", render, doc)
            except InvalidRecord:
                if name not in self._optional:
                    raise
                omitted.append(name)
                continue
            if value is None or (isinstance(value, str) and value == ""):
                continue
            values[name] = value
        groups: dict[str, None] = {}
        for source, render in self._groups:
            # no name (blank, or every value of the template missing): no group
            group = _run(f"group '{source}'", render, doc)
            if group is not None:
                groups[group] = None
        if self._rules is not None:  # a record without its key is the first thing to say
            _check_keys(self._rules, values, self._optional, omitted)
        list_name = None
        if self._list is not None:
            list_name = _run("list", self._list, doc)
            if list_name is None:
                raise InvalidRecord(
                    "list: no list name (the template rendered blank, or every value it "
                    "prints is missing)"
                )
        for name in omitted:
            OPTIONAL_OMITTED.labels(self.name, name).inc()
        return MappedRecord(values, tuple(groups), list_name, self._tag, tuple(omitted))


def _check_keys(
    rules: TargetRules, values: dict[str, Any], optional: frozenset[str], omitted: list[str]
) -> None:
    """The target's own checks; an optional field that fails them is left out (``omitted``)."""
    for name in rules.mobile_fields:
        if name in values and not is_mobile(str(values[name])) and name in optional:
            del values[name]
            omitted.append(name)
    for name, needed in rules.field_requires.items():
        if name in values and needed not in values and name in optional and needed in omitted:
            del values[name]  # it goes with the optional value it needs
            omitted.append(name)
    if rules.key_fields and not any(key in values for key in rules.key_fields):
        keys = ", ".join(rules.key_fields)
        raise InvalidRecord(f"no key field: {rules.label} needs a value in one of: {keys}")
    for name, needed in rules.field_requires.items():
        if name in values and needed not in values:
            raise InvalidRecord(f"field '{name}' needs '{needed}', which is empty")
    for name in rules.mobile_fields:
        if name in values and not is_mobile(str(values[name])):
            raise InvalidRecord(
                f"field '{name}': {values[name]} is not a mobile number "
                f"({rules.label} takes only mobiles here)"
            )


def compile_pipeline(p: PipelineConfig, target_type: str | None = None) -> PipelineMapper:
    """Compile ``p`` once. With ``target_type``, records also get that target's key checks."""
    return PipelineMapper(
        name=p.name,
        target=p.target,
        entity=p.entity,
        event_types=frozenset(p.event_types) if p.event_types else None,
        _when=compile_when(p.when, p.entity),
        _fields=tuple((name, _field_getter(field_source(spec))) for name, spec in p.fields.items()),
        _optional=frozenset(
            name for name, spec in p.fields.items() if isinstance(spec, FieldSpec) and spec.optional
        ),
        _groups=tuple((spec, _name_getter(spec)) for spec in p.groups),
        _list=_name_getter(p.list_) if p.list_ is not None else None,
        _tag=p.tag,
        _rules=RULES.get(target_type) if target_type else None,
    )


def compile_pipelines(cfg: SyncerConfig) -> dict[str, PipelineMapper]:
    """Every pipeline of ``cfg`` by name, with its target's key checks, in config order."""
    return {
        p.name: compile_pipeline(p, cfg.targets[p.target].type if p.target in cfg.targets else None)
        for p in cfg.pipelines
    }
