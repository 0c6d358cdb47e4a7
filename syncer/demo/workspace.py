"""The demo's working directory: a config written for the sandbox, the env it needs, the state.

The config keeps the sources and pipelines of ``config/two-brands.yaml`` as they are (two
sources, brand-it and brand-fr, each its own workspace) and points the sources and the targets
at the sandbox, which serves the workspaces and nodes the config names. Credentials stay
``${VAR}`` references: every reference found on a credential field of the example gets the
sandbox's value in :attr:`Workspace.env`, which the demo puts in its own environment (and
prints, so the user can run the same commands).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEMO_CONFIG",
    "EXAMPLE_CONFIG",
    "SIMULATOR_OF_TARGET",
    "SourceNode",
    "Workspace",
    "demo_config",
    "read_example",
    "source_nodes",
    "workspace_layout",
]

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "example.yaml"  # one source
DEMO_CONFIG = EXAMPLE_CONFIG.with_name("two-brands.yaml")  # what `syncer demo` runs
SIMULATOR_OF_TARGET = {"360nrs": "nrs360", "octopush": "octopush", "np6": "np6"}
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_HEADER = """\
# Written by `syncer demo`: the sources and pipelines of config/{name}, pointed at the sandbox
# (which serves the workspaces and nodes named here). Credentials are ${{VAR}} references; set
# them first (the demo prints the export line). The sandbox imposes no rate limit, so the
# example's rate_limit is dropped here.
"""


@dataclass(frozen=True)
class SourceNode:
    """One entry node of one source of the config: the sandbox serves it, seeded."""

    source: str
    workspace_id: str
    node_id: str


def _sources(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The config's sources by name (the single ``source:`` form is ``default``)."""
    named = doc.get("sources")
    if isinstance(named, dict) and named:
        return {str(k): v for k, v in named.items() if isinstance(v, dict)}
    if isinstance(doc.get("source"), dict):
        return {"default": doc["source"]}
    raise ValueError("the example config has no 'source' or 'sources' section")


def source_nodes(doc: dict[str, Any]) -> list[SourceNode]:
    """Every entry node of every source of ``doc``, in config order. A workspace or node id
    that is no plain id (a ``${VAR}`` reference) is replaced in ``doc`` by a sandbox id."""
    out: list[SourceNode] = []
    for n, (name, src) in enumerate(_sources(doc).items()):
        ws = src.get("workspace_id")
        if not (isinstance(ws, str) and _PLAIN_ID.match(ws)):
            ws = src["workspace_id"] = f"sandbox-ws-{n + 1}"
        key = "node_ids" if isinstance(src.get("node_ids"), list) else "node_id"
        given = src[key] if key == "node_ids" else [src.get("node_id")]
        nodes = [
            v if isinstance(v, str) and _PLAIN_ID.match(v) else f"{ws}-node-{i + 1}"
            for i, v in enumerate(given)
        ]
        src[key] = nodes if key == "node_ids" else nodes[0]
        out.extend(SourceNode(name, ws, node) for node in nodes)
    return out


def workspace_layout(nodes: list[SourceNode]) -> dict[str, list[str]]:
    """Workspace id -> its node ids, for :class:`~syncer.sandbox.cluster.SandboxCluster`."""
    layout: dict[str, list[str]] = {}
    for node in nodes:
        layout.setdefault(node.workspace_id, []).append(node.node_id)
    return layout


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
    """The example config pointed at the sandbox, and the env values its references need.

    The single ``source:`` form reads the sandbox's main workspace node; the named sources of
    ``sources:`` keep their workspace and node ids (as :func:`source_nodes` left them): the
    demo's sandbox serves those."""
    doc: dict[str, Any] = yaml.safe_load(yaml.safe_dump(example))  # a deep copy
    env: dict[str, str] = {}
    doc["state"] = {**(doc.get("state") or {}), "url": state_url}
    hub = connection["contacthub"]
    if isinstance(doc.get("source"), dict):
        doc["source"].update(workspace_id=hub["workspace_id"], node_id=hub["node_id"])
    for source in _sources(doc).values():
        source.update(base_url=hub["api_base"], poll_interval="5s")
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


def read_example(example: Path) -> tuple[dict[str, Any], list[SourceNode]]:
    """The example config as YAML data, and the source nodes the sandbox must serve."""
    doc = yaml.safe_load(example.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{example}: not a YAML mapping")
    return doc, source_nodes(doc)


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

    def write_config(
        self,
        example: Path,
        connection: dict[str, dict[str, Any]],
        doc: dict[str, Any] | None = None,
    ) -> Path:
        """Write ``example`` (or ``doc``, as :func:`read_example` read it) pointed at the
        sandbox."""
        if doc is None:
            doc = yaml.safe_load(example.read_text(encoding="utf-8"))
        written, self.env = demo_config(doc, connection, self.state_url)
        text = yaml.safe_dump(written, sort_keys=False, allow_unicode=True, width=100)
        self.config_path.write_text(_HEADER.format(name=example.name) + text, encoding="utf-8")
        return self.config_path

    def export_line(self) -> str:
        """``export A=... B=...``: what a shell needs before running the printed commands."""
        pairs = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return f"export {pairs}"
