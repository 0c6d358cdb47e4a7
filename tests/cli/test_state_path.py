"""A relative SQLite path in ``state.url`` is relative to the config file's folder, and only
``db upgrade``, ``backfill``, ``sync`` and ``run`` may create a new state database: any other
command pointed at a missing one exits 3 saying so, and creates nothing.

``syncer`` runs as a subprocess from another working directory than the config's folder,
against the sandbox's simulators on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Sandbox, human_lines, run


@pytest.fixture
def layout(sandbox: Sandbox, tmp_path: Path) -> tuple[Path, Path]:
    """(config file in ``conf/`` with ``sqlite:///./syncer.db``, an unrelated working dir)."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "elsewhere").mkdir()
    config = sandbox.write(tmp_path / "conf", state={"url": "sqlite:///./syncer.db"})
    return config, tmp_path / "elsewhere"


def test_a_relative_sqlite_path_follows_the_config_file(
    sandbox: Sandbox, layout: tuple[Path, Path]
) -> None:
    config, cwd = layout
    upgraded = run(["db", "upgrade", "-c", str(config)], cwd=cwd, env=sandbox.env())
    assert upgraded.returncode == 0, upgraded.stderr
    assert (config.parent / "syncer.db").is_file()
    assert not (cwd / "syncer.db").exists()
    done = run(["backfill", "-c", str(config)], cwd=cwd, env=sandbox.env())
    assert done.returncode == 0, done.stderr
    # from yet another folder, through SYNCER_CONFIG: the same database, with its queue
    env = sandbox.env(SYNCER_CONFIG=str(config))
    status = run(["status"], cwd=config.parent.parent, env=env)
    assert status.returncode == 0, status.stderr
    assert "queue newsletter -> nrs: pending 38," in status.stdout, status.stdout
    assert not (config.parent.parent / "syncer.db").exists()


COMMANDS = [
    ["status"],
    ["plan"],
    ["dlq", "list"],
    ["dlq", "retry"],
    ["offsets", "show"],
    ["offsets", "reset"],
    ["health"],
    ["db", "check"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_only_commands_that_start_a_sync_create_the_state_database(
    sandbox: Sandbox, layout: tuple[Path, Path], command: list[str]
) -> None:
    config, cwd = layout
    wanted = (config.parent / "syncer.db").resolve()
    done = run([*command, "-c", str(config)], cwd=cwd, env=sandbox.env())
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert human_lines(done.stderr) == [
        f"error: no state database at {wanted} (state.url; a relative path is relative to "
        "the config file's folder): create it with `syncer db upgrade` or a first "
        "`syncer backfill`, or fix state.url"
    ]
    assert list(cwd.iterdir()) == []
    assert [p.name for p in config.parent.iterdir()] == [config.name]  # not even a lock file
