"""Every ``syncer <command>`` of README.md's command table exists in the CLI."""

from __future__ import annotations

import re
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
