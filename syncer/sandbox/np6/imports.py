"""NP6 imports: import formats ("bindings"), import definitions, executions and CSV processing.

Processing an execution is all-or-nothing: the file is parsed and every data row validated
first; if any row is bad the execution ends in state 2 and **nothing** is applied. Otherwise
the rows are de-duplicated by unicity value and applied to the :class:`TargetStore`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .fields import IGNORED_COLUMN, Schema
from .targets import RedlistEvent, TargetStore, now_iso

FEATURE_TYPES = ("segmentation", "duplicate", "report", "database", "redList", "normalization")
DUPLICATE_RULES = ("ignore", "first", "last")

PROCESSING, COMPLETED, ERROR = 0, 1, 2


class InvalidDefinition(ValueError):
    """A format / definition / execution body the API would reject with 400."""


@dataclass
class ImportFormat:
    """An import format (``/importFormats``): separator, first data line, column bindings."""

    id: int
    name: str
    separator: int
    start_at: int
    binds: list[tuple[int, int]]  # (columnIndex, fieldId)
    saved: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": {"guid": self.id},
            "name": self.name,
            "separator": self.separator,
            "startAt": self.start_at,
            "binds": [{"columnIndex": c, "fieldId": f} for c, f in self.binds],
            "savedImportFormat": self.saved,
        }

    @classmethod
    def from_json(cls, format_id: int, body: dict[str, Any], schema: Schema) -> ImportFormat:
        name, sep, start = body.get("name"), body.get("separator", 59), body.get("startAt", 1)
        if not isinstance(name, str) or not name:
            raise InvalidDefinition("name is required")
        if not _is_int(sep) or not 0 < sep < 128 or chr(sep) in '"\r\n':
            raise InvalidDefinition("separator must be the ASCII code of one character")
        if not _is_int(start) or start < 0:
            raise InvalidDefinition("startAt must be an integer >= 0")
        binds_raw = body.get("binds")
        if not isinstance(binds_raw, list) or not binds_raw:
            raise InvalidDefinition("binds must be a non-empty array")
        binds: list[tuple[int, int]] = []
        for bind in binds_raw:
            col = bind.get("columnIndex") if isinstance(bind, dict) else None
            fid = bind.get("fieldId") if isinstance(bind, dict) else None
            if not isinstance(col, int) or not isinstance(fid, int) or col < 0:
                raise InvalidDefinition("each bind needs an integer columnIndex >= 0 and fieldId")
            if isinstance(col, bool) or isinstance(fid, bool):
                raise InvalidDefinition("columnIndex and fieldId must be integers")
            if fid != IGNORED_COLUMN and fid not in schema.by_id:
                raise InvalidDefinition(f"unknown fieldId {fid}")
            binds.append((col, fid))
        columns = [c for c, _ in binds]
        if len(set(columns)) != len(columns):
            raise InvalidDefinition("a columnIndex is bound twice")
        bound = [f for _, f in binds if f != IGNORED_COLUMN]
        if len(set(bound)) != len(bound):
            raise InvalidDefinition("a fieldId is bound twice")
        saved = bool(body.get("savedImportFormat", True))
        return cls(format_id, name, sep, start, binds, saved)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_features(features: Any) -> list[dict[str, Any]]:
    """Check an import's ``features`` array (types and the few options we act on)."""
    if features is None:
        return []
    if not isinstance(features, list):
        raise InvalidDefinition("features must be an array")
    seen: set[str] = set()
    for feature in features:
        kind = feature.get("type") if isinstance(feature, dict) else None
        if kind not in FEATURE_TYPES:
            raise InvalidDefinition(f"unknown feature type {kind!r}")
        if kind in seen:
            raise InvalidDefinition(f"feature {kind!r} given twice")
        seen.add(kind)
        if kind == "duplicate":
            rules = feature.get("rules")
            chosen = [r for r in DUPLICATE_RULES if isinstance(rules, dict) and rules.get(r)]
            if len(chosen) != 1:
                raise InvalidDefinition("duplicate rules need exactly one of ignore/first/last")
        if kind == "database":
            for key in ("updateExisting", "crushData"):
                if not isinstance(feature.get(key, False), bool):
                    raise InvalidDefinition(f"database.{key} must be a boolean")
    return list(features)


