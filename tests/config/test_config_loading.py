"""Loading valid configs, defaults, env expansion, several errors at once, path resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from syncer.config import (
    ConfigError,
    ConfigIssue,
    Np6TargetConfig,
    Nrs360TargetConfig,
    OctopushTargetConfig,
    load_config,
    resolve_config_path,
    secret_values,
)
from syncer.config.models import TARGET_MODELS
from syncer.config.target_rules import RULES


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_example_validates(example_path: Path, env: dict[str, str]) -> None:
    cfg = load_config(example_path, env=env)
    assert [p.name for p in cfg.pipelines] == ["newsletter", "sms-vip", "orders-np6"]
    nrs, octo, np6 = cfg.targets["nrs"], cfg.targets["octo"], cfg.targets["np6"]
    assert isinstance(nrs, Nrs360TargetConfig)
    assert isinstance(octo, OctopushTargetConfig)
    assert isinstance(np6, Np6TargetConfig)
    assert nrs.username == "nrs-user"
    assert nrs.api_password.get_secret_value() == "nrs-password-456"
    assert nrs.rate_limit == 20.0
    assert nrs.max_in_flight == 8
    assert octo.rate_limit is None
    assert np6.import_ is not None
    assert (np6.import_.binding, np6.import_.flush_every, np6.import_.separator) == (1234, 60, ";")
    assert cfg.source.poll_interval == 30.0
    assert cfg.source.token.get_secret_value() == "ch-token-123"
    assert cfg.pipelines[1].list_ == "VIP {{ base.address.country | country }}"
    assert cfg.pipelines[2].fields["1003"] == "{{ properties.amount.total | round(2) }}"


def test_defaults(example_path: Path, env: dict[str, str]) -> None:
    cfg = load_config(example_path, env=env)
    assert cfg.metrics.address == "127.0.0.1:9464"
    assert (cfg.engine.batch_size, cfg.engine.backoff_base, cfg.engine.backoff_max) == (
        200,
        1.0,
        600.0,
    )
    assert cfg.source.timeout == 30.0
    octo = cfg.targets["octo"]
    assert (octo.max_in_flight, octo.timeout, octo.max_attempts) == (4, 30.0, 8)
    assert cfg.pipelines[0].tag is None


def test_secret_values_lists_every_secret(example_path: Path, env: dict[str, str]) -> None:
    cfg = load_config(example_path, env=env)
    assert sorted(secret_values(cfg)) == sorted(
        ["ch-token-123", "nrs-password-456", "octo-key-789", "np6-key-abc"]
    )


def test_secrets_never_show_in_repr(example_path: Path, env: dict[str, str]) -> None:
    cfg = load_config(example_path, env=env)
    assert "octo-key-789" not in repr(cfg)
    assert "octo-key-789" not in cfg.model_dump_json()


def test_default_reference_used_for_plain_values(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    example_copy["source"]["page_size"] = "${CH_PAGE_SIZE:-250}"
    example_copy["state"]["url"] = "${STATE_URL:-sqlite:///./state.db}"
    cfg = load_config(_write(tmp_path, example_copy), env=env)
    assert cfg.source.page_size == 250
    # a relative SQLite path is relative to the config file's folder
    assert cfg.state.url == f"sqlite:///{(tmp_path / 'state.db').resolve()}"
    env["CH_PAGE_SIZE"] = "1000"
    assert load_config(_write(tmp_path, example_copy), env=env).source.page_size == 1000


def test_references_inside_text_and_dollar_escape(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    example_copy["state"]["url"] = "postgresql+psycopg://syncer:$${x}@${DB_HOST}/syncer"
    env["DB_HOST"] = "db.internal"
    cfg = load_config(_write(tmp_path, example_copy), env=env)
    assert cfg.state.url == "postgresql+psycopg://syncer:${x}@db.internal/syncer"


def test_durations_and_rates(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    example_copy["source"]["poll_interval"] = "500ms"
    example_copy["source"]["timeout"] = 12
    example_copy["targets"]["nrs"]["rate_limit"] = "600/m"
    example_copy["targets"]["octo"]["rate_limit"] = "3600/h"
    example_copy["engine"] = {"backoff_base": "2s", "backoff_max": "1h"}
    cfg = load_config(_write(tmp_path, example_copy), env=env)
    assert cfg.source.poll_interval == 0.5
    assert cfg.source.timeout == 12.0
    assert cfg.targets["nrs"].rate_limit == 10.0
    assert cfg.targets["octo"].rate_limit == 1.0
    assert (cfg.engine.backoff_base, cfg.engine.backoff_max) == (2.0, 3600.0)


def test_empty_secret_is_an_issue(example_path: Path, env: dict[str, str]) -> None:
    env["NP6_API_KEY"] = ""
    with pytest.raises(ConfigError) as caught:
        load_config(example_path, env=env)
    assert caught.value.errors == [
        ConfigIssue(
            "targets.np6.api_key", "secret is empty (environment variable NP6_API_KEY is empty)"
        )
    ]


def test_every_unset_variable_is_reported(example_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(example_path, env={})
    assert [(i.path, i.message) for i in caught.value.errors] == [
        ("source.token", "environment variable CONTACTHUB_TOKEN is not set"),
        ("targets.nrs.username", "environment variable NRS_USERNAME is not set"),
        ("targets.nrs.api_password", "environment variable NRS_API_PASSWORD is not set"),
        ("targets.octo.api_login", "environment variable OCTOPUSH_LOGIN is not set"),
        ("targets.octo.api_key", "environment variable OCTOPUSH_API_KEY is not set"),
        ("targets.np6.api_key", "environment variable NP6_API_KEY is not set"),
    ]


def test_several_errors_reported_at_once(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    example_copy["source"]["page_size"] = 0
    example_copy["targets"]["nrs"]["rate_limit"] = "fast"
    example_copy["targets"]["octo"]["api_key"] = "literal"
    example_copy["pipelines"][0]["fields"]["email"] = "{{ base.contacts.email | lowr }}"
    example_copy["pipelines"][1]["target"] = "octopus"
    example_copy["pipelines"][2]["on_delete"] = "remove_from_list"
    path = _write(tmp_path, example_copy)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    assert caught.value.errors == [
        ConfigIssue("source.page_size", "input should be greater than or equal to 1, got 0"),
        ConfigIssue(
            "targets.nrs.rate_limit",
            "invalid rate 'fast': use <count>/s, <count>/m or <count>/h, e.g. 20/s",
        ),
        ConfigIssue(
            "targets.octo.api_key", "secrets must come from an environment reference like ${NAME}"
        ),
        ConfigIssue("pipelines[0].fields.email", "unknown filter 'lowr' (did you mean 'lower'?)"),
        ConfigIssue(
            "pipelines[1].target", "unknown target 'octopus'; known targets: np6, nrs, octo"
        ),
        ConfigIssue(
            "pipelines[2].on_delete",
            "on_delete 'remove_from_list' is not supported by np6 targets; "
            "use one of: delete, ignore, unsubscribe",
        ),
    ]
    rendered = str(caught.value).splitlines()
    assert len(rendered) == 6
    assert (
        rendered[0]
        == f"{path}: source.page_size: input should be greater than or equal to 1, got 0"
    )


def test_duplicate_yaml_key(tmp_path: Path, example_path: Path, env: dict[str, str]) -> None:
    text = example_path.read_text(encoding="utf-8")
    text = text.replace("  poll_interval: 30s\n", "  poll_interval: 30s\n  page_size: 400\n", 1)
    line = text.splitlines().index("  page_size: 400") + 1
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    assert caught.value.errors == [
        ConfigIssue("", f"line {line}, column 3: duplicate key 'page_size'")
    ]
    assert str(caught.value) == f"{path}: line {line}, column 3: duplicate key 'page_size'"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml", env={})
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: file not found"


def test_numeric_keys_stay_strings(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    path = tmp_path / "keys.yaml"
    text = yaml.safe_dump(example_copy).replace("'1001':", "1001:")
    assert "1001:" in text and "'1001'" not in text
    path.write_text(text, encoding="utf-8")
    assert "1001" in load_config(path, env=env).pipelines[2].fields


def test_resolve_config_path() -> None:
    assert resolve_config_path("a.yaml", env={"SYNCER_CONFIG": "b.yaml"}) == Path("a.yaml")
    assert resolve_config_path(None, env={"SYNCER_CONFIG": "b.yaml"}) == Path("b.yaml")
    with pytest.raises(ConfigError) as caught:
        resolve_config_path(None, env={})
    assert str(caught.value) == "no config file given: pass --config PATH or set SYNCER_CONFIG"


def test_target_models_and_rules_agree() -> None:
    assert set(TARGET_MODELS) == set(RULES)
    for kind, model in TARGET_MODELS.items():
        assert model.model_fields["type"].annotation.__args__ == (kind,)  # type: ignore[union-attr]


def test_every_field_has_a_description() -> None:
    import sys

    from pydantic import BaseModel

    from syncer.config import base, models
    from syncer.targets.registry import target_specs

    # the config's own models, and each target type's (they live in its spec module)
    modules = {models.__name__, base.__name__} | {
        s.config_model.__module__ for s in target_specs().values()
    }
    classes = [
        c
        for name in modules
        for c in vars(sys.modules[name]).values()
        if isinstance(c, type) and issubclass(c, BaseModel) and c.__module__ == name
    ]
    assert len(classes) >= 12
    for cls in classes:
        assert cls.model_config.get("extra") == "forbid", cls
        for name, info in cls.model_fields.items():
            assert info.description, f"{cls.__name__}.{name}"


def test_config_error_is_a_stop_error() -> None:
    from syncer.errors import StopError

    assert issubclass(ConfigError, StopError)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("sqlite:///./state.db", "{dir}/state.db"),
        ("sqlite:///state.db", "{dir}/state.db"),
        ("sqlite:///../up/state.db", "{parent}/up/state.db"),
        ("sqlite:////var/lib/syncer/state.db", "/var/lib/syncer/state.db"),
    ],
)
def test_a_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str], written: str, expected: str
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    example_copy["state"]["url"] = written
    cfg = load_config(_write(folder, example_copy), env=env)
    where = expected.format(dir=folder.resolve(), parent=tmp_path.resolve())
    assert cfg.state.url == f"sqlite:///{where}"


def test_a_postgresql_url_is_left_as_written(
    tmp_path: Path, example_copy: dict[str, Any], env: dict[str, str]
) -> None:
    url = "postgresql+psycopg://syncer@db.internal:5432/syncer?sslmode=require"
    example_copy["state"]["url"] = url
    assert load_config(_write(tmp_path, example_copy), env=env).state.url == url
