"""The password of ``state.url`` is a secret: never in logs, error messages or dumps.

It is a plain string in the config (a SQLAlchemy URL, written inline or through ``${VAR}``),
not a ``SecretStr``, so it used to be missed by the log redactor. Here: the commands that open
the state database, run as subprocesses at debug level against a closed port and against a
fake PostgreSQL server that refuses the password, must say what is wrong (``state.url``,
host, port) and never show the password, in any form.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from syncer import logs
from syncer.cli.common import load
from syncer.config import ConfigError, load_config, secret_values

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "CONTACTHUB_TOKEN": "ch-token-123",
    "NRS_USERNAME": "nrs-user",
    "NRS_API_PASSWORD": "nrs-password-456",
    "OCTOPUSH_LOGIN": "ops@example.com",
    "OCTOPUSH_API_KEY": "octo-key-789",
    "NP6_API_KEY": "np6-key-abc",
}
INLINE = "zqInlinePw7731"
FROM_ENV = "zqEnv/Pw@9:x"  # URL-special characters: percent-encoded in the variable
FROM_ENV_ENCODED = urllib.parse.quote(FROM_ENV, safe="")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, url: str) -> Path:
    data: dict[str, Any] = yaml.safe_load((ROOT / "config" / "example.yaml").read_text())
    data["state"] = {"url": url}
    path.write_text(yaml.safe_dump(data))
    return path


def forms(password: str) -> list[str]:
    """Every form the password must not appear in."""
    return [
        password,
        urllib.parse.quote(password, safe=""),
        urllib.parse.quote_plus(password),
    ]


def cli(
    cfg: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **ENV, **(env or {})}
    full.pop("SYNCER_CONFIG", None)
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("syncer")),
            "--log-level",
            "debug",
            "--log-json",
            *args,
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        cwd=cfg.parent,
    )


COMMANDS = [
    ("status", "--json"),
    ("sync", "--once"),
    ("run",),
    ("db", "check"),
    ("db", "upgrade"),
    ("dlq", "list"),
    ("plan",),
    ("offsets", "show"),
    ("health",),
]


class FakePostgres:
    """Answers every connection like a PostgreSQL server refusing the password: no SSL,
    asks for a clear-text password (so the client really sends it), then FATAL 28P01."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.passwords: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                self._one(conn)

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _one(self, conn: socket.socket) -> None:
        while True:  # SSLRequest / GSSENCRequest: "N", then the startup message
            (length,) = struct.unpack("!i", self._read(conn, 4))
            body = self._read(conn, length - 4)
            if struct.unpack("!i", body[:4])[0] in (80877103, 80877104):
                conn.sendall(b"N")
                continue
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = self._read(conn, 1)
        (length,) = struct.unpack("!i", self._read(conn, 4))
        if kind == b"p":
            self.passwords.append(self._read(conn, length - 4).rstrip(b"\0"))
        fields = b"".join(
            code + text.encode() + b"\0"
            for code, text in (
                (b"S", "FATAL"),
                (b"V", "FATAL"),
                (b"C", "28P01"),
                (b"M", 'password authentication failed for user "syncer"'),
            )
        )
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 5) + fields + b"\0")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_pg() -> Iterator[FakePostgres]:
    server = FakePostgres()
    yield server
    server.close()


def assert_clean(result: subprocess.CompletedProcess[str], secret: str, port: int) -> None:
    out = result.stdout + result.stderr
    for form in forms(secret):
        assert form not in out, (form, out[-3000:])
    assert result.returncode == 3, out[-3000:]
    assert "state.url" in out and "127.0.0.1" in out and str(port) in out, out[-3000:]


@pytest.mark.parametrize("how", ["inline", "env"])
def test_unreachable_database_names_state_url_never_the_password(tmp_path: Path, how: str) -> None:
    port = closed_port()
    if how == "inline":
        secret, env = INLINE, {}
        url = f"postgresql+psycopg://syncer:{INLINE}@127.0.0.1:{port}/syncer"
    else:
        secret, env = FROM_ENV, {"PGPW": FROM_ENV_ENCODED}
        url = f"postgresql+psycopg://syncer:${{PGPW}}@127.0.0.1:{port}/syncer"
    cfg = write_config(tmp_path / "syncer.yaml", url)
    for command in COMMANDS if how == "inline" else COMMANDS[:3]:
        result = cli(cfg, *command, env=env)
        assert_clean(result, secret, port)
        assert "Connection refused" in result.stderr, result.stderr[-2000:]


