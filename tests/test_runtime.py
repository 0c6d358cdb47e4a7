"""The process-wide settings the CLI applies at start."""

from __future__ import annotations

import subprocess
import sys

from syncer import runtime


def test_the_cli_collects_young_garbage_less_often_and_freezes_start_up() -> None:
    code = (
        "import gc\n"
        "from syncer.cli.main import app\n"
        "before = gc.get_threshold()[0]\n"
        "app(['version'], standalone_mode=False)\n"
        "print(before, gc.get_threshold()[0], gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[-3:] == ["700", str(runtime.GC_YOUNG_THRESHOLD), "True"]
