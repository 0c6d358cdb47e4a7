"""Switches for the NP6 behaviours the docs leave open (table in the package docstring)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ..app import merge_behaviour


@dataclass
class Np6Behaviour:
    """Undocumented NP6 behaviours, each with our default."""

    processing_seconds: float = 0.2  # import executions stay in state 0 this long
    require_import_accept: bool = True  # 406 without the vnd Accept where docs say "imperative"
    bulk_delete_response: Literal["list", "empty"] = "list"  # NP6-SLATE list, or 8.1.0 204
    # GET /imports/{id}/executions: NP6-SLATE's execution object (startDate, source...), or
    # the 8.1.0 reference's {"state": n} alone (np6-imports.txt)
    execution_body: Literal["full", "state"] = "full"
    # DELETE /targets (bulk) naming a target that does not exist: 200 with the deleted ones
    # (unknown values ignored), or NP6-SLATE _errors.md's 404 (empty body, nothing deleted)
    unknown_delete: Literal["empty_200", "not_found_404"] = "empty_200"
    # 429 headers: Retry-After + X-RateLimit-* (as before), X-RateLimit-* only (the documented
    # "may be provided" ones), or none
    rate_limit: Literal["retry_after", "x_ratelimit", "bare"] = "retry_after"
    # GET /imports/{id}/executions of a definition never started: 404 (empty body), or 200
    # with an empty object (neither is documented; S000 shows only a started one's state)
    no_execution: Literal["not_found_404", "empty_200"] = "not_found_404"
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
        result: Np6Behaviour = merge_behaviour(cls(), data)  # values checked too
        return result
