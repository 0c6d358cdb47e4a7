"""``syncer check``: can syncer reach and use the source and every target (read-only).
``syncer probe``: which reading of each doc-silent behaviour the configured APIs have.

The API docs leave some behaviours open; the sandbox has a named switch per open choice
(``docs/sandbox.md``, "Behaviour switches"). This command asks the configured source and
targets (the real APIs in production, the sandbox in tests) which reading holds, with calls
that are safe on a live account:

* read-only calls (Contacthub searches, an NP6 bulk delete of a unicity value no target can
  have), or
* scratch records named ``syncer-probe-<hex>`` that it creates and removes in a ``finally``
  (a 360NRS group pair and contact, an Octopush list). It never deletes a record it did not
  create: an Octopush number the account already had only leaves the scratch list.

A reading that cannot be probed safely (rate limits: it would take exceeding them) is
reported ``not probed`` with the reason. syncer reaches the same end state under every reading
(``tests/e2e/test_behaviour_matrix.py``), so the table is for the operator: it says which
sandbox switch settings match production. ``--json`` prints the same rows as JSON.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import typer

from .common import (
    EXIT_CANNOT_START,
    EXIT_CONFIG,
    EXIT_UNREACHABLE,
    ConfigOption,
    clean_errors,
    fail,
    load,
)

__all__ = ["Finding", "probe_all", "register"]

NOT_PROBED = "not probed"
RATE_LIMIT_REASON = "finding out means exceeding the limit"
PREFIX = "syncer-probe-"
# 0491 570 006: a mobile number the Australian regulator (ACMA) reserves for fiction, so no
# subscriber has it, and it is valid for ``phonenumbers``
SCRATCH_PHONE = "+61491570006"


@dataclass(frozen=True)
class Finding:
    """One switch's reading on one configured API."""

    target: str
    switch: str
    reading: str
    how: str  # "read-only", "scratch record" or the reason it was not probed

    def row(self) -> list[str]:
        return [self.target, self.switch, self.reading, self.how]


def _scratch() -> str:
    return PREFIX + secrets.token_hex(4)


# -- Contacthub ---------------------------------------------------------------------------------
def probe_contacthub(http: httpx.Client, workspace: str, node: str) -> list[Finding]:
    """Read-only: one search without ``size``, one with ``size=51``."""
    path = f"/workspaces/{workspace}/customers"
    answer = http.get(path, params={"nodeId": node})
    answer.raise_for_status()
    page = answer.json().get("page") or {}
    legacy = "totalUnfilteredElements" in page
    current = "maxElements" in page or "maxPages" in page
    vintage = "union" if legacy and current else "legacy" if legacy else "current"
    big = http.get(path, params={"nodeId": node, "size": 51})
    max_size = "50" if big.status_code == 400 else f"more than 50 ({big.status_code})"
    name = "contacthub"
    return [
        Finding(name, "default_page_size", str(page.get("size")), "read-only"),
        Finding(name, "page_object", vintage, "read-only"),
        Finding(name, "max_page_size", max_size, "read-only"),
        Finding(name, "rate_limit", NOT_PROBED, RATE_LIMIT_REASON),
    ]


# -- 360NRS -------------------------------------------------------------------------------------
def probe_nrs360(name: str, http: httpx.Client) -> list[Finding]:
    """Scratch groups A and B and a scratch contact: a second contact with its e-mail
    (``duplicate_email``), then ``PUT`` it with group B only and read its groups
    (``put_groups``). Everything created is deleted."""
    tag = _scratch()
    email = f"{tag}@example.com"
    groups: list[int] = []
    contacts: list[int] = []
    try:
        for suffix in ("a", "b"):
            made = http.post("/groups", json={"name": f"{tag}-{suffix}"})
            made.raise_for_status()
            groups.append(int(made.json()["data"]["id"]))
        first = http.post("/contacts", json={"email": email, "groupsIds": [groups[0]]})
        first.raise_for_status()
        contacts.append(int(first.json()["data"]["id"]))
        second = http.post("/contacts", json={"email": email, "groupsIds": [groups[0]]})
        if second.status_code in (200, 201):
            contacts.append(int(second.json()["data"]["id"]))
            duplicate = "accept"
        elif second.status_code == 422:
            duplicate = "refuse"
        else:
            duplicate = f"unknown ({second.status_code})"
        http.put(
            f"/contacts/{contacts[0]}", json={"email": email, "groupsIds": [groups[1]]}
        ).raise_for_status()
        shown = http.get(f"/contacts/{contacts[0]}", params={"include": "groups"})
        shown.raise_for_status()
        listed = (shown.json().get("data") or {}).get("groups") or []
        if isinstance(listed, dict):
            listed = listed.get("data") or []
        ids = {int(g["id"]) for g in listed if isinstance(g, dict)}
        put_groups = "add" if groups[0] in ids else "replace"
    finally:
        for contact_id in contacts:
            http.delete(f"/contacts/{contact_id}")
        for group_id in groups:
            http.delete(f"/groups/{group_id}")
    return [
        Finding(name, "duplicate_email", duplicate, "scratch record"),
        Finding(name, "put_groups", put_groups, "scratch record"),
        Finding(name, "rate_limit", NOT_PROBED, RATE_LIMIT_REASON),
    ]


