"""All four simulators served together, each on its own loopback port.

with SandboxCluster() as cluster:
    cluster.load_contacthub(customers=10_000, events=20_000, seed=1)
    cluster.write_ports_file(".sandbox/ports.json")
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .app import Simulator
from .contacthub import (
    DEFAULT_NODE_ID,
    DEFAULT_TOKEN,
    DEFAULT_WORKSPACE_ID,
    ContacthubBehaviour,
    ContacthubSimulator,
)
from .faults import FaultPlan
from .serve import ServedApp

# Known sandbox credentials (loopback only, never real secrets).
NRS360_USERNAME = "sandbox-user"
NRS360_API_PASSWORD = "sandbox-api-password"
OCTOPUSH_API_LOGIN = "sandbox@example.com"
OCTOPUSH_API_KEY = "sandbox-octopush-key"
NP6_API_KEY = "sandbox-np6-key"
NAMES = ("contacthub", "nrs360", "octopush", "np6")


def _target_simulators(faults: FaultPlan | None) -> dict[str, Simulator]:
    from .np6 import Np6Simulator
    from .nrs360 import Nrs360Simulator
    from .octopush import OctopushSimulator

    def plan() -> FaultPlan | None:
        return None if faults is None else FaultPlan.from_dict(faults.to_dict())

    return {
        "nrs360": Nrs360Simulator(
            plan(), username=NRS360_USERNAME, api_password=NRS360_API_PASSWORD
        ),
        "octopush": OctopushSimulator(
            plan(), api_login=OCTOPUSH_API_LOGIN, api_key=OCTOPUSH_API_KEY
        ),
        "np6": Np6Simulator(plan(), api_key=NP6_API_KEY),
    }


class SandboxCluster:
    """Contacthub, 360NRS, Octopush and NP6 simulators, each served by :class:`ServedApp`.

    ``faults`` applies (a copy of) the same plan to every simulator; ``ports`` optionally fixes
    the port of some of them (``{"contacthub": 8701}``), the others get a free port.
    """

    def __init__(
        self,
        faults: FaultPlan | None = None,
        *,
        contacthub_behaviour: ContacthubBehaviour | None = None,
        ports: dict[str, int] | None = None,
        workspaces: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        layout = dict(workspaces or {DEFAULT_WORKSPACE_ID: [DEFAULT_NODE_ID]})
        main, *others = layout
        self.contacthub = ContacthubSimulator(
            main,
            tuple(layout[main]),
            DEFAULT_TOKEN,
            behaviour=contacthub_behaviour,
            faults=None if faults is None else FaultPlan.from_dict(faults.to_dict()),
            extra_workspaces={ws: list(layout[ws]) for ws in others},
        )
        self.simulators: dict[str, Simulator] = {
            "contacthub": self.contacthub,
            **_target_simulators(faults),
        }
        ports = ports or {}
        self.served = {
            name: ServedApp(sim.asgi(), port=ports.get(name, 0))
            for name, sim in self.simulators.items()
        }

    @property
    def urls(self) -> dict[str, str]:
        """Root URL of each simulator (``http://127.0.0.1:<port>``)."""
        return {name: served.url for name, served in self.served.items()}

    def start(self) -> SandboxCluster:
        started: list[ServedApp] = []
        try:
            for served in self.served.values():
                started.append(served.start())
        except BaseException:
            for served in started:
                served.stop()
            raise
        return self

    def stop(self) -> None:
        for served in self.served.values():
            served.stop()

    def __enter__(self) -> SandboxCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def load_contacthub(self, customers: int, events: int, seed: int) -> dict[str, Any]:
        """Generate and load a data set into Contacthub in-process (no HTTP round trip)."""
        return self.contacthub.load(
            {"generate": {"customers": customers, "events": events, "seed": seed}}
        )

    def connection_info(self) -> dict[str, dict[str, Any]]:
        """URLs (API base and admin root) and credentials of every simulator."""
        urls = self.urls
        return {
            "contacthub": {
                "url": urls["contacthub"],
                "api_base": f"{urls['contacthub']}/hub/v1",
                "workspace_id": self.contacthub.workspace_id,
                "node_id": self.contacthub.node_id,
                "token": self.contacthub.token,
            },
            "nrs360": {
                "url": urls["nrs360"],
                "api_base": f"{urls['nrs360']}/api/rest",
                "username": NRS360_USERNAME,
                "api_password": NRS360_API_PASSWORD,
            },
            "octopush": {
                "url": urls["octopush"],
                "api_base": f"{urls['octopush']}/v1/public",
                "api_login": OCTOPUSH_API_LOGIN,
                "api_key": OCTOPUSH_API_KEY,
            },
            "np6": {"url": urls["np6"], "api_base": urls["np6"], "api_key": NP6_API_KEY},
        }

    def write_ports_file(self, path: str | Path) -> Path:
        """Write :meth:`connection_info` as JSON (parent directories created)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(self.connection_info(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(target)
        return target
