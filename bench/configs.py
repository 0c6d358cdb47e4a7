"""Bench configs: YAML files in a temp dir pointing at the sandbox, secrets as env references.

Every pipeline here is written for the data :mod:`syncer.sandbox.datagen` generates (most
customers have an e-mail, ~87 % a usable mobile phone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from syncer.sandbox.contacthub import DEFAULT_NODE_ID, DEFAULT_WORKSPACE_ID

from .sandbox import SandboxProcess


def source(
    sb: SandboxProcess, *, page_size: int = 4000, poll_interval: str = "1s"
) -> dict[str, Any]:
    return {
        "type": "contacthub",
        "base_url": sb.api("contacthub"),
        "workspace_id": DEFAULT_WORKSPACE_ID,
        "node_id": DEFAULT_NODE_ID,
        "token": "${BENCH_CONTACTHUB_TOKEN}",
        "page_size": page_size,
        "poll_interval": poll_interval,
    }


def nrs_target(
    sb: SandboxProcess,
    *,
    max_in_flight: int = 16,
    rate_limit: str | None = None,
    lookup_before_create: bool | None = None,
) -> dict[str, Any]:
    target: dict[str, Any] = {
        "type": "360nrs",
        "base_url": sb.api("nrs360"),
        "username": "${BENCH_NRS_USERNAME}",
        "api_password": "${BENCH_NRS_API_PASSWORD}",
        "max_in_flight": max_in_flight,
    }
    if rate_limit:
        target["rate_limit"] = rate_limit
    if lookup_before_create is not None:
        target["lookup_before_create"] = lookup_before_create
    return target


def octopush_target(sb: SandboxProcess, *, batch_size: int = 500) -> dict[str, Any]:
    return {
        "type": "octopush",
        "base_url": sb.api("octopush"),
        "api_login": "${BENCH_OCTOPUSH_LOGIN}",
        "api_key": "${BENCH_OCTOPUSH_API_KEY}",
        "batch_size": batch_size,
        "max_in_flight": 4,
    }


def np6_target(
    sb: SandboxProcess, *, max_rows: int = 50_000, flush_every: str = "60s"
) -> dict[str, Any]:
    return {
        "type": "np6",
        "base_url": sb.api("np6"),
        "api_key": "${BENCH_NP6_API_KEY}",
        "mode": "import",
        "import": {"binding": 1234, "max_rows": max_rows, "flush_every": flush_every},
        "max_in_flight": 4,
    }


# Customer pipelines, one per target kind.
NRS_PIPELINE: dict[str, Any] = {
    "name": "bench-nrs",
    "target": "nrs",
    "entity": "customer",
    "when": {"present": ["base.contacts.email"]},
    "fields": {
        "email": "{{ base.contacts.email | lower | trim }}",
        "name": "base.firstName",
        "surname": "base.lastName",
    },
    "groups": ["Bench"],
    "on_delete": "delete",
}

OCTOPUSH_PIPELINE: dict[str, Any] = {
    "name": "bench-octo",
    "target": "octo",
    "entity": "customer",
    "when": {"present": ["base.contacts.mobilePhone"]},
    "list": "Bench",
    "fields": {
        "phone_number": (
            "{{ base.contacts.mobilePhone | phone_e164(base.address.country, "
            "default_region='IT') }}"
        ),
        "first_name": "base.firstName",
        "last_name": "base.lastName",
    },
    "on_delete": "remove_from_list",
}

NP6_PIPELINE: dict[str, Any] = {
    "name": "bench-np6",
    "target": "np6",
    "entity": "customer",
    "when": {"present": ["base.contacts.email"]},
    "fields": {
        "1001": "{{ base.contacts.email | lower | trim }}",
        "1002": "externalId",
        "1003": "extended.points",
        "1004": "{{ registeredAt | datetime('%Y-%m-%d') }}",
    },
    "on_delete": "ignore",
}


def write_config(
    workdir: Path,
    *,
    source_cfg: dict[str, Any],
    targets: dict[str, dict[str, Any]],
    pipelines: list[dict[str, Any]],
    name: str = "bench.yaml",
    db_name: str = "state.db",
    engine: dict[str, Any] | None = None,
) -> Path:
    """Write a config to ``workdir/name`` with its SQLite state DB beside it; returns the path."""
    workdir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "version": 1,
        "state": {"url": f"sqlite:///{workdir / db_name}"},
        "source": source_cfg,
        "targets": targets,
        "pipelines": pipelines,
        "metrics": {"address": "127.0.0.1:0"},
    }
    if engine:
        doc["engine"] = engine
    path = workdir / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
