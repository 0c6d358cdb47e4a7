"""No secret leaks anywhere: with a distinctive value for each of the six secrets of
``config/example.yaml`` (all three target types, over real HTTP against the sandbox), run
backfill, ``sync --once`` and a short ``syncer run`` at debug level, then runs where
credentials are refused (a wrong Octopush key, a wrong 360NRS password, a wrong Contacthub
token), and scan everything syncer wrote or said: every log line (stdout and stderr),
``/metrics``, ``/healthz``, ``/readyz``, every table of the state database, ``status --json``,
``plan``, ``dlq list --json``, ``offsets show``, ``health`` and every error message. None may hold
a secret value, nor its base64 form, nor the base64 Basic-auth ``user:password``.
"""

from __future__ import annotations

import base64
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
from sandbox_env import (
    SECRETS,
    cli,
    config_doc,
    customer,
    order,
    sandbox,
    start,
    wait_for,
    write_config,
)


def forbidden(secrets: dict[str, str]) -> dict[str, str]:
    """Every form of every secret that must never appear, with a label saying which."""
    out: dict[str, str] = {}
    for name, value in secrets.items():
        out[value] = name
        out[base64.b64encode(value.encode()).decode()] = f"base64({name})"
        out[urllib.parse.quote(value, safe="")] = f"urlencoded({name})"
    basic = f"{secrets['NRS_USERNAME']}:{secrets['NRS_API_PASSWORD']}"
    out[base64.b64encode(basic.encode()).decode()] = "360NRS Basic auth"
    octo = f"{secrets['OCTOPUSH_LOGIN']}:{secrets['OCTOPUSH_API_KEY']}"
    out[base64.b64encode(octo.encode()).decode()] = "Octopush login:key"
    return out


def leaks(where: str, text: str, secrets: dict[str, str]) -> list[str]:
    return [f"{label} in {where}" for value, label in forbidden(secrets).items() if value in text]


def dump_database(path: Path) -> str:
    """Every row of every table, as text (SQL dump), plus the lock file."""
    conn = sqlite3.connect(path)
    try:
        text = "\n".join(conn.iterdump())
    finally:
        conn.close()
    lock = path.with_name(path.name + ".lock")
    return text + (lock.read_text() if lock.exists() else "")


def _outputs(result: Any) -> str:
    return f"{result.stdout}\n{result.stderr}"


def test_no_secret_in_logs_metrics_database_or_any_output(tmp_path: Path) -> None:
    wrong_octo = {**SECRETS, "OCTOPUSH_API_KEY": "zqWRONGOCTOKEYq4b61e0"}
    wrong_nrs = {**SECRETS, "NRS_API_PASSWORD": "zqWRONGNRSPASSq8c3d"}
    wrong_hub = {**SECRETS, "CONTACTHUB_TOKEN": "zqWRONGCHTOKENq1f9a7"}
    db = tmp_path / "state.db"
    seen: list[tuple[str, str, dict[str, str]]] = []  # (where, text, secrets in force)

    def record(where: str, result: Any, secrets: dict[str, str] = SECRETS) -> Any:
        seen.append((where, _outputs(result), secrets))
        return result

    with sandbox() as sb:
        doc = config_doc(sb, f"sqlite:///{db}", page_size=20)
        cfg = write_config(tmp_path / "syncer.yaml", doc)
        good = [customer(n) for n in range(1, 31)]
        bad = [customer(31, base={"contacts": {"email": "nope", "mobilePhone": "12"}})]
        sb.load(good + bad, [order(n, good[n]["id"]) for n in range(10)])

        record("validate", cli(cfg, "validate"))
        assert record("backfill", cli(cfg, "--log-level", "debug", "backfill")).returncode == 0
        record("plan", cli(cfg, "plan"))
        once = record("sync --once", cli(cfg, "--log-level", "debug", "sync", "--once"))
        assert once.returncode == 1  # the bad customer is dead

        sb.load([customer(n) for n in range(40, 50)])
        metrics_url = f"http://{doc['metrics']['address']}"
        with start(cfg, "--log-level", "debug", "run") as daemon:
            wait_for(lambda: len(sb.state("nrs360")["contacts"]) == 40, 60, "daemon delivered")
            scraped = {
                path: httpx.get(metrics_url + path, timeout=10).text
                for path in ("/metrics", "/healthz", "/readyz")
            }
            code, out, err = daemon.stop()
        assert code == 0, err[-2000:]
        seen.append(("syncer run", out + err, SECRETS))
        seen += [(f"GET {path}", body, SECRETS) for path, body in scraped.items()]
        assert "syncer_records_delivered_total" in scraped["/metrics"]

        # credentials refused: a wrong Octopush key, a wrong 360NRS password, a wrong token
        sb.load([customer(n) for n in range(60, 65)])
        refused = record("wrong octopush key", cli(cfg, "sync", "--once", secrets=wrong_octo))
        # refused at start: exit 3 (the operator must act), not 1 (records failed)
        assert refused.returncode == 3, refused.stdout + refused.stderr[-2000:]
        assert "Octopush" in refused.stderr and "401" in refused.stderr
        with start(cfg, "run", secrets=wrong_octo) as daemon:
            wait_for(lambda: "401" in daemon.stderr or "refused" in daemon.stderr, 30, "refusal")
            _, out, err = daemon.stop()
        seen.append(("syncer run, wrong octopush key", out + err, wrong_octo))
        sb.load([customer(n) for n in range(70, 72)])
        record("wrong nrs password", cli(cfg, "sync", "--once", secrets=wrong_nrs), wrong_nrs)
        hub = record("wrong token", cli(cfg, "sync", "--once", secrets=wrong_hub), wrong_hub)
        assert hub.returncode == 3 and "check the token" in hub.stderr
        record("status --json", cli(cfg, "status", "--json"))
        record("dlq list --json", cli(cfg, "dlq", "list", "--json"))
        record("dlq list", cli(cfg, "dlq", "list"))
        record("offsets show", cli(cfg, "offsets", "show"))
        record("health", cli(cfg, "health"))
        record("plan after", cli(cfg, "plan"))

    seen.append(("state database", dump_database(db), SECRETS))
    wrong = {**wrong_octo, **wrong_nrs, **wrong_hub}
    every = {**SECRETS, **{f"wrong {k}": v for k, v in wrong.items()}}
    found = [leak for where, text, _ in seen for leak in leaks(where, text, every)]
    assert not found, found
    assert all("Traceback" not in text for where, text, _ in seen if where != "state database")
