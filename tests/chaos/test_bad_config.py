"""Broken configs through the command line: ``syncer validate`` prints exactly the expected
line(s) on stderr, nothing on stdout, exits 2, never a traceback.

The table is the 48 cases of ``tests/config/test_config_errors.py`` (the example config, with
all three target types, each broken one way) plus cases only a whole file or the CLI shows: the
state URL, several mistakes at once, a file that is not UTF-8, a directory. Every case runs
through the full ``syncer`` app in-process (the same code as the binary, minus interpreter
start-up); a sample also runs through the real ``syncer`` executable, and ``-m slow`` runs the
whole table through it.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "config"))
from test_config_errors import CASES as LOADER_CASES
from test_config_errors import Mutation, _all, _set

from syncer.cli.main import app

SYNCER = str(Path(sys.executable).with_name("syncer"))
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
ENV = {  # what the example config references (as in tests/config/conftest.py)
    "CONTACTHUB_TOKEN": "ch-token-123",
    "NRS_USERNAME": "nrs-user",
    "NRS_API_PASSWORD": "nrs-password-456",
    "OCTOPUSH_LOGIN": "ops@example.com",
    "OCTOPUSH_API_KEY": "octo-key-789",
    "NP6_API_KEY": "np6-key-abc",
}

# (name, mutation, key path, message): several issues are "path: message" lines joined by \n
Case = tuple[str, Mutation, str, str]


def _raw(text: str) -> Mutation:
    return lambda data: text


def _bytes_file(data: bytes) -> Mutation:
    return lambda _data: data


CLI_CASES: list[Case] = [
    (
        "state url not a URL",
        _set("state.url", "not a url"),
        "state.url",
        "invalid database URL: use sqlite:///PATH or postgresql+psycopg://USER@HOST/DATABASE",
    ),
    (
        "state url of an unsupported database",
        _set("state.url", "mysql://syncer:pw@db/syncer"),
        "state.url",
        "unsupported database 'mysql': use sqlite:///PATH or "
        "postgresql+psycopg://USER@HOST/DATABASE",
    ),
    (
        "state url in memory",
        _set("state.url", "sqlite:///:memory:"),
        "state.url",
        "a SQLite state database needs a file path, e.g. sqlite:///./syncer.db "
        "(in memory, the state would be lost at exit)",
    ),
    (
        "state url with another PostgreSQL driver",
        _set("state.url", "postgresql+asyncpg://syncer@db/syncer"),
        "state.url",
        "unsupported PostgreSQL driver 'asyncpg': use postgresql+psycopg://USER@HOST/DATABASE",
    ),
    (
        "state url from an unset variable",
        _set("state.url", "${SYNCER_STATE_URL}"),
        "state.url",
        "environment variable SYNCER_STATE_URL is not set",
    ),
    (
        "pipelines empty",
        _set("pipelines", []),
        "pipelines",
        "list should have at least 1 item after validation, not 0",
    ),
    (
        "targets not a mapping",
        _set("targets", ["nrs"]),
        "targets",
        "input should be a valid dictionary",
    ),
    (
        "three mistakes at once, each reported",
        _all(
            _set("source.page_size", -1),
            _set("targets.octo.api_key", "literal-key"),
            _set("pipelines[2].event_types", []),
        ),
        "",
        "source.page_size: input should be greater than or equal to 1, got -1\n"
        "pipelines[2].event_types: list should have at least 1 item after validation, not 0\n"
        "targets.octo.api_key: secrets must come from an environment reference like ${NAME}",
    ),
    (
        "not UTF-8",
        _bytes_file(b"version: 1\nsource: {type: contacthub, token: \xff\xfe}\n"),
        "",
        "__not_utf8__",
    ),
    ("only a comment", _raw("# nothing here\n"), "", "file is empty; expected 'version: 1' etc."),
    ("a scalar", _raw("syncer\n"), "", "top level must be a mapping, not a str"),
]

CASES: list[Case] = [*LOADER_CASES, *CLI_CASES]


def _write(tmp_path: Path, mutation: Mutation) -> Path:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    changed = copy.deepcopy(data)
    result = mutation(changed)
    path = tmp_path / "broken.yaml"
    if isinstance(result, bytes):
        path.write_bytes(result)
    else:
        path.write_text(
            result if isinstance(result, str) else yaml.safe_dump(changed), encoding="utf-8"
        )
    return path


def _expected(path: Path, key: str, message: str) -> str:
    if message == "__not_utf8__":
        return f"{path}: __not_utf8__"
    if not key:
        return "\n".join(f"{path}: {line}" for line in message.splitlines())
    return f"{path}: {key}: {message}"


def _check(path: Path, expected: str, code: int, stdout: str, stderr: str) -> None:
    assert "Traceback" not in stdout + stderr
    assert (code, stdout) == (2, "")
    if expected.endswith("__not_utf8__"):
        assert stderr.startswith(f"{path}: ") and "UTF-8" in stderr, stderr
        assert stderr.count("\n") == 1
    else:
        assert stderr == expected + "\n"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.delenv("SYNCER_CONFIG", raising=False)
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    yield CliRunner()
    # the app's root callback pointed structlog at the runner's stderr, closed by now
    structlog.reset_defaults()


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("mutation", "key", "message"), [pytest.param(m, k, msg, id=n) for n, m, k, msg in CASES]
)
def test_validate_reports_the_exact_problem(
    tmp_path: Path, runner: CliRunner, mutation: Mutation, key: str, message: str
) -> None:
    path = _write(tmp_path, mutation)
    result = runner.invoke(app, ["validate", "--config", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    _check(path, _expected(path, key, message), result.exit_code, result.stdout, result.stderr)


def _binary(tmp_path: Path, cases: list[Case]) -> None:
    """``cases`` through the real executable, two processes at a time."""
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCER_CONFIG", "SYNCER_STATE_URL")}
    env.update(ENV)
    jobs = []
    for n, (name, mutation, key, message) in enumerate(cases):
        folder = tmp_path / f"case-{n}"
        folder.mkdir()
        path = _write(folder, mutation)
        jobs.append((name, path, _expected(path, key, message)))

    def run(job: tuple[str, Path, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SYNCER, "validate", "--config", str(job[1])],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, jobs))
    for (name, path, expected), result in zip(jobs, results, strict=True):
        try:
            _check(path, expected, result.returncode, result.stdout, result.stderr)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from None


SAMPLE = [
    "unknown top-level key",
    "template syntax error",
    "YAML syntax error",
    "state url not a URL",
    "three mistakes at once, each reported",
    "not UTF-8",
]


def test_a_sample_through_the_real_executable(tmp_path: Path) -> None:
    _binary(tmp_path, [c for c in CASES if c[0] in SAMPLE])


@pytest.mark.slow
def test_every_case_through_the_real_executable(tmp_path: Path) -> None:
    _binary(tmp_path, CASES)
