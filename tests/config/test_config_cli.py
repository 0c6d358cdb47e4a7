"""The ``validate`` and ``config schema`` commands: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from syncer.cli import config_cmd


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    config_cmd.register(app)
    return app


@pytest.fixture
def runner(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("SYNCER_CONFIG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


def test_validate_ok(app: typer.Typer, runner: CliRunner, example_path: Path) -> None:
    result = runner.invoke(app, ["validate", "--config", str(example_path)])
    assert result.exit_code == 0
    assert result.stdout == f"OK: {example_path}: 1 source, 3 pipelines, 3 targets\n"


def test_validate_uses_syncer_config(
    app: typer.Typer, runner: CliRunner, example_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCER_CONFIG", str(example_path))
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0
    assert result.stdout.startswith("OK: ")


def test_validate_reports_every_issue(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, example_path: Path
) -> None:
    text = example_path.read_text(encoding="utf-8")
    text = text.replace("page_size: 500", "page_size: 0").replace(
        "rate_limit: 20/s", "rate_limit: x"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", "--config", str(broken)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{broken}: source.page_size: input should be greater than or equal to 1, got 0",
        f"{broken}: targets.nrs.rate_limit: invalid rate 'x': use <count>/s, <count>/m or "
        "<count>/h, e.g. 20/s",
    ]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        (
            "version: [1\n",
            "YAML syntax error at line 2, column 1: expected ',' or ']', but got '<stream end>'",
        ),
        ("", "file is empty; expected 'version: 1' etc."),
    ],
)
def test_validate_file_problems(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "syncer.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["validate", "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr == f"{path}: {expected}\n"
    assert "Traceback" not in result.output


def test_validate_without_config(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert result.stderr == "no config file given: pass --config PATH or set SYNCER_CONFIG\n"


def test_schema_is_json(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    # 'source' or 'sources': one of the two, which the schema cannot say as 'required'
    assert set(schema["required"]) == {"version", "targets", "pipelines"}
    assert {"source", "sources"} <= set(schema["properties"])
    pipeline = schema["$defs"]["PipelineConfig"]["properties"]
    assert "list" in pipeline and "list_" not in pipeline
    assert "import" in schema["$defs"]["Np6TargetConfig"]["properties"]
    token = schema["$defs"]["ContacthubSourceConfig"]["properties"]["token"]
    assert token["writeOnly"] is True
    poll = schema["$defs"]["ContacthubSourceConfig"]["properties"]["poll_interval"]
    assert {"type": "number", "exclusiveMinimum": 0} in poll["anyOf"]
