"""``syncer sandbox``: serve the four API simulators locally with generated data."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import typer

__all__ = ["register", "sandbox"]

READY_LINE = "sandbox ready"


def sandbox(
    customers: int = typer.Option(10_000, "--customers", min=0, help="Customers to generate."),
    events: int = typer.Option(20_000, "--events", min=0, help="Events to generate."),
    seed: int = typer.Option(1, "--seed", help="Seed of the data generator and fault plan."),
    faults: str = typer.Option(
        "none", "--faults", help="Fault profile: none, flaky, slow, throttled or hostile."
    ),
    ports_file: Path = typer.Option(
        Path(".sandbox/ports.json"), "--ports-file", help="Where to write URLs and credentials."
    ),
    behaviour: list[str] = typer.Option(
        [],
        "--behaviour",
        help="A simulator behaviour switch, SIM.SWITCH=VALUE (repeatable), e.g. "
        "nrs360.duplicate_email=accept; the switches are listed in docs/sandbox.md.",
    ),
) -> None:
    """Serve Contacthub, 360NRS, Octopush and NP6 simulators until Ctrl-C or SIGTERM."""
    from syncer.sandbox.cluster import SandboxCluster
    from syncer.sandbox.faults import FaultPlan

    began = time.monotonic()
    try:
        plan = FaultPlan.profile(faults, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from None
    cluster = SandboxCluster(plan if faults != "none" else None)
    try:
        apply_behaviours(cluster.simulators, behaviour)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--behaviour") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        cluster.start()
        loaded = cluster.load_contacthub(customers, events, seed)
        path = cluster.write_ports_file(ports_file)
        for name, info in cluster.connection_info().items():
            creds = ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("url", "api_base"))
            typer.echo(f"{name:<10} {info['api_base']:<40} {creds}")
        typer.echo(
            f"contacthub loaded {loaded['customers']} customers, {loaded['events']} events; "
            f"faults: {faults}; ports file: {path}"
        )
        if behaviour:
            typer.echo(f"behaviour: {', '.join(behaviour)}")
        typer.echo(f"{READY_LINE} in {time.monotonic() - began:.2f}s (Ctrl-C to stop)")
        while not stop.wait(0.5):
            pass
        typer.echo("stopping sandbox")
    finally:
        cluster.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def apply_behaviours(simulators: dict[str, Any], settings: list[str]) -> None:
    """Apply ``SIM.SWITCH=VALUE`` settings to the simulators (all checked before any is
    applied); ``ValueError`` with a one-line reason on a bad one."""
    from syncer.sandbox.app import merge_behaviour, parse_switch_value

    changes: dict[str, dict[str, Any]] = {}
    for setting in settings:
        target, eq, text = setting.partition("=")
        sim_name, dot, switch = target.strip().partition(".")
        if not eq or not dot or not switch:
            raise ValueError(f"{setting!r}: expected SIM.SWITCH=VALUE, e.g. np6.rate_limit=bare")
        sim = simulators.get(sim_name)
        if sim is None:
            raise ValueError(f"{setting!r}: unknown simulator; known: {', '.join(simulators)}")
        if sim.behaviour is None:
            raise ValueError(f"{setting!r}: the {sim_name} simulator has no behaviour switches")
        try:
            value = parse_switch_value(sim.behaviour, switch, text.strip())
        except ValueError as exc:
            raise ValueError(f"{setting!r}: {exc}") from None
        changes.setdefault(sim_name, {})[switch] = value
    for sim_name, values in changes.items():  # check them all, then apply
        try:
            merge_behaviour(simulators[sim_name].behaviour, values)
        except ValueError as exc:
            raise ValueError(f"{sim_name}: {exc}") from None
    for sim_name, values in changes.items():
        simulators[sim_name].set_behaviour(values)


def register(app: typer.Typer) -> None:
    """Add the ``sandbox`` command to ``app``."""
    app.command("sandbox")(sandbox)
