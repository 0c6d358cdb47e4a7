"""Every ``syncer <command>`` of README.md's command table exists in the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import typer.main

from syncer.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"
CODE = re.compile(r"`syncer ([^`]*)`")
WORD = re.compile(r"^[a-z][a-z-]*$")


def table_commands() -> list[list[str]]:
    """Command paths named in the README's command table (``offsets show|set|reset`` gives
    three); options and arguments are dropped."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    paths: list[list[str]] = []
    for row in section.splitlines():
        if not row.startswith("| `syncer"):
            continue
        first_cell = row.split(" | ", 1)[0]
        for spec in CODE.findall(first_cell):
            words: list[str] = []
            for token in spec.split():
                if token.startswith(("-", "[", "<")) or token.isupper():
                    break
                words.append(token)
            *head, last = words
            paths.extend([*head, alt] for alt in last.split("|"))
    return paths


def resolve(path: list[str]) -> Any:
    """The command object at ``path`` (typer vendors click, so groups are duck-typed)."""
    command: Any = typer.main.get_command(app)
    for word in path:
        children = getattr(command, "commands", None)
        if not isinstance(children, dict) or word not in children:
            return None
        command = children[word]
    return command


def test_table_is_parsed() -> None:
    paths = table_commands()
    assert ["offsets", "reset"] in paths and ["dlq", "retry"] in paths and ["demo"] in paths
    assert all(WORD.match(w) for p in paths for w in p), paths


def test_every_readme_command_exists() -> None:
    missing = [" ".join(p) for p in table_commands() if resolve(p) is None]
    assert not missing, f"README names commands `syncer --help` does not have: {missing}"


def cli_commands() -> list[list[str]]:
    """Every leaf command path of the CLI (``db check``, ``version``, ...)."""
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if isinstance(children, dict):
            for name, child in children.items():
                walk(child, [*path, name])
        else:
            found.append(path)

    walk(typer.main.get_command(app), [])
    return found


def test_the_table_lists_every_command() -> None:
    listed = table_commands()
    missing = [" ".join(p) for p in cli_commands() if p not in listed]
    assert not missing, f"README's command table lacks: {missing}"
    assert ["db", "check"] in listed and ["version"] in listed


SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXIT = re.compile(r"#\s*exit\s+(\d+)\b")


def readme_syncer_lines() -> list[tuple[str, int]]:
    """``(command, documented exit code)`` of every ``syncer`` line in README's sh blocks
    (``make`` lines build and test the whole project: not run here)."""
    text = README.read_text(encoding="utf-8")
    lines = [line.strip() for block in SH_BLOCK.findall(text) for line in block.splitlines()]
    out = []
    for line in lines:
        if line.startswith("syncer "):
            code = EXIT.search(line)
            out.append((line, int(code.group(1)) if code else 0))
    return out


def test_every_readme_syncer_line_runs_with_its_exit_code() -> None:
    """In a shell without syncer's secrets (like a fresh clone's)."""
    commands = readme_syncer_lines()
    assert commands, "README shows no syncer command line"
    secrets = {"CONTACTHUB_TOKEN", "NRS_USERNAME", "NRS_API_PASSWORD", "OCTOPUSH_LOGIN"}
    secrets |= {"OCTOPUSH_API_KEY", "NP6_API_KEY"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_") and k not in secrets}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for line, expected in commands:
        done = subprocess.run(
            ["bash", "-c", line],
            cwd=README.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == expected, f"`{line}`: {done.stdout}{done.stderr}"


DOCS = [README, *sorted((README.parent / "docs").glob("*.md"))]
DOCS += sorted(p for p in (README.parent / "deploy").rglob("*") if p.is_file())
EXTRA = re.compile(r"\bsyncer\[([^\]]*)\]")


def test_documented_install_extras_exist() -> None:
    """``pip install 'syncer[x]'`` names only extras pyproject.toml defines."""
    project = tomllib.loads((README.parent / "pyproject.toml").read_text(encoding="utf-8"))
    defined = set(project["project"].get("optional-dependencies", {}))
    used = {
        (path.name, extra.strip())
        for path in DOCS
        for group in EXTRA.findall(path.read_text(encoding="utf-8", errors="replace"))
        for extra in group.split(",")
    }
    assert not {u for u in used if u[1] not in defined}, used
