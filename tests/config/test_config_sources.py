"""Several named sources: ``sources:``, the single ``source:`` form as ``default``, pipelines
naming their source, and the errors of each (file, key path, exit 2)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from syncer.cli.main import app
from syncer.config import ConfigError, ConfigIssue, load_config
from syncer.config.models import DEFAULT_SOURCE


def _two_sources(example: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(example)
    single = data.pop("source")
    data["sources"] = {
        "brand-it": {**single, "workspace_id": "ws-it"},
        "brand-fr": {
            **{k: v for k, v in single.items() if k != "node_id"},
            "workspace_id": "ws-fr",
            "node_ids": ["node-a", "node-b"],
            "page_size": 100,
            "poll_interval": "5s",
        },
    }
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _issues(tmp_path: Path, data: dict[str, Any], env: dict[str, str]) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, data), env=env)
    assert caught.value.file == str(tmp_path / "syncer.yaml")
    return caught.value.errors


def test_the_single_source_form_is_the_source_named_default(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    cfg = load_config(_write(tmp_path, example_copy), env=env)
    assert list(cfg.sources) == [DEFAULT_SOURCE]
    assert cfg.sources[DEFAULT_SOURCE].nodes == [example_copy["source"]["node_id"]]
    assert cfg.pipelines_of(DEFAULT_SOURCE) == cfg.pipelines
    # a dump validates again (the normalised form is not "both forms")
    assert type(cfg).model_validate(cfg.model_dump(by_alias=True)).sources == cfg.sources


def test_named_sources_with_one_or_several_nodes(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    data = _two_sources(example_copy)
    data["pipelines"][0]["source"] = "brand-fr"
    cfg = load_config(_write(tmp_path, data), env=env)
    assert list(cfg.sources) == ["brand-it", "brand-fr"]
    fr = cfg.sources["brand-fr"]
    assert (fr.workspace_id, fr.nodes, fr.page_size, fr.poll_interval) == (
        "ws-fr",
        ["node-a", "node-b"],
        100,
        5.0,
    )
    assert fr.token.get_secret_value() == env["CONTACTHUB_TOKEN"]
    first = cfg.pipelines[0].name
    assert first in [p.name for p in cfg.pipelines_of("brand-fr")]
    assert first not in [p.name for p in cfg.pipelines_of("brand-it")]
    # a pipeline without 'source' takes every source
    assert cfg.pipelines[1] in cfg.pipelines_of("brand-it") and cfg.pipelines[1] in (
        cfg.pipelines_of("brand-fr")
    )


def test_both_forms_at_once_is_one_clear_issue(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    data = _two_sources(example_copy)
    data["source"] = example_copy["source"]
    assert _issues(tmp_path, data, env) == [
        ConfigIssue(
            "sources",
            "'source' and 'sources' are both given: use 'sources' alone (name the former "
            "'source' 'default' there to keep its state)",
        )
    ]


def test_no_source_at_all(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    del example_copy["source"]
    assert _issues(tmp_path, example_copy, env) == [
        ConfigIssue(
            "sources",
            "required key is missing: give 'source' (one source) or 'sources' (named sources)",
        )
    ]


def test_unknown_source_of_a_pipeline_gets_a_suggestion(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    data = _two_sources(example_copy)
    data["pipelines"][1]["source"] = "brand-itt"
    assert _issues(tmp_path, data, env) == [
        ConfigIssue(
            "pipelines[1].source",
            "unknown source 'brand-itt' (did you mean 'brand-it'?); known sources: brand-it, "
            "brand-fr",
        )
    ]


def test_source_errors_point_into_the_named_source(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    data = _two_sources(example_copy)
    data["sources"]["brand-fr"]["pagesize"] = 3
    data["sources"]["brand-it"]["node_ids"] = ["x"]  # and node_id: one form only
    issues = _issues(tmp_path, data, env)
    assert set(issues) == {
        ConfigIssue("sources.brand-fr.pagesize", "unknown key (did you mean 'page_size'?)"),
        ConfigIssue(
            "sources.brand-it", "give either 'node_id' (one entry node) or 'node_ids' (several)"
        ),
    }


def test_a_plain_token_in_a_named_source_is_refused(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    data = _two_sources(example_copy)
    data["sources"]["brand-it"]["token"] = "plain-text-token"
    issues = _issues(tmp_path, data, env)
    assert [i.path for i in issues] == ["sources.brand-it.token"]
    assert "plain-text-token" not in str(issues)


def test_bad_source_name_and_a_node_read_twice(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    data = _two_sources(example_copy)
    data["sources"]["Brand IT"] = data["sources"].pop("brand-it")
    assert _issues(tmp_path, data, env) == [
        ConfigIssue(
            "sources['Brand IT']",
            "invalid source name 'Brand IT': use lower-case letters, digits, '-' and '_' "
            "(at most 40)",
        )
    ]
    data = _two_sources(example_copy)
    data["sources"]["brand-it"].update(workspace_id="ws-fr", node_id="node-b")
    assert _issues(tmp_path, data, env) == [
        ConfigIssue(
            "sources.brand-fr",
            "reads workspace ws-fr node node-b like source 'brand-it': each node belongs to "
            "one source",
        )
    ]


def test_validate_exits_2_with_file_and_key_path(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    data = _two_sources(example_copy)
    data["source"] = example_copy["source"]
    path = _write(tmp_path, data)
    result = CliRunner().invoke(app, ["validate", "--config", str(path)], env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}: sources: 'source' and 'sources' are both given")
    assert "Traceback" not in result.output


def test_validate_counts_the_sources(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    path = _write(tmp_path, _two_sources(example_copy))
    result = CliRunner().invoke(app, ["validate", "--config", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"OK: {path}: 2 sources, 3 pipelines, 3 targets\n"
    result = CliRunner().invoke(app, ["validate", "--json", "--config", str(path)], env=env)
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)  # JSON is YAML
    assert (doc["sources"], doc["pipelines"], doc["targets"]) == (2, 3, 3)
