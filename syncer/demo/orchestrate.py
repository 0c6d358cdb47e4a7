"""The demo, step by step: sandbox, config, backfill, sync, churn, sync, status, summary."""

from __future__ import annotations

import json
import os
import shlex
import signal
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from ..config.loader import load_config
from ..config.models import SyncerConfig
from ..sandbox.churn import Churn
from ..sandbox.cluster import SandboxCluster
from ..sandbox.datagen import generate_dataset
from ..state.store import Store
from . import render
from .commands import run_syncer
from .landed import read_landed
from .results import RunSummary, id_map_counts, read_run, scrubbed_count, source_counts
from .workspace import (
    DEMO_CONFIG,
    SourceNode,
    Workspace,
    read_example,
    workspace_layout,
)

__all__ = ["CONSOLE_PORT", "DemoOptions", "run_demo"]

CONSOLE_PORT = 8470  # `syncer console`'s default; a free port when another process holds it
DAEMON_CONSOLE = "http://127.0.0.1:9464/"  # `syncer run` on the demo config (metrics default)


@dataclass
class DemoOptions:
    customers: int = 2000  # in all, shared out between the source nodes
    events: int | None = None  # default: two per customer
    seed: int = 1  # the first source node's data; the next ones seed + 1, seed + 2, ...
    churn: int | None = None  # default: one operation per ten customers, at least 20
    keep: Path | None = None  # work directory kept after the demo (default: a temporary one)
    example: Path = DEMO_CONFIG
    serve: bool = False  # keep the sandbox up after the summary, until Ctrl-C / SIGTERM
    churn_every: float = 0.0  # with ``serve``: apply a little churn this often (0: never)

    @property
    def n_events(self) -> int:
        return self.customers * 2 if self.events is None else self.events

    @property
    def n_churn(self) -> int:
        return max(20, self.customers // 10) if self.churn is None else self.churn


def say(line: str = "") -> None:
    print(line, flush=True)


def share(total: int, parts: int, n: int) -> int:
    """Part ``n`` of ``total`` shared out as evenly as can be (the first parts get the rest)."""
    return total // parts + (1 if n < total % parts else 0)


def email_tags(nodes: list[SourceNode]) -> list[str]:
    """Per source node, the tag put in its generated customers' e-mail addresses (``+tag``
    before the ``@``): none for the first node, the source's name for the others (and a node
    number after a source's first node). Each node's data comes from the same generator, so
    without it the sources would share e-mail addresses by chance: the demo shows distinct
    customer bases (docs/sources.md says what one contact for two sources' customers does)."""
    tags: list[str] = []
    seen: Counter[str] = Counter()
    for k, node in enumerate(nodes):
        seen[node.source] += 1
        nth = seen[node.source]
        tags.append("" if k == 0 else node.source + (f"-{nth}" * (nth > 1)))
    return tags


def tag_emails(customers: list[dict[str, Any]], tag: str) -> None:
    """``local@domain`` -> ``local+tag@domain`` (spacing and case, the data's mess, kept)."""
    for doc in customers:
        contacts = dict(doc["base"].get("contacts") or {})
        email = contacts.get("email")
        if tag and isinstance(email, str) and "@" in email:
            local, _, domain = email.rpartition("@")
            contacts["email"] = f"{local}+{tag}@{domain}"
            doc["base"] = {**doc["base"], "contacts": contacts}  # parts may be shared


class _Demo:
    def __init__(
        self,
        opts: DemoOptions,
        ws: Workspace,
        cluster: SandboxCluster,
        example: dict[str, Any],
        nodes: list[SourceNode],
    ) -> None:
        self.opts, self.ws, self.cluster = opts, ws, cluster
        self.example, self.nodes = example, nodes
        self.runs: list[RunSummary] = []
        self.known_runs: set[str] = set()
        self.churn_log: Counter[str] = Counter()
        self.churn_ok = self.churn_total = 0
        self._churns: list[Churn] = []
        self._client: httpx.Client | None = None
        self.status_lines: list[str] = []

    # -- steps --------------------------------------------------------------------------
    def start_sandbox(self) -> None:
        o, parts = self.opts, len(self.nodes)
        loaded: list[str] = []
        for n, (node, tag) in enumerate(zip(self.nodes, email_tags(self.nodes), strict=True)):
            sizes = share(o.customers, parts, n), share(o.n_events, parts, n)
            if tag:
                customers, events = generate_dataset(
                    *sizes, seed=o.seed + n, node_id=node.node_id, shared=True
                )
                tag_emails(customers, tag)
                data: dict[str, Any] = {"customers": customers, "events": events}
            else:  # generated in the simulator: the same data, loaded faster
                spec = {"customers": sizes[0], "events": sizes[1], "seed": o.seed + n}
                data = {"generate": {**spec, "node_id": node.node_id}}
            got = self.cluster.contacthub.load({"workspace_id": node.workspace_id, **data})
            loaded.append(
                f"  {node.source:<10} workspace {node.workspace_id}, node {node.node_id}: "
                f"{got['customers']} customers, {got['events']} events (seed {o.seed + n})"
            )
        self.cluster.write_ports_file(self.ws.ports_path)
        sources = len({node.source for node in self.nodes})
        say(
            f"sandbox: Contacthub with {o.customers} customers and {o.n_events} events in "
            f"{sources} source{'s' * (sources > 1)}; 360NRS, Octopush and NP6 empty"
        )
        for line in loaded:
            say(line)
        for name, url in self.cluster.urls.items():
            say(f"  {name:<10} {url}")

    def write_config(self) -> SyncerConfig:
        info = self.cluster.connection_info()
        path = self.ws.write_config(self.opts.example, info, self.example)
        os.environ.update(self.ws.env)
        cfg = load_config(path)
        names = ", ".join(cfg.sources)
        say(
            f"config: {path} (sources {names} and pipelines of {self.opts.example.name}, "
            f"state {self.ws.state_url})"
        )
        for p in cfg.pipelines:
            takes = f"source {p.source}" if p.source else "every source"
            say(f"  pipeline {p.name}: {takes} -> target {p.target}")
        say(f"  credentials are env references; this demo sets them: {self.ws.export_line()}")
        return cfg

    def command(self, *args: str) -> int:
        say()
        return run_syncer([*args, "--config", str(self.ws.config_path)], self.ws.env).code

    def status(self) -> int:
        """``syncer status``: every source's streams, the queues, the runs."""
        say()
        done = run_syncer(["status", "--config", str(self.ws.config_path)], self.ws.env)
        self.status_lines = done.output
        return done.code

    def sync(self, cfg: SyncerConfig, label: str) -> RunSummary:
        code = self.command("sync", "--once")
        store = Store(self.ws.state_url, migrate=False)
        try:
            run = read_run(store, cfg, label, code, self.known_runs)
        finally:
            store.close()
        if run.run_id:
            self.known_runs.add(run.run_id)
        self.runs.append(run)
        return run

    def churn(self, n: int) -> None:
        """``n`` operations through the Contacthub API, shared out between the source nodes
        (each with its own seed, as its data)."""
        if self._client is None:
            info = self.cluster.connection_info()["contacthub"]
            self._client = httpx.Client(
                base_url=info["url"],
                headers={"Authorization": f"Bearer {info['token']}"},
                timeout=30.0,
            )
            self._churns = [
                Churn(self._client, node.workspace_id, node.node_id, self.opts.seed + k)
                for k, node in enumerate(self.nodes)
            ]
        for k, churn in enumerate(self._churns):
            done = [e for e in churn.step(share(n, len(self._churns), k)) if e.op != "read"]
            self.churn_log.update(e.op for e in done)
            self.churn_total += len(done)
            self.churn_ok += sum(e.ok for e in done)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- the end --------------------------------------------------------------------------
    def summary(self, cfg: SyncerConfig, elapsed: float) -> bool:
        """Print the summary, write ``summary.json``; whether the state database and the
        simulators agree."""
        landed = read_landed(self.cluster.urls)
        store = Store(self.ws.state_url, migrate=False)
        try:
            found = render.checks(landed, id_map_counts(store), cfg, scrubbed_count(store))
            per_source = source_counts(store, cfg)
        finally:
            store.close()
        say()
        say(f"== summary (state database {self.ws.state_path}, simulators' /_sandbox/state) ==")
        say(render.churn_line(self.churn_log, self.churn_ok, self.churn_total))
        say()
        for line in render.table_lines(self.runs):
            say(line)
        say()
        say("rejected (invalid) and dead-lettered records, by reason:")
        for line in render.reason_lines(self.runs):
            say(line)
        say()
        say("per source (the state database: streams, customers and events, records per target):")
        for line in render.source_lines(per_source, cfg):
            say(line)
        say()
        say("in the targets now (sample records as they landed):")
        for line in render.landed_lines(landed, cfg):
            say(line)
        say()
        say("the state database against the targets:")
        for check in found:
            say(check.line())
        say()
        say("runs:")
        for line in render.verdict_lines(self.runs):
            say(line)
        data = {
            "seed": self.opts.seed,
            "customers": self.opts.customers,
            "events": self.opts.n_events,
            "churn": {"operations": dict(self.churn_log), "accepted": self.churn_ok},
            "sources": [s.as_dict() for s in per_source],
            "runs": [r.as_dict() for r in self.runs],
            "landed": {n: v.as_dict() for n, v in landed.items()},
            "checks": [{**asdict(c), "ok": c.ok} for c in found],
            "elapsed_seconds": round(elapsed, 2),
        }
        text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
        self.ws.summary_path.write_text(text + "\n", encoding="utf-8")
        return all(c.ok for c in found)

    def next_steps(self, kept: bool) -> None:
        o, cfg_path = self.opts, shlex.quote(str(self.ws.config_path))
        keep = shlex.quote(str(o.keep)) if o.keep else "./syncer-demo"
        same = f"syncer demo --customers {o.customers} --events {o.n_events} --seed {o.seed}"
        say()
        if kept:
            say("the sandbox keeps running (Ctrl-C stops it); run the daemon against it from a")
            say("second terminal:")
        else:
            say("next: the daemon against the same sandbox (the same seed gives the same data):")
            say(f"  {same} --keep {keep} --serve --churn-every 10")
            say("then, in a second terminal:")
            cfg_path = shlex.quote(f"{keep.rstrip('/')}/config.yaml")
        say(f"  {self.ws.export_line()}")
        say(f"  syncer run --config {cfg_path}     # serves the console on {DAEMON_CONSOLE}")
        say(f"  syncer status --config {cfg_path}")
        if len(self.nodes) == 1:  # `syncer sandbox` serves one workspace node
            say("the same data set alone, in a fresh sandbox (new ports, see its ports file):")
            say(f"  syncer sandbox --seed {o.seed} --customers {o.customers} --events {o.n_events}")
        if not kept:
            say()
            say(
                f"console: http://127.0.0.1:{CONSOLE_PORT}/ while `{same} --serve` runs "
                f"(or {DAEMON_CONSOLE} from `syncer run`)"
            )

    def console(self, cfg: SyncerConfig, stack: ExitStack) -> str:
        """Serve the web console on this demo's state database until the demo ends; its URL.
        No token is configured: loopback only, and read-only (syncer.console.security)."""
        from ..console import ConsoleSettings, console_app
        from ..sandbox.serve import ServedApp

        store = Store(self.ws.state_url, migrate=False)
        stack.callback(store.close)
        app = console_app(store, cfg, ConsoleSettings())
        try:
            served = ServedApp(app, port=CONSOLE_PORT)
        except OSError:  # the port is taken (a `syncer console`, another demo)
            served = ServedApp(app, port=0)
        stack.enter_context(served)
        return served.url + "/"

    def serve(self, console_url: str) -> None:
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        sigs = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, on_signal) for sig in sigs}
        try:
            say()
            say(f"console: {console_url} (this demo's state database, read-only)")
            say("sandbox serving")
            every = self.opts.churn_every
            while not stop.wait(every if every > 0 else 0.5):
                if every > 0:
                    before = self.churn_total
                    self.churn(max(5, self.opts.n_churn // 10))
                    say(f"churn: {self.churn_total - before} more operations")
            say("stopping sandbox")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_demo(opts: DemoOptions) -> int:
    """Run the demo; 0 when every sync finished with nothing failed but invalid records."""
    began = time.monotonic()
    with ExitStack() as stack:
        root = opts.keep or Path(stack.enter_context(tempfile.TemporaryDirectory("-syncer-demo")))
        ws = Workspace(root.resolve())
        example, nodes = read_example(opts.example)
        ws.prepare()
        cluster = stack.enter_context(SandboxCluster(workspaces=workspace_layout(nodes)))
        demo = _Demo(opts, ws, cluster, example, nodes)
        stack.callback(demo.close)
        demo.start_sandbox()
        cfg = demo.write_config()
        code = demo.command("backfill")
        if code != 0:
            say(f"backfill failed (exit {code}); state kept in {ws.state_path}")
            return code
        demo.sync(cfg, "initial load")
        say()
        demo.churn(opts.n_churn)
        say(render.churn_line(demo.churn_log, demo.churn_ok, demo.churn_total))
        demo.sync(cfg, "after churn")
        demo.status()
        agree = demo.summary(cfg, time.monotonic() - began)
        healthy = agree and all(r.healthy for r in demo.runs)
        say()
        say(f"demo {'finished' if healthy else 'FAILED'} in {time.monotonic() - began:.1f}s")
        demo.next_steps(kept=opts.serve)
        if opts.serve:
            demo.serve(demo.console(cfg, stack))
        return 0 if healthy else 1
    raise AssertionError("unreachable")  # pragma: no cover