def merge_features(base: list[dict[str, Any]], override: list[dict[str, Any]]) -> list[Any]:
    """The definition's features with the execution's ones replacing those of the same type."""
    types = {f["type"] for f in override}
    return [f for f in base if f["type"] not in types] + override


@dataclass
class Options:
    """What the features of one execution mean for processing."""

    duplicate: str = "last"
    update_existing: bool = True
    crush_data: bool = False
    segment_id: int | None = None
    empty_segment: bool = False
    redlist_channels: tuple[str, ...] = ()

    @classmethod
    def from_features(cls, features: list[dict[str, Any]], defaults: Options) -> Options:
        opts = dataclasses.replace(defaults)
        for feature in features:
            kind = feature["type"]
            if kind == "duplicate":
                opts.duplicate = next(r for r in DUPLICATE_RULES if feature["rules"].get(r))
            elif kind == "database":
                opts.update_existing = feature.get("updateExisting", opts.update_existing)
                opts.crush_data = feature.get("crushData", opts.crush_data)
            elif kind == "segmentation" and _is_int(feature.get("segmentId")):
                opts.segment_id = feature["segmentId"]
                opts.empty_segment = bool(feature.get("emptyExisitingSegment", False))
            elif kind == "redList":
                dest = feature.get("destination") or {}
                opts.redlist_channels = tuple(c for c in ("mail", "sms") if dest.get(c))
        return opts


