"""Shared helpers for tests that run syncer against the Contacthub simulator over real HTTP.

Imported by tests in other folders after putting this folder on ``sys.path``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from syncer.config.loader import load_config
from syncer.config.models import SyncerConfig
from syncer.sandbox.contacthub import (
    DEFAULT_NODE_ID,
    DEFAULT_TOKEN,
    DEFAULT_WORKSPACE_ID,
    ContacthubBehaviour,
    ContacthubSimulator,
)
from syncer.sandbox.serve import ServedApp
from syncer.source.contacthub import ContacthubClient

WS, NODE, TOKEN = DEFAULT_WORKSPACE_ID, DEFAULT_NODE_ID, DEFAULT_TOKEN
STREAM = f"{WS}/{NODE}"
ENV = {"CH_TOKEN": TOKEN, "NRS_USER": "sandbox-user", "NRS_PASSWORD": "sandbox-api-password"}

PIPELINES = """
- name: newsletter
  target: nrs
  entity: customer
  when: {consent: marketing.automatic.email}
  fields: {email: base.contacts.email}
  on_delete: delete
- name: everyone
  target: nrs
  entity: customer
  fields: {email: base.contacts.email}
- name: orders
  target: nrs
  entity: event
  event_types: [completedOrder]
  fields: {email: customer.base.contacts.email}
"""
NEVER = """
- name: nobody
  target: nrs
  entity: customer
  when: {match: {extra: "never-set-by-anyone"}}
  fields: {email: base.contacts.email}
"""


@contextmanager
def served_contacthub(**behaviour: Any) -> Iterator[tuple[ContacthubSimulator, ServedApp]]:
    sim = ContacthubSimulator(behaviour=ContacthubBehaviour(**behaviour))
    with ServedApp(sim.asgi()) as served:
        yield sim, served


def api(served: ServedApp) -> httpx.Client:
    """A client on the simulator's root with the sandbox token (for writes and admin calls)."""
    return httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {TOKEN}"})


def source(served: ServedApp, **kw: Any) -> ContacthubClient:
    http = httpx.Client(
        base_url=served.url + "/hub/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    return ContacthubClient(http, WS, NODE, **kw)


def write_config(
    tmp_path: Path,
    ch_url: str,
    state_url: str,
    *,
    pipelines: str = PIPELINES,
    page_size: int = 500,
    poll_interval: str = "1s",
    nrs_url: str = "http://127.0.0.1:9/api/rest",
    metrics_address: str = "127.0.0.1:0",  # a free port: two daemons on one host
) -> Path:
    body = textwrap.dedent(
        f"""\
        version: 1
        state: {{url: "{state_url}"}}
        metrics: {{address: "{metrics_address}"}}
        source:
          type: contacthub
          base_url: {ch_url}/hub/v1
          workspace_id: {WS}
          node_id: {NODE}
          token: ${{CH_TOKEN}}
          page_size: {page_size}
          poll_interval: {poll_interval}
          timeout: 10s
        targets:
          nrs:
            type: 360nrs
            base_url: {nrs_url}
            username: ${{NRS_USER}}
            api_password: ${{NRS_PASSWORD}}
        pipelines:
        """
    )
    path = tmp_path / "syncer.yaml"
    path.write_text(body + textwrap.indent(textwrap.dedent(pipelines).strip() + "\n", "  "))
    return path


def config(path: Path) -> SyncerConfig:
    return load_config(path, env=ENV)


def stream_entries(sim: ContacthubSimulator) -> list[tuple[str, str, str]]:
    """``(operation, entity type, id)`` of every update of the default node, in order."""
    log = sim.workspaces[WS].updates
    return [(op, kind.lower(), data["id"]) for op, kind, node, data in log.entries if node == NODE]


def customer_body(external_id: str, *, email_consent: bool = True, **extra: Any) -> dict[str, Any]:
    consent = {"status": email_consent, "limitation": False, "objection": False}
    return {
        "nodeId": NODE,
        "externalId": external_id,
        "base": {"firstName": external_id, "contacts": {"email": f"{external_id}@example.com"}},
        "consents": {"marketing": {"automatic": {"email": consent}}},
        **extra,
    }
