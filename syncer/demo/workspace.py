"""The demo's working directory: a config written for the sandbox, the env it needs, the state.

The config keeps the pipelines of ``config/example.yaml`` as they are and points the source and
the targets at the sandbox. Credentials stay ``${VAR}`` references: every reference found on a
credential field of the example gets the sandbox's value in :attr:`Workspace.env`, which the demo
puts in its own environment (and prints, so the user can run the same commands).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["EXAMPLE_CONFIG", "SIMULATOR_OF_TARGET", "Workspace", "demo_config"]

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
SIMULATOR_OF_TARGET = {"360nrs": "nrs360", "octopush": "octopush", "np6": "np6"}
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_HEADER = """\
# Written by `syncer demo`: the pipelines of config/example.yaml, pointed at the sandbox.
# Credentials are ${VAR} references; set them first (the demo prints the export line).
# The sandbox imposes no rate limit, so the example's rate_limit is dropped here.
"""


def _credentials(
    section: dict[str, Any], info: dict[str, Any], env: dict[str, str], skip: tuple[str, ...]
) -> None:
    """Fill ``env`` for every ``${VAR}`` credential of ``section`` the simulator knows;
    replace literal credentials by the simulator's value."""
    for key, value in section.items():
        if key in skip or key not in info or not isinstance(value, str):
            continue
        ref = _REFERENCE.match(value)
        if ref:
            env[ref.group(1)] = str(info[key])
        else:
            section[key] = str(info[key])


def demo_config(
    example: dict[str, Any], connection: dict[str, dict[str, Any]], state_url: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The example config pointed at the sandbox, and the env values its references need."""
    doc: dict[str, Any] = yaml.safe_load(yaml.safe_dump(example))  # a deep copy
    env: dict[str, str] = {}
    doc["state"] = {**(doc.get("state") or {}), "url": state_url}
    source, hub = doc["source"], connection["contacthub"]
    source.update(base_url=hub["api_base"], workspace_id=hub["workspace_id"])
    source.update(node_id=hub["node_id"], poll_interval="5s")
    _credentials(source, hub, env, skip=("base_url", "workspace_id", "node_id"))
    for name, target in doc["targets"].items():
        sim = SIMULATOR_OF_TARGET.get(str(target.get("type")))
        if sim is None:
            raise ValueError(f"target {name!r}: no simulator for type {target.get('type')!r}")
        info = connection[sim]
        target["base_url"] = info["api_base"]
        target.pop("rate_limit", None)
        if isinstance(target.get("import"), dict):
            target["import"]["flush_every"] = "10s"
        _credentials(target, info, env, skip=("base_url", "type"))
    return doc, env


@dataclass
class Workspace:
    """Where the demo writes its config, ports file, state database and summary."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def state_path(self) -> Path:
        return self.root / "syncer.db"

    @property
    def state_url(self) -> str:
        return f"sqlite:///{self.state_path}"

    @property
    def ports_path(self) -> Path:
        return self.root / "ports.json"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.json"

    def prepare(self) -> None:
        """Create the directory and drop a state database left by an earlier demo (it belongs
        to a sandbox that no longer exists)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.state_path}{suffix}").unlink(missing_ok=True)

    def write_config(self, example: Path, connection: dict[str, dict[str, Any]]) -> Path:
        loaded = yaml.safe_load(example.read_text(encoding="utf-8"))
        doc, self.env = demo_config(loaded, connection, self.state_url)
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
        self.config_path.write_text(_HEADER + text, encoding="utf-8")
        return self.config_path

    def export_line(self) -> str:
        """``export A=... B=...``: what a shell needs before running the printed commands."""
        pairs = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return f"export {pairs}"
