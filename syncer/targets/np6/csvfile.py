"""NP6 import files: the binding (import format) and the CSV written for it.

The binding (``GET /importFormats/{id}``) says how NP6 reads a file: ``separator`` (an ASCII
code, 59 = ``;``), ``startAt`` (index of the first data record: that many header lines come
first) and ``binds`` (``columnIndex`` -> ``fieldId``, ``-10`` = ignored column). The file has
one column per index up to the highest bound one; a pipeline's ``fields`` (field ids) go in the
columns the binding gives them, other columns stay empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["IGNORED_COLUMN", "Binding", "cell", "render_csv"]

IGNORED_COLUMN = -10


@dataclass(frozen=True)
class Binding:
    """An NP6 import format, as far as writing a file for it goes."""

    id: int
    separator: str
    start_at: int
    columns: tuple[int | None, ...]  # field id per column index; None = not bound/ignored

    @classmethod
    def from_json(cls, format_id: int, data: Mapping[str, Any], default_separator: str) -> Binding:
        """Parse ``GET /importFormats/{id}``; ``default_separator`` when the format has none."""
        raw_sep = data.get("separator")
        separator = chr(raw_sep) if isinstance(raw_sep, int) and 0 < raw_sep < 128 else None
        start = data.get("startAt")
        binds: dict[int, int] = {}
        for bind in data.get("binds") or []:
            if not isinstance(bind, Mapping):
                continue
            col, fid = bind.get("columnIndex"), bind.get("fieldId")
            if isinstance(col, int) and isinstance(fid, int) and col >= 0:
                binds[col] = fid
        width = max(binds) + 1 if binds else 0
        columns = tuple(
            binds[c] if c in binds and binds[c] != IGNORED_COLUMN else None for c in range(width)
        )
        return cls(
            format_id,
            separator or default_separator,
            start if isinstance(start, int) and start >= 0 else 1,
            columns,
        )

    @property
    def field_ids(self) -> frozenset[str]:
        return frozenset(str(f) for f in self.columns if f is not None)

    def row(self, fields: Mapping[str, Any]) -> list[str]:
        """The cells of one record (keys are field ids as strings)."""
        return [cell(fields.get(str(f))) if f is not None else "" for f in self.columns]

    def header(self) -> list[str]:
        return [str(f) if f is not None else "" for f in self.columns]


def cell(value: Any) -> str:
    """One value as NP6 reads it in a file: numbers plain, lists ``|``-joined, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    if isinstance(value, list | tuple):
        return "|".join(cell(v) for v in value)
    return " ".join(str(value).splitlines())  # a record is one line


def render_csv(binding: Binding, rows: Sequence[Sequence[str]]) -> bytes:
    """The whole file: ``startAt`` header lines, then ``rows`` (already cells), UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=binding.separator, lineterminator="\r\n")
    for _ in range(binding.start_at):
        writer.writerow(binding.header())
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")