# -- Octopush -----------------------------------------------------------------------------------
def probe_octopush(name: str, http: httpx.Client) -> list[Finding]:
    """A scratch list: created twice (``existing_list``); a create naming an invalid number
    and the fiction-range number into it (``invalid_number``); a create into a list that does
    not exist (``missing_list``). The lists are deleted; the number is deleted from the
    account only if this probe added it."""
    listed, missing = _scratch(), _scratch()
    lists: list[str] = []
    added_phone = False
    try:
        http.request("POST", "/contact-list/create", json={"list_name": listed}).raise_for_status()
        lists.append(listed)
        again = http.request("POST", "/contact-list/create", json={"list_name": listed})
        existing = "error" if again.status_code == 409 else "ok" if again.is_success else "?"
        contacts = [{"phone_number": "+1000"}, {"phone_number": SCRATCH_PHONE}]
        create = http.post("/contact/create", json={"list_name": listed, "contacts": contacts})
        if create.status_code == 400:
            invalid = "refuse_call"
        elif create.is_success:
            items = create.json().get("items") or []
            invalid = "skip_item"
            added_phone = any(
                i.get("phone_number") == SCRATCH_PHONE and i.get("status") == "added" for i in items
            )
        else:
            invalid = f"unknown ({create.status_code})"
        one = [{"phone_number": SCRATCH_PHONE}]
        into = http.post("/contact/create", json={"list_name": missing, "contacts": one})
        if into.status_code == 404:
            missing_list = "error"
        elif into.is_success:
            missing_list = "create"
            lists.append(missing)
            items = into.json().get("items") or []
            added_phone = added_phone or any(i.get("status") == "added" for i in items)
        else:
            missing_list = f"unknown ({into.status_code})"
    finally:
        for list_name in lists:
            body: dict[str, Any] = {"phone_numbers": [SCRATCH_PHONE], "list_name": list_name}
            http.request("DELETE", "/contact/delete", json=body)
            http.request("DELETE", "/contact-list/delete", json={"list_name": list_name})
        if added_phone:  # it was not on the account before this probe
            http.request("DELETE", "/contact/delete", json={"phone_numbers": [SCRATCH_PHONE]})
    return [
        Finding(name, "existing_list", existing, "scratch record"),
        Finding(name, "invalid_number", invalid, "scratch record"),
        Finding(name, "missing_list", missing_list, "scratch record"),
        Finding(name, "max_contacts_per_create", NOT_PROBED, "needs hundreds of contacts"),
        Finding(name, "rate_limit", NOT_PROBED, RATE_LIMIT_REASON),
    ]


# -- NP6 ----------------------------------------------------------------------------------------
def probe_np6(name: str, http: httpx.Client) -> list[Finding]:
    """A bulk delete of a unicity value no target can have (``unknown_delete`` and
    ``bulk_delete_response``); nothing exists, so nothing is deleted."""
    body = {"type": "unicity", "value": [[f"{_scratch()}@example.invalid"]]}
    answer = http.request(
        "DELETE", "/targets", json=body, headers={"Accept": "application/vnd.np6.cm.v1"}
    )
    if answer.status_code == 404:
        unknown, response = "not_found_404", NOT_PROBED
    elif answer.status_code == 204:
        unknown, response = "empty_200", "empty"
    elif answer.is_success:
        unknown, response = "empty_200", "list"
    else:
        unknown = response = f"unknown ({answer.status_code})"
    how_response = "read-only" if response != NOT_PROBED else "the 404 hides it"
    return [
        Finding(name, "unknown_delete", unknown, "read-only"),
        Finding(name, "bulk_delete_response", response, how_response),
        Finding(name, "execution_body", NOT_PROBED, "needs an import run"),
        Finding(name, "no_execution", NOT_PROBED, "needs a scratch import definition"),
        Finding(name, "rate_limit", NOT_PROBED, RATE_LIMIT_REASON),
    ]


Prober = Callable[[str, httpx.Client], list[Finding]]
PROBERS: dict[str, Prober] = {"360nrs": probe_nrs360, "octopush": probe_octopush, "np6": probe_np6}


