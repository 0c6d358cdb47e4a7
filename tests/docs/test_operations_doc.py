"""Every command of docs/operations.md runs, in order, against the sandbox and a temporary
SQLite state database, and ends with the exit code the page documents (``# exit N``, else 0).

Blocks preceded by ``<!-- not-run: reason -->`` are only parsed. Commands of a program that is
not installed here (``sqlite3``) are skipped with a warning rather than failed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from syncer.demo.workspace import EXAMPLE_CONFIG, demo_config
from syncer.sandbox.cluster import SandboxCluster

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(.*?)\s*-->$")
EXIT = re.compile(r"#\s*exit\s+(\d+)\b")


@dataclass(frozen=True)
class Command:
    line: int
    text: str
    expected: int


@dataclass(frozen=True)
class Block:
    line: int
    commands: list[Command]
    not_run: str | None


def parse(text: str) -> list[Block]:
    """The ``sh`` blocks of ``text``: commands (``\\`` continuations joined), expected codes."""
    blocks: list[Block] = []
    lines = text.splitlines()
    pending: str | None = None
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        marker = NOT_RUN.match(stripped)
        if marker:
            pending = marker.group(1)
        elif stripped == "```sh":
            start, commands, buf, first = i + 1, [], "", 0
            i += 1
            while lines[i].strip() != "```":
                raw = lines[i]
                if not buf:
                    first = i + 1
                if raw.rstrip().endswith("\\"):
                    buf += raw.rstrip()[:-1].strip() + " "
                else:
                    full = buf + raw.strip()
                    buf = ""
                    if full and not full.startswith("#"):
                        code = EXIT.search(full)
                        commands.append(Command(first, full, int(code.group(1)) if code else 0))
                i += 1
            blocks.append(Block(start, commands, pending))
            pending = None
        elif stripped and pending is not None:
            raise AssertionError(f"line {i + 1}: a not-run marker must precede a ```sh block")
        i += 1
    return blocks


BLOCKS = parse(DOC.read_text(encoding="utf-8"))
RUNNABLE = [c for b in BLOCKS if b.not_run is None for c in b.commands]


def test_the_page_has_commands_and_reasons() -> None:
    assert len(RUNNABLE) >= 20
    for block in BLOCKS:
        assert block.commands, f"line {block.line}: empty sh block"
        if block.not_run is not None:
            assert block.not_run, f"line {block.line}: a not-run marker needs its reason"
    documented = {c.expected for c in RUNNABLE}
    assert {0, 1, 2, 3} <= documented, "every exit code is shown by a command that runs"


def test_parser_reads_markers_continuations_and_codes() -> None:
    text = "\n".join(
        [
            "<!-- not-run: needs root -->",
            "```sh",
            "systemctl start x",
            "```",
            "```sh",
            "# a comment",
            "syncer a \\",
            "  --b   # exit 2",
            "```",
        ]
    )
    first, second = parse(text)
    assert first.not_run == "needs root"
    assert second.not_run is None
    assert [(c.text, c.expected) for c in second.commands] == [("syncer a --b   # exit 2", 2)]


@pytest.fixture(scope="module")
def sandbox_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("ops-doc")
    with SandboxCluster() as cluster:
        cluster.load_contacthub(customers=200, events=200, seed=1)
        example = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        doc, secrets = demo_config(example, cluster.connection_info(), "sqlite:///syncer.db")
        config = root / "syncer.yaml"
        config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
        bindir = str(Path(sys.executable).parent)
        env.update(secrets, SYNCER_CONFIG=str(config), PATH=f"{bindir}{os.pathsep}{env['PATH']}")
        yield root, env


def test_every_command_ends_with_its_documented_exit_code(
    sandbox_env: tuple[Path, dict[str, str]],
) -> None:
    root, env = sandbox_env
    ran = 0
    for command in RUNNABLE:
        program = shlex.split(command.text, comments=True)[0]
        if shutil.which(program, path=env["PATH"]) is None:
            message = f"docs/operations.md:{command.line}: {program} not installed, skipped"
            warnings.warn(message, stacklevel=1)
            continue
        done = subprocess.run(
            ["bash", "-c", command.text],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        ran += 1
        assert done.returncode == command.expected, (
            f"docs/operations.md:{command.line}: `{command.text}` exited {done.returncode}, "
            f"documented {command.expected}\nstdout:\n{done.stdout[-2000:]}\n"
            f"stderr:\n{done.stderr[-2000:]}"
        )
    assert ran >= len(RUNNABLE) - 2


def test_exit_code_table_is_the_cli_codes() -> None:
    """The table of docs/operations.md lists exactly the codes syncer/cli/common.py defines."""
    from syncer.cli import common

    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    table = {int(m) for m in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}
    defined = {v for k, v in vars(common).items() if k.startswith("EXIT_")}
    assert table == defined == {0, 1, 2, 3, 4, 5, 130}
    assert "SYNCER_DEBUG=1" in section
