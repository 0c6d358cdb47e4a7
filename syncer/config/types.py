"""Scalar types of the config language: durations and rates.

Both are plain ``float`` values once validated (seconds, and events per second), so the
engine never needs to parse strings. In YAML they are written the way people say them:

* durations: ``500ms``, ``30s``, ``5m``, ``1h`` or a plain number of seconds;
* rates: ``20/s``, ``600/m``, ``3600/h`` (a plain number means per second).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

__all__ = ["Duration", "Rate", "parse_duration", "parse_rate"]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|m|h))?\s*$")


def parse_duration(value: Any) -> float:
    """Parse a duration (``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"`` or seconds) into seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration '{value}': use a number with ms, s, m or h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"invalid duration '{value}': use a number with ms, s, m or h")
    if seconds <= 0:
        raise ValueError(f"invalid duration '{value}': must be greater than zero")
    return seconds


def parse_rate(value: Any) -> float:
    """Parse a rate (``"20/s"``, ``"600/m"``, ``"3600/h"`` or a plain number) into per second."""
    message = f"invalid rate '{value}': use <count>/s, <count>/m or <count>/h, e.g. 20/s"
    if isinstance(value, bool):
        raise ValueError(message)
    if isinstance(value, int | float):
        per_second = float(value)
    elif isinstance(value, str) and (match := _RATE_RE.match(value)):
        per_second = float(match.group(1)) / _RATE_UNITS[match.group(2) or "s"]
    else:
        raise ValueError(message)
    if per_second <= 0:
        raise ValueError(f"invalid rate '{value}': must be greater than zero")
    return per_second


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "examples": ["500ms", "30s", "5m", "1h"],
        }
    ),
]
"""A positive duration in seconds, written as ``500ms``, ``30s``, ``5m``, ``1h`` or seconds."""

Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(/\s*(s|m|h))?\s*$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "examples": ["20/s", "600/m", "3600/h"],
        }
    ),
]
"""A positive rate in events per second, written as ``20/s``, ``600/m`` or ``3600/h``."""
