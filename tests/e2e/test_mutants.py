"""The two-replica test catches a broken claim protocol (issue 13): it is run, as a
subprocess, against each mutant of ``mutants/sitecustomize.py`` and must fail, then once
unmutated and must pass. Slow (three whole-system runs): ``make chaos``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(1800)]


def _two_replicas(mutant: str | None, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(HERE / "mutants")}
    env.pop("SYNCER_MUTANT", None)
    if mutant:
        env["SYNCER_MUTANT"] = mutant
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path}",
            str(HERE / "test_two_replicas.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


@pytest.mark.parametrize("mutant", ["claims", "no-exclusion"])
def test_a_broken_claim_protocol_fails_the_two_replica_test(
    mutant: str, tmp_path: Path, pg_url: str
) -> None:
    """(``pg_url``: a server is there, as the inner test needs.)"""
    run = _two_replicas(mutant, tmp_path)
    assert run.returncode == 1, run.stdout[-3000:]
    assert "AssertionError" in run.stdout, run.stdout[-3000:]


def test_the_two_replica_test_passes_unmutated(tmp_path: Path, pg_url: str) -> None:
    run = _two_replicas(None, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
