"""A target type added by another distribution, through the ``syncer.targets`` entry point
only (issue 15: "a new target is one folder"): ``plugin_pkg`` holds the package ``echo_target``
and its installed metadata (``echo_target-0.1.dist-info/entry_points.txt``); putting that
folder on ``sys.path`` (``PYTHONPATH`` of a fresh interpreter) is all it takes for
``syncer validate``, ``syncer config schema`` and a delivery to know the type."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

PLUGIN = Path(__file__).parent / "plugin_pkg"
SYNCER = Path(sys.executable).parent / "syncer"


def write_config(tmp_path: Path, **target_extra: object) -> Path:
    config = {
        "version": 1,
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "source": {
            "type": "contacthub",
            "base_url": "http://contacthub.invalid",
            "workspace_id": "w",
            "node_id": "n",
            "token": "${CONTACTHUB_TOKEN}",
        },
        "targets": {"files": {"type": "echo", "directory": str(tmp_path / "out"), **target_extra}},
        "pipelines": [
            {
                "name": "people",
                "target": "files",
                "entity": "customer",
                "fields": {"email": "base.contacts.email", "name": "base.firstName"},
                "on_delete": "delete",
            }
        ],
    }
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run(args: list[str], *, plugin: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTACTHUB_TOKEN": "t"}
    env.pop("SYNCER_CONFIG", None)
    path = [str(PLUGIN)] if plugin else []
    env["PYTHONPATH"] = os.pathsep.join(path + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


def test_validate_and_schema_know_the_type_from_its_entry_point(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    ok = run([str(SYNCER), "validate", "--config", str(config)])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    schema = json.loads(run([str(SYNCER), "config", "schema"]).stdout)
    echo = schema["$defs"]["EchoTargetConfig"]
    assert echo["properties"]["directory"]["description"] == "Where the customers' files go."


def test_a_plugin_config_error_is_one_clear_line(tmp_path: Path) -> None:
    typo = run([str(SYNCER), "validate", "--config", str(write_config(tmp_path, directroy="x"))])
    assert typo.returncode == 2 and "directroy" in typo.stdout + typo.stderr
    assert "Traceback" not in typo.stdout + typo.stderr


def test_without_its_distribution_the_type_is_unknown(tmp_path: Path) -> None:
    """The entry point is what adds the type: nothing in syncer names it."""
    config = write_config(tmp_path)
    alone = run([str(SYNCER), "validate", "--config", str(config)], plugin=False)
    assert alone.returncode == 2 and "echo" in alone.stdout + alone.stderr


DELIVER = textwrap.dedent(
    """
    import json, sys
    import orjson
    from syncer.config import load_config
    from syncer.engine.apply import Applier, Incoming, rules_from_config
    from syncer.engine.deliver import Deliverer
    from syncer.state.store import Store

    cfg = load_config(sys.argv[1])
    store = Store(cfg.state.url)
    applier = Applier(rules_from_config(cfg))

    def feed(operation, doc, offset):
        item = Incoming("stream", "customer", operation, doc, orjson.dumps(doc).decode(),
                        offset, 0)
        with store.transaction() as conn:
            applier.apply(conn, "s", [item])

    doc = {"id": "c1", "version": 1, "base": {"firstName": "Ana",
           "contacts": {"email": "ana@example.com"}}}
    feed("UPDATE", doc, 1)
    with Deliverer(cfg, store, run_id="plugin") as deliverer:
        first = deliverer.run_all_once()["files"]
        after_put = sorted(p.name for p in __import__("pathlib").Path(sys.argv[2]).iterdir())
        feed("DELETE", {"id": "c1", "version": 2}, 2)
        second = deliverer.run_all_once()["files"]
    print(json.dumps({"first": first.as_dict(), "second": second.as_dict(),
                      "after_put": after_put}))
    """
)


def test_a_plugin_target_delivers_end_to_end(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "out").mkdir()
    done = run([sys.executable, "-c", DELIVER, str(config), str(tmp_path / "out")])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["first"]["created"], result["first"]["dead"]) == (1, 0)
    assert result["after_put"] == ["c1.json"]
    assert (result["second"]["deleted"], result["second"]["dead"]) == (1, 0)
    assert list((tmp_path / "out").iterdir()) == []  # the delete went to the plugin too
