"""``syncer probe``: which reading of each doc-silent behaviour the configured APIs have.

The API docs leave some behaviours open; the sandbox has a named switch per open choice
(``docs/sandbox.md``, "Behaviour switches"). This command asks the configured source and
targets (the real APIs in production, the sandbox in tests) which reading holds, with calls
that are safe on a live account:

* read-only calls (Contacthub searches, an NP6 bulk delete of a unicity value no target can
  have), or
* scratch records named ``syncer-probe-<hex>`` that it creates and removes (a 360NRS group
  pair and contact, an Octopush list, an NP6 import definition whose one execution imports a
  file with no values). It never deletes a record it did not create: an Octopush number the
  account already had only leaves the scratch list.

Clean-up (:class:`Scratch`) runs newest record first, each removal on its own (one that fails
does not skip the others), also on Ctrl-C or SIGTERM: an interrupt that arrives while it runs
is held until it has finished. A record it could not remove is named on stderr, to delete by
hand.

A reading that cannot be probed safely (rate limits: it would take exceeding them) is
reported ``not probed`` with the reason. The table is followed by the ``behaviour:`` block of
each target to paste into the config; ``--apply`` records the same readings in the state
database (``target_kv``, key ``behaviour.<switch>``), where the engine takes a switch the
config leaves unset from (:func:`syncer.targets.registry.with_probed_behaviour`). A target
whose config says ``production: true`` is probed only with ``--yes``.
"""

from __future__ import annotations

import json
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import FrameType, TracebackType
from typing import Any

import httpx
import typer
import yaml
from pydantic import BaseModel, ValidationError

from ..errors import StopError
from .common import (
    EXIT_CANNOT_START,
    EXIT_CONFIG,
    EXIT_UNREACHABLE,
    ConfigOption,
    clean_errors,
    fail,
    load,
    open_store,
)

__all__ = ["Finding", "Scratch", "ScratchLeft", "probe_all", "register"]

NOT_PROBED = "not probed"
RATE_LIMIT_REASON = "finding out means exceeding the limit"
PREFIX = "syncer-probe-"
# 0491 570 006: a mobile number the Australian regulator (ACMA) reserves for fiction, so no
# subscriber has it, and it is valid for ``phonenumbers``
SCRATCH_PHONE = "+61491570006"
VND_IMPORT = "application/vnd.mperf.v8.import.v1+json"
# Why: NP6 refuses to delete an import definition while its execution is processing (the
# sandbox's 409; NP6 documents no processing time), so clean-up waits this long at most.
NP6_SETTLE_SECONDS = 15.0
# belt and braces for the NP6 scratch import: even a row NP6 could match changes no target
NO_UPDATE = [{"type": "database", "updateExisting": False, "crushData": False}]


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


class ScratchLeft(StopError):
    """A scratch record the probe created could not be removed."""


@dataclass
class Scratch:
    """What one probe created, each with the call that removes it; leaving the ``with``
    block removes them newest first, whatever ends it (an error, Ctrl-C, SIGTERM)."""

    target: str
    _undo: list[tuple[str, Callable[[], httpx.Response]]] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def add(self, what: str, undo: Callable[[], httpx.Response]) -> None:
        """``what`` was created; ``undo`` removes it (2xx or 404: gone)."""
        self._undo.append((what, undo))

    @contextmanager
    def creating(self) -> Iterator[None]:
        """Hold Ctrl-C and SIGTERM while a record is created and :meth:`add`-ed: one that
        arrived between the answer and ``add`` would leave the record unknown to the
        clean-up. It is raised once the block is done (each call is bounded by the timeout)."""
        with _interrupts_held() as held:
            yield
        if held:
            raise KeyboardInterrupt

    def __enter__(self) -> Scratch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _interrupts_held() as held:
            while self._undo:
                what, undo = self._undo.pop()
                try:
                    answer = undo()
                    gone = answer.is_success or answer.status_code == 404
                    reason = "" if gone else f"answered {answer.status_code}"
                except Exception as error:  # one failed removal must not skip the others
                    gone, reason = False, type(error).__name__
                if not gone:
                    self.left.append(f"{what} ({reason})")
        message = ""
        if self.left:
            message = (
                f"probe could not remove from {self.target}: {'; '.join(self.left)}: "
                "delete them by hand"
            )
        if exc is not None:
            if message:  # the error in flight ends the command: say what was left first
                typer.echo(f"warning: {message}", err=True)
            return
        if held:
            raise KeyboardInterrupt
        if message:
            raise ScratchLeft(message)


@contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM while clean-up runs (main thread only: elsewhere Python
    delivers no signal); yields the signals that arrived, for the caller to act on after."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises :class:`KeyboardInterrupt` while the probe runs, so its clean-up runs
    (Python's default for SIGTERM ends the process at once, skipping every ``finally``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
def _deleter(http: httpx.Client, path: str) -> Callable[[], httpx.Response]:
    return lambda: http.delete(path)


def probe_nrs360(name: str, http: httpx.Client, tcfg: Any) -> list[Finding]:
    """Scratch groups A and B and a scratch contact: a second contact with its e-mail
    (``duplicate_email``), then ``PUT`` it with group B only and read its groups
    (``put_groups``). Everything created is deleted."""
    tag = _scratch()
    email = f"{tag}@example.com"
    with Scratch(name) as scratch:
        groups: list[int] = []
        for suffix in ("a", "b"):
            with scratch.creating():
                made = http.post("/groups", json={"name": f"{tag}-{suffix}"})
                made.raise_for_status()
                group_id = int(made.json()["data"]["id"])
                groups.append(group_id)
                scratch.add(f"group {tag}-{suffix}", _deleter(http, f"/groups/{group_id}"))
        contacts: list[int] = []

        def contact(answer: httpx.Response) -> None:
            contact_id = int(answer.json()["data"]["id"])
            contacts.append(contact_id)
            scratch.add(
                f"contact {contact_id} ({email})", _deleter(http, f"/contacts/{contact_id}")
            )

        with scratch.creating():
            first = http.post("/contacts", json={"email": email, "groupsIds": [groups[0]]})
            first.raise_for_status()
            contact(first)
        with scratch.creating():
            second = http.post("/contacts", json={"email": email, "groupsIds": [groups[0]]})
            if second.status_code in (200, 201):
                contact(second)
        if second.status_code in (200, 201):
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
    return [
        Finding(name, "duplicate_email", duplicate, "scratch record"),
        Finding(name, "put_groups", put_groups, "scratch record"),
        Finding(name, "rate_limit", NOT_PROBED, RATE_LIMIT_REASON),
    ]


# -- Octopush -----------------------------------------------------------------------------------
def probe_octopush(name: str, http: httpx.Client, tcfg: Any) -> list[Finding]:
    """A scratch list: created twice (``existing_list``); a create naming an invalid number
    and the fiction-range number into it (``invalid_number``); a create into a list that does
    not exist (``missing_list``). The lists are deleted; the number is deleted from the
    account only if this probe added it."""
    listed, missing = _scratch(), _scratch()

    def drop_list(list_name: str) -> httpx.Response:
        body: dict[str, Any] = {"phone_numbers": [SCRATCH_PHONE], "list_name": list_name}
        http.request("DELETE", "/contact/delete", json=body)
        return http.request("DELETE", "/contact-list/delete", json={"list_name": list_name})

    def drop_phone() -> httpx.Response:  # only when it was not on the account before
        return http.request("DELETE", "/contact/delete", json={"phone_numbers": [SCRATCH_PHONE]})

    def added(answer: httpx.Response) -> bool:
        items = answer.json().get("items") or []
        return any(
            i.get("phone_number") == SCRATCH_PHONE and i.get("status") == "added" for i in items
        )

    with Scratch(name) as scratch:
        # undone last: the number leaves the account after the lists are gone
        phone_added = False
        scratch.add(
            f"contact {SCRATCH_PHONE}",
            lambda: drop_phone() if phone_added else httpx.Response(204),
        )
        # registered before the create, so an interrupt cannot fall between the two (a
        # random name: a 404 on removal only means it was never made)
        scratch.add(f"list {listed}", lambda: drop_list(listed))
        made = http.request("POST", "/contact-list/create", json={"list_name": listed})
        made.raise_for_status()
        again = http.request("POST", "/contact-list/create", json={"list_name": listed})
        existing = "error" if again.status_code == 409 else "ok" if again.is_success else "?"
        contacts = [{"phone_number": "+1000"}, {"phone_number": SCRATCH_PHONE}]
        create = http.post("/contact/create", json={"list_name": listed, "contacts": contacts})
        if create.status_code == 400:
            invalid = "refuse_call"
        elif create.is_success:
            invalid = "skip_item"
            phone_added = added(create)
        else:
            invalid = f"unknown ({create.status_code})"
        one = [{"phone_number": SCRATCH_PHONE}]
        # removed even if the create below is cut off: a list it made on the fly is ours
        scratch.add(f"list {missing}", lambda: drop_list(missing))
        into = http.post("/contact/create", json={"list_name": missing, "contacts": one})
        if into.status_code == 404:
            missing_list = "error"
        elif into.is_success:
            missing_list = "create"
            phone_added = phone_added or added(into)
        else:
            missing_list = f"unknown ({into.status_code})"
    return [
        Finding(name, "existing_list", existing, "scratch record"),
        Finding(name, "invalid_number", invalid, "scratch record"),
        Finding(name, "missing_list", missing_list, "scratch record"),
        Finding(name, "max_contacts_per_create", NOT_PROBED, "needs hundreds of contacts"),
        Finding(name, "rate_limit", NOT_PROBED, RATE_LIMIT_REASON),
    ]


# -- NP6 ----------------------------------------------------------------------------------------
def probe_np6(name: str, http: httpx.Client, tcfg: Any) -> list[Finding]:
    """A bulk delete of a unicity value no target can have (``unknown_delete`` and
    ``bulk_delete_response``): nothing exists, so nothing is deleted. Then a scratch import
    definition ``syncer-probe-<hex>``: its executions read before any start
    (``no_execution``), then one execution of a file with no values (one line of empty
    cells: a header line, or a record with no unicity value, which NP6 cannot import; the
    definition asks not to update existing targets either), read back (``execution_body``).
    The definition is deleted once the execution has ended."""
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
    found = [
        Finding(name, "unknown_delete", unknown, "read-only"),
        Finding(name, "bulk_delete_response", response, how_response),
        *_probe_np6_imports(name, http, tcfg),
        Finding(name, "rate_limit", NOT_PROBED, RATE_LIMIT_REASON),
    ]
    return found


def _probe_np6_imports(name: str, http: httpx.Client, tcfg: Any) -> list[Finding]:
    vnd = {"Accept": VND_IMPORT}
    settings = getattr(tcfg, "import_", None)
    binding: int | None = settings.binding if settings is not None else None
    tag = _scratch()
    definition: dict[str, Any] = {"name": tag, "features": NO_UPDATE, "source": {"type": "file"}}
    if binding is not None:
        definition["binding"] = binding
    with Scratch(name) as scratch:
        with scratch.creating():
            made = http.post("/imports", json=definition, headers=vnd)
            made_id = (_json_or_none(made) or {}).get("id") if made.is_success else None
            if not isinstance(made_id, int):  # e.g. a key without import rights
                why = f"POST /imports answered {made.status_code}"
                return [
                    Finding(name, "execution_body", NOT_PROBED, why),
                    Finding(name, "no_execution", NOT_PROBED, why),
                ]
            path = f"/imports/{made_id}"

            def remove() -> httpx.Response:
                _np6_settle(http, path, vnd)
                return http.delete(path, headers=vnd)

            scratch.add(f"import definition {tag} (id {made_id})", remove)
        before = http.get(f"{path}/executions", headers=vnd)
        if before.status_code == 404:
            no_execution = "not_found_404"
        elif before.is_success and not _json_or_none(before):
            no_execution = "empty_200"
        else:
            no_execution = f"unknown ({before.status_code})"
        if binding is None:
            return [
                Finding(name, "execution_body", NOT_PROBED, "no import.binding in the config"),
                Finding(name, "no_execution", no_execution, "scratch record"),
            ]
        execution_body = _np6_execution_body(http, path, tag, binding, tcfg.import_.separator)
    return [
        Finding(name, "execution_body", execution_body, "scratch record"),
        Finding(name, "no_execution", no_execution, "scratch record"),
    ]


def _np6_execution_body(
    http: httpx.Client, path: str, tag: str, binding: int, separator: str
) -> str:
    """One execution of the scratch definition ``path`` (a file with no values), read back:
    ``state`` or ``full``; a call refused on the way gives ``unknown (<call> <status>)``."""
    from ..targets.np6.csvfile import Binding

    vnd = {"Accept": VND_IMPORT}
    fmt = http.get(f"/importFormats/{binding}")
    if not fmt.is_success:
        return f"unknown (GET /importFormats {fmt.status_code})"
    read = Binding.from_json(binding, _json_or_none(fmt) or {}, separator)
    # one record of empty cells: no unicity value, so nothing NP6 can import
    blank = (read.separator * max(len(read.columns) - 1, 0) + "\r\n").encode()
    upload = {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f'form-data; filename="{tag}.csv"',
        **vnd,
    }
    sent = http.put(f"{path}/source", content=blank, headers=upload)
    if not sent.is_success:
        return f"unknown (PUT source {sent.status_code})"
    # belt and braces: the execution's features win over the definition's
    run = {"binding": binding, "features": NO_UPDATE}
    started = http.post(f"{path}/executions", json=run, headers=vnd)
    if not started.is_success:
        return f"unknown (POST executions {started.status_code})"
    last = http.get(f"{path}/executions", headers=vnd)
    shown = _json_or_none(last) if last.is_success else None
    if not isinstance(shown, dict) or "state" not in shown:
        return f"unknown ({last.status_code})"
    return "state" if set(shown) == {"state"} else "full"


def _json_or_none(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _np6_settle(http: httpx.Client, path: str, headers: dict[str, str]) -> None:
    """Wait (at most :data:`NP6_SETTLE_SECONDS`) until the definition's last execution is not
    processing (state 0), so it can be deleted."""
    deadline = time.monotonic() + NP6_SETTLE_SECONDS
    delay = 0.05
    while True:
        answer = http.get(f"{path}/executions", headers=headers)
        state = _json_or_none(answer) if answer.is_success else None
        if not isinstance(state, dict) or state.get("state") != 0:
            return
        if time.monotonic() + delay > deadline:
            return  # the delete then fails and the definition is named as left behind
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


Prober = Callable[[str, httpx.Client, Any], list[Finding]]
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
            findings += prober(name, http, tcfg)
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


# -- the behaviour: block -----------------------------------------------------------------------
def behaviour_readings(cfg: Any, findings: list[Finding]) -> dict[str, dict[str, str]]:
    """Per target, the readings that were found and that its ``behaviour:`` model takes
    (never ``not probed`` or ``unknown (...)``), in the model's order."""
    out: dict[str, dict[str, str]] = {}
    for name, tcfg in cfg.targets.items():
        behaviour = getattr(tcfg, "behaviour", None)
        if not isinstance(behaviour, BaseModel):
            continue
        model = type(behaviour)
        got = {f.switch: f.reading for f in findings if f.target == name}
        readings: dict[str, str] = {}
        for switch in model.model_fields:
            if switch not in got:
                continue
            try:
                model.model_validate({switch: got[switch]})
            except ValidationError:
                continue  # not a reading the model knows: nothing to record
            readings[switch] = got[switch]
        if readings:
            out[name] = readings
    return out


def behaviour_yaml(readings: dict[str, dict[str, str]]) -> str:
    """The ``targets:`` fragment with each target's ``behaviour:`` block, to paste."""
    doc = {"targets": {name: {"behaviour": found} for name, found in readings.items()}}
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def record_readings(cfg: Any, readings: dict[str, dict[str, str]]) -> int:
    """Store the readings in ``target_kv`` (``behaviour.<switch>``); how many were stored."""
    from ..targets.registry import BEHAVIOUR_KEY

    store = open_store(cfg)
    try:
        with store.transaction() as conn:
            for name, found in readings.items():
                for switch, reading in found.items():
                    store.kv_set(name, BEHAVIOUR_KEY + switch, reading, conn)
    finally:
        store.close()
    return sum(len(found) for found in readings.values())


def overridden(cfg: Any, readings: dict[str, dict[str, str]]) -> list[str]:
    """One note per switch the config sets to another reading than the API showed."""
    notes = []
    for name, found in readings.items():
        behaviour = cfg.targets[name].behaviour
        for switch, reading in found.items():
            configured = getattr(behaviour, switch)
            if configured is not None and configured != reading:
                notes.append(
                    f"note: {name}: the config says {switch}: {configured}, the API answered "
                    f"{reading}; the config wins"
                )
    return notes


@clean_errors
def probe(
    config: str | None = ConfigOption,
    target: str | None = typer.Option(
        None, "--target", help="Probe only this target (or 'contacthub' for the source)."
    ),
    apply: bool = typer.Option(
        False,
        "--apply",
        help="Record the readings in the state database: the engine uses them for every "
        "behaviour switch the config leaves unset.",
    ),
    yes: bool = typer.Option(
        False, "--yes", help="Also probe targets whose config says production: true."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Find which reading of each doc-silent API behaviour the configured APIs have."""
    cfg = load(config)
    if target is not None and target != "contacthub" and target not in cfg.targets:
        known = ", ".join(["contacthub", *cfg.targets])
        fail(f"unknown target {target!r}; known: {known}", EXIT_CONFIG)
    live = [
        name
        for name, tcfg in cfg.targets.items()
        if target in (None, name) and getattr(tcfg, "production", False)
    ]
    if live and not yes:
        fail(
            f"refusing to probe production target {', '.join(live)} (production: true): the "
            "probe creates and removes scratch records there; run again with --yes",
            EXIT_CONFIG,
        )
    if apply:
        open_store(cfg).close()  # a missing or unusable database fails before any call
    try:
        with _sigterm_interrupts():
            findings = probe_all(cfg, target)
    except httpx.HTTPStatusError as exc:
        request = exc.request
        fail(
            f"probe refused: {request.method} {request.url.path} -> {exc.response.status_code}",
            EXIT_CANNOT_START,
        )
    except httpx.TransportError as exc:
        fail(f"probe: {type(exc).__name__}: {exc}", EXIT_UNREACHABLE)
    readings = behaviour_readings(cfg, findings)
    for note in overridden(cfg, readings):
        typer.echo(note, err=True)
    if apply:
        count = record_readings(cfg, readings)
        typer.echo(
            f"recorded {count} reading(s) of {', '.join(readings) or 'no target'} in the state "
            "database; a behaviour: switch set in the config still wins",
            err=True,
        )
    if as_json:
        typer.echo(json.dumps([asdict(f) for f in findings], indent=2))
        return
    rows = [["target", "switch", "reading", "how"], *(f.row() for f in findings)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if readings:
        typer.echo("\n# the behaviour: block of each target, for the config:")
        typer.echo(behaviour_yaml(readings).rstrip())


def register(app: typer.Typer) -> None:
    """Add the ``probe`` command to ``app``."""
    app.command("probe")(probe)