def test_refused_password_is_named_but_never_shown(tmp_path: Path, fake_pg: FakePostgres) -> None:
    url = f"postgresql+psycopg://syncer:${{PGPW}}@127.0.0.1:{fake_pg.port}/syncer?sslmode=disable"
    cfg = write_config(tmp_path / "syncer.yaml", url)
    for command in (("status", "--json"), ("sync", "--once"), ("db", "upgrade")):
        result = cli(cfg, *command, env={"PGPW": FROM_ENV_ENCODED})
        assert_clean(result, FROM_ENV, fake_pg.port)
        assert "password authentication failed" in result.stderr, result.stderr[-2000:]
    assert fake_pg.passwords and set(fake_pg.passwords) == {FROM_ENV.encode()}  # really sent


def test_password_in_a_query_parameter_is_hidden_too(tmp_path: Path) -> None:
    port = closed_port()
    url = f"postgresql+psycopg://syncer@127.0.0.1:{port}/syncer?password={INLINE}"
    cfg = write_config(tmp_path / "syncer.yaml", url)
    result = cli(cfg, "status", "--json")
    assert_clean(result, INLINE, port)
    assert "password=***" in result.stderr


def test_secret_values_hold_the_url_password_in_every_form(tmp_path: Path) -> None:
    url = "postgresql+psycopg://syncer:${PGPW}@db.example:5432/syncer"
    cfg = load_config(write_config(tmp_path / "c.yaml", url), {**ENV, "PGPW": FROM_ENV_ENCODED})
    values = secret_values(cfg)
    assert FROM_ENV in values and FROM_ENV_ENCODED in values
    assert "octo-key-789" in values  # the SecretStr values are still there
    assert not any("db.example" in v or v == "syncer" for v in values)  # host, user kept
    for form in forms(FROM_ENV):
        assert form not in repr(cfg) and form not in cfg.model_dump_json()
    assert "db.example:5432" in repr(cfg)
    assert cfg.state.url.endswith("@db.example:5432/syncer")  # the real URL is unchanged


def test_registered_on_load_and_redacted_from_log_lines(tmp_path: Path) -> None:
    """What ``syncer`` commands do first (``cli.common.load``): every later log line, even a
    driver error repeating the URL, is redacted."""
    url = f"postgresql+psycopg://syncer:{INLINE}q@127.0.0.1:1/syncer"
    cfg_path = write_config(tmp_path / "c.yaml", url)
    stream = io.StringIO()
    logs.configure("debug", json=True, stream=stream)
    try:
        os.environ.update(ENV)
        load(cfg_path)
        structlog.get_logger().error(
            "state database unavailable", error=f"could not connect to {url}", url=url
        )
    finally:
        for name in ENV:
            os.environ.pop(name, None)
        structlog.reset_defaults()
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert INLINE not in stream.getvalue()
    assert line["url"] == "postgresql+psycopg://syncer:***@127.0.0.1:1/syncer"


def test_a_password_that_breaks_the_url_is_a_config_error(tmp_path: Path) -> None:
    """Unencoded, ``zqEnv/Pw@9:x`` would end the password at ``/``: the rest would be read as
    host and database and shown in connection errors. Refused, without repeating it."""
    url = "postgresql+psycopg://syncer:${PGPW}@127.0.0.1:5432/syncer"
    cfg = write_config(tmp_path / "c.yaml", url)
    with pytest.raises(ConfigError) as caught:
        load_config(cfg, {**ENV, "PGPW": FROM_ENV})
    text = str(caught.value)
    assert "state.url" in text and "PGPW" in text and "percent-encode" in text
    assert all(part not in text for part in ("zqEnv", "Pw@9", "9:x"))
    assert load_config(cfg, {**ENV, "PGPW": FROM_ENV_ENCODED}).state.url  # encoded: fine
