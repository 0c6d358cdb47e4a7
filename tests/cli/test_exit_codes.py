"""No command ends with a traceback: every failure is one line and the exit code that
docs/operations.md documents (0 ok, 1 records failed, 2 config or command line, 3 the operator
must act, 4 a service did not answer, 5 internal error).

Contacthub and the targets are the sandbox's simulators on 127.0.0.1, or a closed port.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from cli_helpers import Sandbox, closed_port, human_lines, run
from typer.testing import CliRunner

from syncer import logs
from syncer.cli import common
from syncer.cli.main import app
from syncer.demo.workspace import EXAMPLE_CONFIG
from syncer.errors import AuthError, PermanentError, RateLimited, RetryableError, StateError

SECRETS = {
    "CONTACTHUB_TOKEN": "zq-ch-token-5521",
    "NRS_USERNAME": "nrs-user",
    "NRS_API_PASSWORD": "zq-nrs-password-5521",
    "OCTOPUSH_LOGIN": "ops@example.com",
    "OCTOPUSH_API_KEY": "zq-octo-key-5521",
    "NP6_API_KEY": "zq-np6-key-5521",
}


def unreachable_config(folder: Path) -> Path:
    """The example config with Contacthub and every target on a closed port."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    doc["state"] = {"url": f"sqlite:///{folder / 'syncer.db'}"}
    port = closed_port()
    doc["source"]["base_url"] = f"http://127.0.0.1:{port}/hub/v1"
    for target in doc["targets"].values():
        target["base_url"] = f"http://127.0.0.1:{port}"
    path = folder / "syncer.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Contacthub's client retries at once (the six attempts, without their minutes)."""
    monkeypatch.setattr("syncer.source.contacthub.backoff_delay", lambda *_: 0.0)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SYNCER_CONFIG", raising=False)
    monkeypatch.delenv(common.DEBUG_ENV, raising=False)


@pytest.mark.parametrize("command", [["sync", "--once"], ["backfill"]])
@pytest.mark.usefixtures("no_backoff")
def test_unreachable_contacthub_is_one_line_and_exit_4(tmp_path: Path, command: list[str]) -> None:
    config = unreachable_config(tmp_path)
    result = CliRunner().invoke(app, ["--log-json", *command, "--config", str(config)])
    assert result.exit_code == common.EXIT_UNREACHABLE, result.output
    assert not isinstance(result.exception, RetryableError)  # handled, not escaped
    lines = human_lines(result.stderr)
    assert len(lines) == 1, lines
    assert "gave up after 6 attempts" in lines[0]
    assert "check source.base_url" in lines[0] and "run the command again" in lines[0]
    assert "Traceback" not in result.output
    for secret in SECRETS.values():
        assert secret not in result.output


def test_contacthub_400_on_backfill_is_one_line_and_exit_3(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    pipelines = copy.deepcopy(sandbox.doc["pipelines"])
    (orders,) = (p for p in pipelines if p["entity"] == "event")
    orders["event_types"] = ["completed_order"]  # the API's type is completedOrder
    config = sandbox.write(tmp_path, pipelines=pipelines)
    done = run(
        ["backfill", "--pipeline", orders["name"], "--config", str(config)],
        cwd=tmp_path,
        env=sandbox.env(),
    )
    assert done.returncode == common.EXIT_CANNOT_START, done.stderr
    *progress, last = human_lines(done.stderr)
    assert all(line.startswith("backfill customers: ") for line in progress), progress
    assert last.startswith("error: Contacthub event search answered 400")
    assert "completed_order" in last and "fix its cause in the config" in last
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["sync", "--once"], ["run"]], ids=" ".join)
def test_a_credential_refused_at_start_exits_3_before_anything_is_read(
    sandbox: Sandbox, tmp_path: Path, command: list[str]
) -> None:
    """Nothing is queued for the target yet: the refusal is still found, at start (the
    daemon too: no restart can fix it)."""
    config = sandbox.write(tmp_path)
    wrong = "zq-wrong-password-8813"
    done = run(
        [*command, "--config", str(config)],
        cwd=tmp_path,
        env=sandbox.env(NRS_API_PASSWORD=wrong),
    )
    assert done.returncode == common.EXIT_CANNOT_START, done.stdout + done.stderr
    assert human_lines(done.stderr) == [
        "error: target 'nrs': 360NRS 401: Username or password unknown",
        "fix the credentials named above and run again (nothing was read or sent)",
    ]
    assert done.stdout == ""  # no ingest, no delivery, no summary
    assert wrong not in done.stdout + done.stderr