def probe_all(cfg: Any, only: str | None = None) -> list[Finding]:
    """Every finding for the source (unless ``only`` names a target) and the targets."""
    findings: list[Finding] = []
    if only is None or only == "contacthub":
        src = cfg.source
        token = src.token.get_secret_value()
        with httpx.Client(
            base_url=src.base_url.rstrip("/"),
            timeout=src.timeout,
            headers={"Authorization": f"Bearer {token}"},
        ) as http:
            findings += probe_contacthub(http, src.workspace_id, src.node_id)
    for name, tcfg in cfg.targets.items():
        prober = PROBERS.get(tcfg.type)
        if only not in (None, name) or prober is None:
            continue
        with target_http(tcfg) as http:
            findings += prober(name, http)
    return findings


def target_http(tcfg: Any) -> httpx.Client:
    """A client with the target's base URL and credentials, as its own client sends them
    (360NRS Basic auth, Octopush ``api-login``/``api-key``, NP6 ``X-Key``)."""
    from ..logs import add_basic_auth_secret

    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    auth: httpx.Auth | None = None
    if tcfg.type == "360nrs":
        password = tcfg.api_password.get_secret_value()
        auth = httpx.BasicAuth(tcfg.username, password)
        add_basic_auth_secret(tcfg.username, password)
    elif tcfg.type == "octopush":
        headers |= {"api-login": tcfg.api_login, "api-key": tcfg.api_key.get_secret_value()}
    elif tcfg.type == "np6":
        headers["X-Key"] = tcfg.api_key.get_secret_value()
    timeout = float(getattr(tcfg, "timeout", 30.0))
    return httpx.Client(
        base_url=str(tcfg.base_url).rstrip("/"), headers=headers, auth=auth, timeout=timeout
    )


@clean_errors
def probe(
    config: str | None = ConfigOption,
    target: str | None = typer.Option(
        None, "--target", help="Probe only this target (or 'contacthub' for the source)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Find which reading of each doc-silent API behaviour the configured APIs have."""
    cfg = load(config)
    if target is not None and target != "contacthub" and target not in cfg.targets:
        known = ", ".join(["contacthub", *cfg.targets])
        fail(f"unknown target {target!r}; known: {known}", EXIT_CONFIG)
    try:
        findings = probe_all(cfg, target)
    except httpx.HTTPStatusError as exc:
        request = exc.request
        fail(
            f"probe refused: {request.method} {request.url.path} -> {exc.response.status_code}",
            EXIT_CANNOT_START,
        )
    except httpx.TransportError as exc:
        fail(f"probe: {type(exc).__name__}: {exc}", EXIT_UNREACHABLE)
    if as_json:
        typer.echo(json.dumps([asdict(f) for f in findings], indent=2))
        return
    rows = [["target", "switch", "reading", "how"], *(f.row() for f in findings)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def check_all(cfg: Any, only: str | None = None) -> list[tuple[str, int, str]]:
    """``(name, exit code, message)`` per checked API: the source's last stream offset, each
    target's own start-up check (credentials, account, and for NP6 the unicity field)."""
    from .common import EXIT_OK, describe_error
    from .sync_cmd import source_client

    results: list[tuple[str, int, str]] = []

    def one(name: str, call: Callable[[], str]) -> None:
        try:
            results.append((name, EXIT_OK, call()))
        except Exception as exc:  # every failure is one line with its exit code
            code, message = describe_error(exc)
            results.append((name, code, message.removeprefix("error: ")))

    if only in (None, "contacthub"):

        def source() -> str:
            client = source_client(cfg)
            try:
                return f"ok: stream at offset {client.last_offset()}"
            finally:
                client.http.close()

        one("contacthub", source)
    from ..targets.registry import build_target

    for name, tcfg in cfg.targets.items():
        if only not in (None, name):
            continue

        def target(name: str = name, tcfg: Any = tcfg) -> str:
            built = build_target(name, tcfg)
            try:
                built.check()
            finally:
                built.close()
            return f"ok: {tcfg.type} answers and accepts the credentials"

        one(name, target)
    return results


@clean_errors
def check(
    config: str | None = ConfigOption,
    target: str | None = typer.Option(
        None, "--target", help="Check only this target (or 'contacthub' for the source)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Read-only connection test of the source and every target, one line each (exit 3 on a
    refusal, 4 when one does not answer)."""
    cfg = load(config)
    if target is not None and target != "contacthub" and target not in cfg.targets:
        known = ", ".join(["contacthub", *cfg.targets])
        fail(f"unknown target {target!r}; known: {known}", EXIT_CONFIG)
    results = check_all(cfg, target)
    if as_json:
        rows = [{"name": n, "exit": c, "message": m} for n, c, m in results]
        typer.echo(json.dumps(rows, indent=2))
    else:
        width = max(len(n) for n, _, _ in results)
        for name, _, message in results:
            typer.echo(f"{name:<{width}}  {message}")
    worst = max(code for _, code, _ in results)
    if worst:
        raise typer.Exit(worst)


def register(app: typer.Typer) -> None:
    """Add the ``check`` and ``probe`` commands to ``app``."""
    app.command("check")(check)
    app.command("probe")(probe)
