"""``syncer validate`` reports every problem of a pipeline in one pass, even after a
structural error in it, and ``validate --offline`` checks everything but the credentials'
values (CI has no secrets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from syncer.cli import config_cmd

ROOT = Path(__file__).resolve().parents[2]
# every variable the tests below reference: unset unless a test gives it
UNSET: dict[str, str | None] = dict.fromkeys(
    [
        "SYNCER_CONFIG",
        "CH_PAGE_SIZE",
        "CONTACTHUB_TOKEN",
        "NRS_USERNAME",
        "NRS_API_PASSWORD",
        "OCTOPUSH_LOGIN",
        "OCTOPUSH_API_KEY",
        "NP6_API_KEY",
    ]
)


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    config_cmd.register(app)

    @app.command()
    def other() -> None:
        """A second command, so ``validate`` is a subcommand."""

    return app


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _validate(app: typer.Typer, *args: str, env: dict[str, str]) -> tuple[int, list[str]]:
    result = CliRunner(env={**UNSET, **env}).invoke(app, ["validate", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr.splitlines()


def test_an_unknown_key_does_not_hide_the_unknown_target(
    app: typer.Typer, tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    sms = example_copy["pipelines"][1]
    sms["colour"] = "red"
    sms["target"] = "octox"
    example_copy["pipelines"][0]["when"]["bogus"] = 1
    example_copy["pipelines"][0]["fields"]["email"] = "{{ base.contacts.email | nosuch }}"
    path = _write(tmp_path, example_copy)
    code, lines = _validate(app, "--config", str(path), env=env)
    assert code == 2
    assert sorted(lines) == sorted(
        [
            f"{path}: pipelines[0].when.bogus: unknown key; allowed keys: consent, present, "
            "tags_any, tags_all, match",
            f"{path}: pipelines[0].fields.email: unknown filter 'nosuch'",
            f"{path}: pipelines[1].colour: unknown key; allowed keys: name, target, entity, "
            "event_types, when, fields, groups, list, tag, on_delete, source",
            f"{path}: pipelines[1].target: unknown target 'octox'; known targets: np6, nrs, octo",
        ]
    )


def test_a_pipeline_too_broken_to_check_still_has_its_target_checked(
    app: typer.Typer, tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    sms = example_copy["pipelines"][1]
    sms.update(colour="red", target="octox", entity="thing")
    path = _write(tmp_path, example_copy)
    code, lines = _validate(app, "--config", str(path), env=env)
    assert code == 2
    assert (
        f"{path}: pipelines[1].target: unknown target 'octox'; known targets: np6, nrs, octo"
        in (lines)
    )
    assert any(line.startswith(f"{path}: pipelines[1].entity: ") for line in lines), lines
    assert any(line.startswith(f"{path}: pipelines[1].colour: unknown key") for line in lines)


def test_offline_passes_the_example_without_any_secret_set(app: typer.Typer) -> None:
    example = str(ROOT / "config" / "example.yaml")
    code, lines = _validate(app, "--config", example, env={})
    assert code == 2 and len(lines) == 6  # one per unset credential, online
    code, lines = _validate(app, "--offline", "--config", example, env={})
    assert (code, lines) == (0, [])


@pytest.mark.parametrize("name", ["config/example.yaml", "deploy/config.yaml"])
def test_offline_validate_in_a_shell_without_secrets(name: str) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("syncer")), "validate", "--offline", "-c", name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"OK: {name}: 1 source, 3 pipelines, 3 targets (offline: credentials' values not checked)\n"
    )


def test_offline_still_checks_everything_else(
    app: typer.Typer, tmp_path: Path, example_copy: dict[str, Any]
) -> None:
    example_copy["targets"]["np6"]["api_key"] = "written-in-the-file"
    example_copy["source"]["page_size"] = "${CH_PAGE_SIZE}"
    # a variable a credential shares with a plain value is needed: it stays unset
    example_copy["source"]["base_url"] = "https://${NRS_USERNAME}.example.com/hub/v1"
    example_copy["pipelines"][0]["target"] = "nrz"
    path = _write(tmp_path, example_copy)
    code, lines = _validate(app, "--offline", "--config", str(path), env={})
    assert code == 2
    assert sorted(lines) == sorted(
        [
            f"{path}: source.base_url: environment variable NRS_USERNAME is not set",
            f"{path}: source.page_size: environment variable CH_PAGE_SIZE is not set",
            f"{path}: targets.nrs.username: environment variable NRS_USERNAME is not set",
            f"{path}: targets.np6.api_key: secrets must come from an environment reference "
            "like ${NAME}",
            f"{path}: pipelines[0].target: unknown target 'nrz'; known targets: np6, nrs, octo",
        ]
    )