def test_a_credential_refused_during_the_run_exits_3_not_1(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused once deliveries are under way (the check at start passed): the target stops,
    the others go on, and the run exits 3 naming it, not 1 like records that failed."""
    config = sandbox.write(tmp_path)
    done = run(["backfill", "--config", str(config)], cwd=tmp_path, env=sandbox.env())
    assert done.returncode == 0, done.stderr
    wrong = "zq-wrong-password-8813"
    for name, value in sandbox.env(NRS_API_PASSWORD=wrong).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("syncer.cli.sync_cmd.refused_credentials", lambda cfg: [])
    result = CliRunner().invoke(app, ["--log-json", "sync", "--once", "-c", str(config)])
    assert result.exit_code == common.EXIT_CANNOT_START, result.output
    lines = human_lines(result.stderr)
    assert lines == [
        "error: target nrs stopped: target 'nrs': 360NRS 401: Username or password unknown",
        "fix the credentials (or account) named above and run again",
    ]
    assert "octo: " in result.stdout and "np6: " in result.stdout  # the others delivered
    assert "Traceback" not in result.output and wrong not in result.output


def _failing_app(exc: BaseException) -> typer.Typer:
    demo = typer.Typer()

    @demo.command()
    def boom() -> None:
        raise exc

    @demo.command()
    def other() -> None:
        """A second command, so ``boom`` is a subcommand."""

    return demo


def test_unexpected_error_is_one_line_exit_5_and_traceback_on_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "zq-secret-in-a-bug-7741"
    logs.add_secrets([secret])
    demo = _failing_app(ZeroDivisionError(f"division by zero near {secret}"))
    monkeypatch.delenv(common.DEBUG_ENV, raising=False)
    monkeypatch.setattr("sys.argv", ["syncer", "boom"])
    with pytest.raises(SystemExit) as ended:
        common.run_main(demo)
    assert ended.value.code == common.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("internal error: ZeroDivisionError: division by zero near ***")
    assert "SYNCER_DEBUG=1" in err and secret not in err

    monkeypatch.setenv(common.DEBUG_ENV, "1")
    with pytest.raises(SystemExit) as ended:
        common.run_main(demo)
    assert ended.value.code == common.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in boom" in err
    assert err.splitlines()[-1].startswith("internal error: ZeroDivisionError")
    assert secret not in err


def test_usage_errors_keep_their_own_code(capsys: pytest.CaptureFixture[str]) -> None:
    demo = _failing_app(typer.Exit(7))
    with pytest.raises(SystemExit) as ended:
        common.run_main(lambda: demo(["boom"]))
    assert ended.value.code == 7
    with pytest.raises(SystemExit) as ended:
        common.run_main(lambda: demo(["boom", "--no-such-option"]))
    assert ended.value.code == common.EXIT_CONFIG
    assert "No such option" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("exc", "code", "start"),
    [
        (StateError("lease held"), 3, "error: lease held"),
        (AuthError("Contacthub 401: bad token"), 3, "error: Contacthub 401"),
        (PermanentError("Contacthub customer search answered 400: x"), 3, "error: Contacthub"),
        (RetryableError("target 'nrs': 503 (gave up)"), 4, "error: target 'nrs': 503"),
        (RateLimited("Contacthub 429"), 4, "error: Contacthub 429"),
        (PermissionError(13, "Permission denied"), 3, "error: [Errno 13] Permission denied"),
        (KeyError("x"), 5, "internal error: KeyError: 'x'"),
    ],
)
def test_every_error_class_has_its_code(exc: BaseException, code: int, start: str) -> None:
    got, message = common.describe_error(exc)
    assert (got, message[: len(start)]) == (code, start)
    assert "\n" not in message
