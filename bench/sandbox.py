"""The simulators in a separate process, so the engine's CPU is measured honestly.

:class:`SandboxProcess` starts one child process (``python -m bench.sandbox NAME...``) that
serves the requested simulators (each on its own loopback port, in its own uvicorn thread),
prints their URLs as one JSON line and stops when its stdin closes. :class:`Admin` is a small
client of a simulator's ``/_sandbox/`` admin API.

    with SandboxProcess(["contacthub", "nrs360"]) as sb:
        sb.admin("nrs360").faults(latency_ms=50)
        sb.urls["contacthub"]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
SIMULATORS = ("contacthub", "nrs360", "octopush", "np6")

# Credentials the simulators accept by default; bench configs reference them through env vars.
CREDENTIALS = {
    "BENCH_CONTACTHUB_TOKEN": "sandbox-contacthub-token",
    "BENCH_NRS_USERNAME": "sandbox-user",
    "BENCH_NRS_API_PASSWORD": "sandbox-api-password",
    "BENCH_OCTOPUSH_LOGIN": "sandbox@example.com",
    "BENCH_OCTOPUSH_API_KEY": "sandbox-octopush-key",
    "BENCH_NP6_API_KEY": "sandbox-np6-key",
}


def _build(name: str) -> Any:
    """One simulator, imported lazily so the parent never pays for what it does not use."""
    if name == "contacthub":
        from syncer.sandbox.contacthub import ContacthubSimulator

        return ContacthubSimulator()
    if name == "nrs360":
        from syncer.sandbox.nrs360 import Nrs360Simulator

        return Nrs360Simulator()
    if name == "octopush":
        from syncer.sandbox.octopush import OctopushSimulator

        return OctopushSimulator()
    if name == "np6":
        from syncer.sandbox.np6 import Np6Simulator

        return Np6Simulator()
    raise ValueError(f"unknown simulator {name!r}; known: {', '.join(SIMULATORS)}")


def serve_forever(names: Sequence[str]) -> None:  # pragma: no cover - runs in the child
    """Serve ``names``, print their URLs as one JSON line, stop when stdin closes."""
    from syncer.sandbox.serve import ServedApp

    served = {name.partition("+")[0]: ServedApp(_build(name).asgi()).start() for name in names}
    print(json.dumps({name: s.url for name, s in served.items()}), flush=True)
    sys.stdin.read()  # EOF: the parent closed our stdin (or died)
    for s in served.values():
        s.stop()


# Prefixes of the APIs under each simulator's root URL.
API_ROOTS = {
    "contacthub": "/hub/v1",
    "nrs360": "/api/rest",
    "octopush": "/v1/public",
    "np6": "",
}


class SandboxProcess:
    """The requested simulators served by one child process on 127.0.0.1."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.urls: dict[str, str] = {}
        self._proc: subprocess.Popen[str] | None = None
        self._admins: dict[str, Admin] = {}

    def start(self) -> SandboxProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sandbox", *self.names],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("sandbox process exited before reporting its URLs")
        self.urls = json.loads(line)
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """User+system CPU the sandbox process used so far."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def api(self, name: str) -> str:
        """The API root of a simulator (what a config's ``base_url`` takes).

        A simulator this process does not serve gets the discard port: a config may name a
        target a scenario never calls.
        """
        return self.urls.get(name, "http://127.0.0.1:9") + API_ROOTS[name]

    def admin(self, name: str) -> Admin:
        if name not in self._admins:
            self._admins[name] = Admin(self.urls[name])
        return self._admins[name]

    def stop(self) -> None:
        for admin in self._admins.values():
            admin.close()
        self._admins.clear()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Admin:
    """Client of one simulator's admin API (``/_sandbox/...``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url + "/_sandbox", timeout=600)

    def close(self) -> None:
        self.http.close()

    def _json(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json()

    def faults(self, **plan: Any) -> dict[str, Any]:
        """Replace the fault plan (``latency_ms``, ``rate_limit``, ...; unset keys are zero)."""
        result: dict[str, Any] = self._json(self.http.put("/faults", json=plan))
        return result

    def load(self, data: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.post("/load", json=data))
        return result

    def reset(self) -> None:
        self._json(self.http.post("/reset"))

    def requests(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.get("/requests"))
        return result

    def clear_requests(self) -> None:
        self._json(self.http.delete("/requests"))

    def state(self, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.get("/state", params=params))
        return result

    def behaviour(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.put("/behaviour", json=changes))
        return result


def bench_env() -> dict[str, str]:
    """The environment for engine subprocesses: ours plus the simulators' credentials."""
    env = dict(os.environ)
    env.update(CREDENTIALS)
    return env


def export_credentials() -> None:
    """Put the simulators' credentials in this process's environment (configs read them)."""
    os.environ.update(CREDENTIALS)


if __name__ == "__main__":  # pragma: no cover - the child process
    serve_forever(sys.argv[1:])
