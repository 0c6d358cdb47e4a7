"""Driving the engine from the bench: in-process pieces, or the ``syncer`` CLI as a subprocess.

In-process runs (ingest, delivery) measure the engine in this very process while the
simulators live in the sandbox process; subprocess runs (backfill memory, the daemon) measure
the ``syncer`` command exactly as an operator runs it.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from .core import NotRun
from .sandbox import bench_env, export_credentials

# The ``syncer`` command of this interpreter (the venv's), without relying on PATH.
SYNCER = [sys.executable, "-c", "from syncer.cli.main import main; main()"]


def require(*modules: str) -> None:
    """Raise :class:`NotRun` naming the first engine module that cannot be imported."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a half-written module raises anything at import time
            raise NotRun(f"{name} not importable ({type(exc).__name__}: {exc})") from None


def require_cli(*words: str) -> None:
    """Raise :class:`NotRun` unless ``syncer <words> --help`` works."""
    done = subprocess.run(
        [*SYNCER, *words, "--help"],
        capture_output=True,
        text=True,
        env=bench_env(),
        timeout=60,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
        raise NotRun(f"`syncer {' '.join(words)}` not available ({tail[0][:120]})")


def quiet_logs() -> None:
    """Engine log lines at warning and above only, on stderr (not in the table)."""
    from syncer import logs

    logs.configure("warning", json=False)


@dataclass
class Engine:
    """Config, store and source client of one bench run, built like the CLI builds them."""

    cfg: Any
    store: Any
    client: Any
    http: httpx.Client

    def close(self) -> None:
        self.http.close()
        self.store.close()


def open_engine(config_path: Path) -> Engine:
    """Load the config and open its store and Contacthub client (this process)."""
    export_credentials()
    quiet_logs()
    from syncer.config.loader import load_config
    from syncer.source.contacthub import ContacthubClient
    from syncer.state.store import Store

    cfg = load_config(config_path)
    store = Store(cfg.state.url)
    src = cfg.source
    http = httpx.Client(
        base_url=src.base_url,
        timeout=src.timeout,
        headers={"Authorization": f"Bearer {src.token.get_secret_value()}"},
    )
    client = ContacthubClient(http, src.workspace_id, src.node_id)
    return Engine(cfg, store, client, http)


def ingest_to_end(eng: Engine) -> Any:
    """Ingest the whole stream with the engine's own :class:`Ingestor`; its result."""
    from syncer.engine.apply import Applier, rules_from_config
    from syncer.engine.ingest import Ingestor

    ingestor = Ingestor(
        eng.store,
        eng.client,
        Applier(rules_from_config(eng.cfg)),
        page_size=eng.cfg.source.page_size,
    )
    return ingestor.run_to_end()


@dataclass
class Delivered:
    """What :func:`deliver_all` did: per-target stats, and whether it ran out of time."""

    stats: dict[str, Any]
    seconds: float
    finished: bool


def deliver_all(eng: Engine, deadline_s: float | None = None) -> Delivered:
    """Deliver everything due with the engine's :class:`Deliverer` (``run_all_once``).

    With ``deadline_s`` the deliverer is stopped gracefully (``Deliverer.stop``) once that
    many seconds have passed; ``finished`` then says False.
    """
    from syncer.engine.deliver import Deliverer

    box: dict[str, Any] = {}
    with Deliverer(eng.cfg, eng.store, run_id=f"bench-{uuid.uuid4().hex[:8]}") as deliverer:

        def work() -> None:
            try:
                box["stats"] = deliverer.run_all_once()
            except BaseException as exc:  # re-raised below, in the caller's thread
                box["error"] = exc

        started = time.perf_counter()
        thread = threading.Thread(target=work, name="bench-deliver", daemon=True)
        thread.start()
        thread.join(deadline_s)
        finished = not thread.is_alive()
        if not finished:
            deliverer.stop()
            thread.join()
        seconds = time.perf_counter() - started
    if "error" in box:
        raise box["error"]
    return Delivered(box.get("stats", {}), seconds, finished)


def syncer_cmd(config: Path, *words: str) -> list[str]:
    """``syncer <words> --config <config>`` with this interpreter's ``syncer``."""
    return [*SYNCER, *words, "--config", str(config)]


def last_error(text: str, limit: int = 240) -> str:
    """The last line of ``text`` that names an error (or its last line), shortened."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    pick = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "")
    return pick if len(pick) <= limit else pick[: limit - 3] + "..."


@dataclass
class ProcResult:
    returncode: int
    seconds: float
    peak_rss: int  # bytes: the larger of VmHWM (kernel) and our polling
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def error(self) -> str:
        return last_error(self.stderr or self.stdout)


def _vm_hwm(pid: int) -> int:
    """Peak resident set size of ``pid`` from /proc (bytes), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_measured(
    cmd: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    poll: float = 0.05,
) -> ProcResult:
    """Run ``cmd``, polling its RSS (psutil, every ``poll`` s) and its VmHWM.

    The peak is taken over the process and any children it starts. Past ``timeout`` seconds
    the process is killed and the result says ``timed_out`` (with the peak up to then).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out_parts: list[str] = []
    err_parts: list[str] = []

    def pump(stream: Any, sink: list[str]) -> None:
        for chunk in iter(stream.readline, ""):
            sink.append(chunk)

    pumps = [
        threading.Thread(target=pump, args=(proc.stdout, out_parts), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, err_parts), daemon=True),
    ]
    for t in pumps:
        t.start()
    ps = psutil.Process(proc.pid)
    peak = 0
    timed_out = False
    try:
        while proc.poll() is None:
            if time.perf_counter() - started > timeout:
                timed_out = True
                proc.kill()
                proc.wait()
                break
            try:
                rss = ps.memory_info().rss
                for child in ps.children(recursive=True):
                    rss += child.memory_info().rss
                peak = max(peak, rss, _vm_hwm(proc.pid))
            except psutil.Error:
                pass
            time.sleep(poll)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for t in pumps:
        t.join(timeout=5)
    return ProcResult(
        proc.returncode,
        time.perf_counter() - started,
        peak,
        "".join(out_parts),
        "".join(err_parts),
        timed_out,
    )


class Daemon:
    """``syncer run`` as a subprocess; stopped with SIGTERM."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log_path = log
        self._log = log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            syncer_cmd(config, "run"),
            env=bench_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def tail(self, lines: int = 5) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return " | ".join(text.strip().splitlines()[-lines:])


def wait_until(pred: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(poll)
    return pred()
