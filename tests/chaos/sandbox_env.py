"""Shared by the bad-input, secrets and database-fault chaos tests: the four simulators served
over real HTTP with distinctive credentials, a config using all three target types (the
pipelines of ``config/example.yaml``), and helpers to run the real ``syncer`` binary.

Imported by the tests of this folder (pytest puts the folder on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from starlette.types import ASGIApp

from syncer.sandbox.contacthub import ContacthubSimulator
from syncer.sandbox.contacthub.behaviour import DEFAULT_NODE_ID, DEFAULT_WORKSPACE_ID
from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.nrs360 import Nrs360Simulator
from syncer.sandbox.octopush import OctopushSimulator
from syncer.sandbox.serve import ServedApp

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.yaml"
SYNCER = str(Path(sys.executable).with_name("syncer"))
WS, NODE = DEFAULT_WORKSPACE_ID, DEFAULT_NODE_ID
STREAM = f"{WS}/{NODE}"

# Distinctive values for the six secrets the example config references: a leak of any of
# them (or of its base64 form) is unmistakable in a scan.
SECRETS = {
    "CONTACTHUB_TOKEN": "zqCHTOKENq7e41b9c2d0a8f3",
    "NRS_USERNAME": "zqNRSUSERq5c83e1f7",
    "NRS_API_PASSWORD": "zqNRSPASSq2a94d6b0e8c1",
    "OCTOPUSH_LOGIN": "zqoctologinq3f@example.com",
    "OCTOPUSH_API_KEY": "zqOCTOKEYq9d17a3c5e2b4",
    "NP6_API_KEY": "zqNP6KEYq6e20b8d4f1a7",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sandbox:
    """The four simulators, served; ``urls`` by simulator name."""

    contacthub: ContacthubSimulator
    nrs: Nrs360Simulator
    octo: OctopushSimulator
    np6: Np6Simulator
    urls: dict[str, str] = field(default_factory=dict)

    def admin(self, name: str, what: str, body: Any = None, method: str = "GET") -> Any:
        response = httpx.request(
            method, f"{self.urls[name]}/_sandbox/{what}", json=body, timeout=120
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def load(self, customers: list[Any], events: list[Any] | None = None) -> Any:
        """Customers (and events) into Contacthub and onto its update stream, unvalidated."""
        body = {"customers": customers, "events": events or [], "append_updates": True}
        return self.admin("contacthub", "load", body, method="POST")

    def state(self, name: str) -> Any:
        return self.admin(name, "state")


@contextmanager
def sandbox(
    secrets: dict[str, str] = SECRETS,
    wrap_contacthub: Callable[[ASGIApp], ASGIApp] | None = None,
) -> Iterator[Sandbox]:
    """Serve the four simulators accepting ``secrets`` as their credentials."""
    sims = Sandbox(
        ContacthubSimulator(WS, (NODE,), secrets["CONTACTHUB_TOKEN"]),
        Nrs360Simulator(username=secrets["NRS_USERNAME"], api_password=secrets["NRS_API_PASSWORD"]),
        OctopushSimulator(api_login=secrets["OCTOPUSH_LOGIN"], api_key=secrets["OCTOPUSH_API_KEY"]),
        Np6Simulator(api_key=secrets["NP6_API_KEY"]),
    )
    with ExitStack() as stack:
        apps: dict[str, ASGIApp] = {
            "contacthub": sims.contacthub.asgi(),
            "nrs360": sims.nrs.asgi(),
            "octopush": sims.octo.asgi(),
            "np6": sims.np6.asgi(),
        }
        if wrap_contacthub is not None:
            apps["contacthub"] = wrap_contacthub(apps["contacthub"])
        for name, app in apps.items():
            sims.urls[name] = stack.enter_context(ServedApp(app)).url
        yield sims


def config_doc(sb: Sandbox, state_url: str, **source: Any) -> dict[str, Any]:
    """``config/example.yaml`` (three targets, three pipelines) pointed at the sandbox;
    credentials stay ``${VAR}`` references."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    doc["state"] = {"url": state_url}
    doc["source"].update(
        base_url=sb.urls["contacthub"] + "/hub/v1",
        workspace_id=WS,
        node_id=NODE,
        poll_interval="1s",
        timeout="10s",
        **source,
    )
    targets = doc["targets"]
    targets["nrs"]["base_url"] = sb.urls["nrs360"] + "/api/rest"
    targets["octo"]["base_url"] = sb.urls["octopush"] + "/v1/public"
    targets["np6"]["base_url"] = sb.urls["np6"]
    targets["np6"]["import"]["flush_every"] = "1s"
    for target in targets.values():
        target.pop("rate_limit", None)
    doc["engine"] = {"backoff_base": "100ms", "backoff_max": "500ms"}
    doc["metrics"] = {"address": f"127.0.0.1:{free_port()}"}
    return doc


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def env_for(cfg: Path, secrets: dict[str, str] = SECRETS) -> dict[str, str]:
    return {**os.environ, **secrets, "SYNCER_CONFIG": str(cfg)}


def cli(
    cfg: Path, *args: str, secrets: dict[str, str] = SECRETS, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """The real ``syncer`` binary, JSON logs on stderr."""
    return subprocess.run(
        [SYNCER, "--log-json", *args],
        env=env_for(cfg, secrets),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Background:
    """``syncer`` running in the background (``syncer run``), its stdout and stderr (JSON
    logs) going to files, so a chatty process never blocks on a full pipe."""

    def __init__(self, cfg: Path, *args: str, secrets: dict[str, str] = SECRETS) -> None:
        self.out_path = cfg.with_name(f"{cfg.stem}-{time.monotonic_ns()}.out")
        self.err_path = self.out_path.with_suffix(".err")
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [SYNCER, "--log-json", *args],
                env=env_for(cfg, secrets),
                stdout=out,
                stderr=err,
                text=True,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 60) -> tuple[int, str, str]:
        """SIGTERM, wait; (exit code, stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return self.proc.returncode, self.stdout, self.stderr

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start(cfg: Path, *args: str, secrets: dict[str, str] = SECRETS) -> Background:
    return Background(cfg, *args, secrets=secrets)


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:.0f}s")
        time.sleep(0.2)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log events in ``text`` (other lines ignored)."""
    out = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


def customer(n: int, **over: Any) -> dict[str, Any]:
    """A good customer every pipeline of the example takes (email + SMS consent, VIP)."""
    consent = {"status": True, "limitation": False, "objection": False}
    doc: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "nodeId": NODE,
        "externalId": f"good-{n}",
        "version": 1,
        "updatedAt": "2024-05-01T10:00:00.000+0000",
        "registeredAt": "2024-05-01T10:00:00.000+0000",
        "base": {
            "firstName": f"Good{n}",
            "lastName": "Customer",
            "contacts": {"email": f"good{n}@example.com", "mobilePhone": f"+39347{n:07d}"},
            "address": {"country": "IT"},
        },
        "consents": {"marketing": {"automatic": {"email": consent, "sms": consent}}},
        "tags": {"auto": [], "manual": ["vip"]},
        "extended": {"loyaltyTier": "gold"},
    }
    doc.update(over)
    return doc


def order(n: int, customer_id: str, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"10000000-0000-4000-8000-{n:012d}",
        "customerId": customer_id,
        "type": "completedOrder",
        "context": "ECOMMERCE",
        "date": "2024-05-02T09:30:00.000+0000",
        "properties": {"orderId": f"ORD-{n}", "amount": {"total": 10.5 + n}},
    }
    doc.update(over)
    return doc