@dataclass
class Execution:
    """One ``POST /imports/{id}/executions``; processed once ``processing_seconds`` passed."""

    number: int
    started: float  # time.monotonic()
    start_date: str
    content: dict[str, Any]
    source: dict[str, Any]
    data: bytes
    fmt: ImportFormat
    options: Options
    state: int = PROCESSING
    end_date: str | None = None
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    duplicates_dropped: int = 0
    bad_lines: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The documented execution object, plus an undocumented ``sandboxDetails``."""
        body: dict[str, Any] = {
            "startDate": self.start_date,
            "state": self.state,
            "content": self.content,
            "source": self.source,
        }
        if self.state != PROCESSING:
            body["endDate"] = self.end_date
            body["sandboxDetails"] = self.details()
        return body

    def details(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "duplicatesDropped": self.duplicates_dropped,
            "badLines": self.bad_lines,
            "errors": self.errors,
        }

    def summary(self) -> dict[str, Any]:
        """The admin view: state, timing and row counts."""
        return {
            "number": self.number,
            "startDate": self.start_date,
            "endDate": self.end_date,
            "state": self.state,
            "binding": self.fmt.id,
            **self.details(),
        }


@dataclass
class ImportDefinition:
    """An import definition (``/imports``) with its uploaded source and its executions."""

    id: int
    name: str
    creation_date: str
    binding: int | None
    features: list[dict[str, Any]]
    source: dict[str, Any]
    data: bytes | None = None
    executions: list[Execution] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "creationDate": self.creation_date,
            "binding": self.binding,
            "features": self.features,
            "source": self.source,
        }

    @property
    def running(self) -> bool:
        return bool(self.executions) and self.executions[-1].state == PROCESSING


def process(execution: Execution, store: TargetStore, max_bad_lines: int) -> None:
    """Validate the whole file, then apply it (state 1) or apply nothing (state 2)."""
    execution.end_date = now_iso()
    rows = _parse(execution, store.schema, max_bad_lines)
    if rows is None:
        execution.state = ERROR
        return
    _apply(execution, rows, store)
    execution.state = COMPLETED


def _parse(
    execution: Execution, schema: Schema, max_bad_lines: int
) -> list[tuple[str, dict[str, Any]]] | None:
    fmt, errors = execution.fmt, execution.errors
    bound = [(c, schema.by_id[f]) for c, f in fmt.binds if f != IGNORED_COLUMN]
    if schema.unicity.id not in {f.id for _, f in bound}:
        errors.append(f"the unicity field {schema.unicity.id} is not bound")
        return None
    try:
        text = execution.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors.append("the file is not UTF-8")
        return None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=chr(fmt.separator), strict=True)
    width = max(c for c, _ in fmt.binds) + 1
    expected: int | None = None
    rows: list[tuple[str, dict[str, Any]]] = []
    unicity = str(schema.unicity.id)
    columns = [(c, str(f.id), f.parse, f.is_mandatory) for c, f in bound]
    bad = execution.bad_lines
    record_no = -1
    try:
        for record in reader:
            if not record:
                continue  # blank line
            record_no += 1
            if expected is None:
                expected = len(record)
                if expected < width:
                    errors.append(f"{expected} columns, the format binds column {width - 1}")
                    return None
            if record_no < fmt.start_at:
                continue
            execution.rows += 1
            if len(record) != expected:
                _bad(bad, errors, reader.line_num, f"{len(record)} columns, expected {expected}")
                continue
            values: dict[str, Any] = {}
            for col, fid, parse, mandatory in columns:
                cell = record[col].strip()
                if not cell:
                    if mandatory:
                        _bad(bad, errors, reader.line_num, f"field {fid} is mandatory")
                        break
                    values[fid] = None
                    continue
                try:
                    values[fid] = parse(cell)
                except ValueError as exc:
                    _bad(bad, errors, reader.line_num, f"field {fid}: {exc}")
                    break
            else:
                rows.append((str(values[unicity]), values))
    except csv.Error as exc:
        _bad(bad, errors, reader.line_num, f"CSV syntax: {exc}")
    del bad[max_bad_lines:]
    del errors[max_bad_lines:]
    if bad:
        return None
    if not execution.rows:
        errors.append("the file has no data rows")
        return None
    return rows


def _bad(bad: list[int], errors: list[str], line: int, message: str) -> None:
    bad.append(line)
    errors.append(f"line {line}: {message}")


def _apply(
    execution: Execution, rows: list[tuple[str, dict[str, Any]]], store: TargetStore
) -> None:
    opts = execution.options
    chosen: dict[str, dict[str, Any]] = {}
    if opts.duplicate == "first":
        for key, values in rows:
            chosen.setdefault(key, values)
    else:
        for key, values in rows:
            chosen[key] = values
        if opts.duplicate == "ignore":
            counts = Counter(key for key, _ in rows)
            chosen = {k: v for k, v in chosen.items() if counts[k] == 1}
    execution.duplicates_dropped = len(rows) - len(chosen)
    now = now_iso()
    touched: list[str] = []
    for key, values in chosen.items():
        target = store.find(key)
        if target is None:
            target = store.create(values, now)
            execution.created += 1
        elif opts.update_existing:
            store.update(target, values, now, opts.crush_data)
            execution.updated += 1
        else:
            execution.skipped += 1
        touched.append(target.id)
    if opts.segment_id is not None:
        members = store.segments.setdefault(opts.segment_id, set())
        if opts.empty_segment:
            members.clear()
        members.update(touched)
    moment = datetime.now(UTC)
    for channel in opts.redlist_channels:
        for target_id in touched:
            event = RedlistEvent(channel, target_id, moment, now, 2, "import")
            store.redlist(store.by_id[target_id], event)


def new_execution(
    number: int,
    definition: ImportDefinition,
    fmt: ImportFormat,
    features: list[dict[str, Any]],
    defaults: Options,
) -> Execution:
    """Snapshot the source, format and features of a definition into a new execution."""
    assert definition.data is not None
    return Execution(
        number=number,
        started=time.monotonic(),
        start_date=now_iso(),
        content={"features": features, **fmt.to_json()},
        source=dict(definition.source),
        data=definition.data,
        fmt=fmt,
        options=Options.from_features(features, defaults),
    )
