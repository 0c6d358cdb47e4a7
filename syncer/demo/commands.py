"""Running ``syncer`` commands as subprocesses, exactly as a user would type them."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CommandResult", "run_syncer", "syncer_argv"]

_INLINE = "import sys; from syncer.cli.main import main; sys.argv[0] = 'syncer'; main()"


def syncer_argv() -> list[str]:
    """The ``syncer`` console script next to this interpreter, else the interpreter itself."""
    script = Path(sys.executable).with_name("syncer")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", _INLINE]


@dataclass
class CommandResult:
    shown: str  # the command as printed (``syncer sync --once --config ...``)
    code: int
    output: list[str]  # stdout lines (stderr goes to the user's terminal: progress bars)


def run_syncer(
    args: Sequence[str], env: Mapping[str, str], *, echo: bool = True, timeout: float = 600.0
) -> CommandResult:
    """Run ``syncer <args>`` with ``env`` added to this process's environment.

    stdout is captured and echoed line by line; stderr is inherited, so the command's own
    progress display (rich on a TTY) reaches the user unchanged.
    """
    shown = shlex.join(["syncer", *args])
    if echo:
        print(f"$ {shown}", flush=True)
    proc = subprocess.Popen(
        [*syncer_argv(), "--log-level", "warning", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if echo:
            print(f"  {lines[-1]}", flush=True)
    code = proc.wait(timeout=timeout)
    return CommandResult(shown, code, lines)
