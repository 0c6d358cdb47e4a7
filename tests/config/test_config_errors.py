"""Broken configs: each gives exactly the expected issue, at the expected key path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncer.config import ConfigError, ConfigIssue, load_config

Mutation = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting a dotted path ([n] for list items) to ``value``; ... deletes it."""

    def apply(data: dict[str, Any]) -> None:
        parts: list[str | int] = []
        for token in path.replace("]", "").split("."):
            name, *indexes = token.split("[")
            parts.append(name)
            parts.extend(int(i) for i in indexes)
        node: Any = data
        for part in parts[:-1]:
            node = node[part]
        if value is ...:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value

    return apply


def _all(*mutations: Mutation) -> Mutation:
    def apply(data: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(data)

    return apply


def _text(text: str) -> Mutation:
    return lambda data: text


NEWSLETTER = "pipelines[0]"
SMS = "pipelines[1]"
ORDERS = "pipelines[2]"

CASES: list[tuple[str, Mutation, str, str]] = [
    (
        "unknown top-level key",
        _set("extras", 1),
        "extras",
        "unknown key; allowed keys: version, state, source, sources, targets, pipelines, metrics, "
        "engine, delivery, console, retention",
    ),
    (
        "misspelt key gets a suggestion",
        _set("source.pagesize", 100),
        "source.pagesize",
        "unknown key (did you mean 'page_size'?)",
    ),
    (
        "misspelt target key gets a suggestion",
        _set("targets.octo.batchsize", 100),
        "targets.octo.batchsize",
        "unknown key (did you mean 'batch_size'?)",
    ),
    ("missing version", _set("version", ...), "version", "required key is missing"),
    (
        "version 2",
        _set("version", 2),
        "version",
        "unsupported config version 2; this syncer reads version 1",
    ),
    (
        "unknown target type",
        _set("targets.nrs.type", "360"),
        "targets.nrs.type",
        "unknown target type '360'; known types: 360nrs, np6, octopush",
    ),
    (
        "missing target type",
        _set("targets.octo.type", ...),
        "targets.octo.type",
        "required key is missing; known types: 360nrs, np6, octopush",
    ),
    (
        "pipeline with an unknown target",
        _set(f"{NEWSLETTER}.target", "nrs2"),
        f"{NEWSLETTER}.target",
        "unknown target 'nrs2'; known targets: np6, nrs, octo",
    ),
    (
        "bad duration",
        _set("source.poll_interval", "30x"),
        "source.poll_interval",
        "invalid duration '30x': use a number with ms, s, m or h",
    ),
    (
        "zero duration",
        _set("targets.np6.import.flush_every", "0s"),
        "targets.np6.import.flush_every",
        "invalid duration '0s': must be greater than zero",
    ),
    (
        "bad rate",
        _set("targets.nrs.rate_limit", "20/x"),
        "targets.nrs.rate_limit",
        "invalid rate '20/x': use <count>/s, <count>/m or <count>/h, e.g. 20/s",
    ),
    (
        "page_size 0",
        _set("source.page_size", 0),
        "source.page_size",
        "input should be greater than or equal to 1, got 0",
    ),
    (
        "page_size 5000",
        _set("source.page_size", 5000),
        "source.page_size",
        "input should be less than or equal to 4000, got 5000",
    ),
    (
        "max_in_flight 0",
        _set("targets.nrs.max_in_flight", 0),
        "targets.nrs.max_in_flight",
        "input should be greater than or equal to 1, got 0",
    ),
    (
        "template syntax error",
        _set(f"{NEWSLETTER}.fields.email", "{{ base.contacts.email | lower }"),
        f"{NEWSLETTER}.fields.email",
        "template syntax error: unexpected '}' (line 1)",
    ),
    (
        "unknown filter",
        _set(f"{NEWSLETTER}.fields.email", "{{ base.contacts.email | lowr }}"),
        f"{NEWSLETTER}.fields.email",
        "unknown filter 'lowr' (did you mean 'lower'?)",
    ),
    (
        "unknown filter in a group name",
        _set(f"{NEWSLETTER}.groups[1]", "Country {{ base.address.country | shout }}"),
        f"{NEWSLETTER}.groups[1]",
        "unknown filter 'shout'",
    ),
    (
        "field not accepted by 360nrs",
        _set(f"{NEWSLETTER}.fields.mobile", "base.contacts.mobilePhone"),
        f"{NEWSLETTER}.fields.mobile",
        "field 'mobile' is not accepted by 360nrs targets; accepted: countryIso, email, "
        "landline, name, phone, surname, customFields.<key>",
    ),
    (
        "non-numeric np6 field",
        _set(f"{ORDERS}.fields.email", "customer.base.contacts.email"),
        f"{ORDERS}.fields.email",
        "field 'email' is not accepted by np6 targets; accepted: <numeric field id, e.g. 1001>",
    ),
    (
        "neither path nor template",
        _set(f"{NEWSLETTER}.fields.name", "Mario Rossi"),
        f"{NEWSLETTER}.fields.name",
        "'Mario Rossi' is neither a dotted path nor a template; "
        "write a constant as {{ 'Mario Rossi' }}",
    ),
    (
        "literal secret",
        _set("targets.octo.api_key", "s3cr3t"),
        "targets.octo.api_key",
        "secrets must come from an environment reference like ${NAME}",
    ),
    (
        "secret from a default",
        _set("targets.np6.api_key", "${NP6_KEY:-fallback}"),
        "targets.np6.api_key",
        "environment variable NP6_KEY is not set, and secrets must not fall back to a "
        "default written in the file",
    ),
    (
        "unset environment variable",
        _set("source.token", "${CH_TOKEN_MISSING}"),
        "source.token",
        "environment variable CH_TOKEN_MISSING is not set",
    ),
    (
        "unset variable in a number field reports once",
        _set("source.page_size", "${PAGE_SIZE}"),
        "source.page_size",
        "environment variable PAGE_SIZE is not set",
    ),
    (
        "malformed reference",
        _set("targets.np6.api_key", "${NP6_API_KEY"),
        "targets.np6.api_key",
        "malformed environment reference '${NP6_API_KEY': use ${NAME} or ${NAME:-default}",
    ),
    (
        "groups on an octopush pipeline",
        _set(f"{SMS}.groups", ["VIP"]),
        f"{SMS}.groups",
        "groups are only for 360nrs targets; target 'octo' is octopush",
    ),
    (
        "list on a 360nrs pipeline",
        _set(f"{NEWSLETTER}.list", "Newsletter"),
        f"{NEWSLETTER}.list",
        "list is only for octopush targets; target 'nrs' is 360nrs",
    ),
    (
        "missing list on an octopush pipeline",
        _set(f"{SMS}.list", ...),
        f"{SMS}.list",
        "required for octopush targets: the list name",
    ),
    (
        "tag on a 360nrs pipeline",
        _set(f"{NEWSLETTER}.tag", "vip"),
        f"{NEWSLETTER}.tag",
        "tag is only for octopush targets; target 'nrs' is 360nrs",
    ),
    (
        "tag longer than 20 characters",
        _set(f"{SMS}.tag", "a-very-long-tag-name-x"),
        f"{SMS}.tag",
        "string should have at most 20 characters, got 'a-very-long-tag-name-x'",
    ),
    (
        "on_delete not supported by np6",
        _set(f"{ORDERS}.on_delete", "remove_from_list"),
        f"{ORDERS}.on_delete",
        "on_delete 'remove_from_list' is not supported by np6 targets; "
        "use one of: delete, ignore, unsubscribe",
    ),
    (
        "on_delete not supported by octopush",
        _set(f"{SMS}.on_delete", "unsubscribe"),
        f"{SMS}.on_delete",
        "on_delete 'unsubscribe' is not supported by octopush targets; "
        "use one of: delete, ignore, remove_from_list",
    ),
    (
        "event_types on a customer pipeline",
        _set(f"{NEWSLETTER}.event_types", ["completedOrder"]),
        f"{NEWSLETTER}.event_types",
        "only for event pipelines (entity: event)",
    ),
    (
        "empty event_types",
        _set(f"{ORDERS}.event_types", []),
        f"{ORDERS}.event_types",
        "list should have at least 1 item after validation, not 0",
    ),
    (
        "duplicate pipeline names",
        _set(f"{SMS}.name", "newsletter"),
        f"{SMS}.name",
        "duplicate pipeline name 'newsletter' (also pipelines[0])",
    ),
    (
        "pipeline name not a slug",
        _set(f"{NEWSLETTER}.name", "News Letter"),
        f"{NEWSLETTER}.name",
        "invalid pipeline name 'News Letter': use lower-case letters, digits, '-' and '_'",
    ),
    (
        "unknown entity",
        _set(f"{NEWSLETTER}.entity", "customers"),
        f"{NEWSLETTER}.entity",
        "input should be 'customer' or 'event', got 'customers'",
    ),
    (
        "unknown consent",
        _set(f"{NEWSLETTER}.when.consent", "marketing.automatic.mail"),
        f"{NEWSLETTER}.when.consent",
        "unknown consent 'marketing.automatic.mail'; known consents: "
        "marketing.traditional.telephonic, marketing.traditional.papery, "
        "marketing.automatic.sms, marketing.automatic.email, marketing.automatic.push, "
        "marketing.automatic.im, marketing.automatic.telephonic, profiling.classic, "
        "profiling.online, softSpam.email, softSpam.papery, thirdPartyTransfer.profiling, "
        "thirdPartyTransfer.marketing",
    ),
    (
        "bad path in present",
        _set(f"{NEWSLETTER}.when.present", ["base contacts"]),
        f"{NEWSLETTER}.when.present[0]",
        "invalid path 'base contacts': use a dotted path like base.firstName",
    ),
    (
        "octopush pipeline without its key field",
        _set(f"{SMS}.fields.phone_number", ...),
        f"{SMS}.fields",
        "octopush pipelines must map phone_number",
    ),
    (
        "360nrs phone without countryIso",
        _set(f"{NEWSLETTER}.fields.countryIso", ...),
        f"{NEWSLETTER}.fields.phone",
        "360nrs needs 'countryIso' mapped too when 'phone' is mapped",
    ),
    (
        "np6 pipeline without fields",
        _set(f"{ORDERS}.fields", {}),
        f"{ORDERS}.fields",
        "np6 pipelines must map at least one field",
    ),
    (
        "np6 import mode without import settings",
        _set("targets.np6.import", ...),
        "targets.np6",
        "'import' settings (at least 'binding') are required in import mode",
    ),
    (
        "engine backoff order",
        _set("engine", {"backoff_base": "1m", "backoff_max": "30s"}),
        "engine",
        "backoff_max must not be shorter than backoff_base",
    ),
    (
        "bad metrics address",
        _set("metrics", {"address": "localhost"}),
        "metrics.address",
        "invalid address 'localhost': use host:port, e.g. 127.0.0.1:9464",
    ),
    (
        "YAML syntax error",
        _text("version: 1\nsource:\n  type: contacthub\n  token: [unclosed\n"),
        "",
        "YAML syntax error at line 5, column 1: expected ',' or ']', but got '<stream end>'",
    ),
    ("empty file", _text(""), "", "file is empty; expected 'version: 1' etc."),
    ("top level is a list", _text("- 1\n- 2\n"), "", "top level must be a mapping, not a list"),
]


def _load(tmp_path: Path, data: dict[str, Any], mutation: Mutation, env: dict[str, str]) -> None:
    changed = copy.deepcopy(data)
    text = mutation(changed)
    path = tmp_path / "broken.yaml"
    path.write_text(text if isinstance(text, str) else yaml.safe_dump(changed), encoding="utf-8")
    load_config(path, env=env)


@pytest.mark.parametrize(
    ("mutation", "path", "message"),
    [pytest.param(m, p, msg, id=name) for name, m, p, msg in CASES],
)
def test_broken_config_reports_exactly_one_issue(
    tmp_path: Path,
    example_data: dict[str, Any],
    env: dict[str, str],
    mutation: Mutation,
    path: str,
    message: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, example_data, mutation, env)
    assert caught.value.errors == [ConfigIssue(path, message)]
    assert caught.value.file == str(tmp_path / "broken.yaml")


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
