"""Config problems: :class:`ConfigIssue` (one problem at one key path) and :class:`ConfigError`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from syncer.errors import StopError

__all__ = ["ConfigError", "ConfigIssue", "KeyPath", "format_path"]

KeyPath = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"[\w.$@-]+")


def format_path(path: KeyPath) -> str:
    """Render a key path the way users read it: ``pipelines[1].fields.phone_number``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file; ``path`` is empty when it concerns the whole file."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(StopError):
    """A config file that cannot be used, with every problem found in it.

    ``str()`` gives one line per issue: ``<file>: <path>: <message>``. A
    :class:`syncer.errors.StopError`: the operator has to fix the file.
    """

    def __init__(self, file: str, errors: Sequence[ConfigIssue]) -> None:
        self.file = file
        self.errors = list(errors)
        super().__init__(str(self))

    def lines(self) -> list[str]:
        """One rendered line per issue."""
        prefix = f"{self.file}: " if self.file else ""
        return [f"{prefix}{issue}" for issue in self.errors]

    def __str__(self) -> str:
        return "\n".join(self.lines())
