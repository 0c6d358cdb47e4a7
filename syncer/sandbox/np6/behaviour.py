"""Switches for the NP6 behaviours the docs leave open (table in the package docstring)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal


@dataclass
class Np6Behaviour:
    """Undocumented NP6 behaviours, each with our default."""

    processing_seconds: float = 0.2  # import executions stay in state 0 this long
    require_import_accept: bool = True  # 406 without the vnd Accept where docs say "imperative"
    bulk_delete_response: Literal["list", "empty"] = "list"  # NP6-SLATE list, or 8.1.0 204
    # GET /imports/{id}/executions: NP6-SLATE's execution object (startDate, source...), or
    # the 8.1.0 reference's {"state": n} alone (np6-imports.txt)
    execution_body: Literal["full", "state"] = "full"
    duplicate_default: Literal["ignore", "first", "last"] = "last"
    update_existing_default: bool = True
    crush_data_default: bool = False
    max_source_bytes: int = 256 * 1024 * 1024  # 413 above
    max_bad_lines_reported: int = 100

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Np6Behaviour:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown NP6 behaviour settings: {sorted(unknown)}")
        return cls(**data)
