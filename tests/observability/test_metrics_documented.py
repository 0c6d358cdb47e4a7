"""Every metric docs/operations.md lists is served by a real ``syncer run`` on the sandbox."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))
from sandbox_env import config_doc, sandbox, start, wait_for, write_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
# Documented metrics a short clean run has no reason to produce a sample of (they are declared,
# so their HELP/TYPE lines are served): no 429 in the sandbox here.
NO_SAMPLE_NEEDED = {"syncer_http_429_total", "syncer_optional_fields_omitted_total"}


def documented_metrics() -> list[str]:
    section = DOC.read_text(encoding="utf-8").split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(syncer_[a-z0-9_]+)", section, re.MULTILINE)


def served(text: str) -> tuple[set[str], dict[str, list[str]]]:
    """Names declared (``# TYPE``) and sample lines by metric name (suffixes folded)."""
    declared = set(re.findall(r"^# TYPE (\S+) (\S+)", text, re.MULTILINE))
    names = {n for n, _ in declared} | {f"{n}_total" for n, kind in declared if kind == "counter"}
    samples: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            for base in (name, re.sub(r"_(bucket|sum|count|created)$", "", name)):
                samples.setdefault(base, []).append(line)
    return names, samples


def test_every_documented_metric_is_served_during_a_run(tmp_path: Path) -> None:
    documented = documented_metrics()
    assert {
        "syncer_stream_last_offset",
        "syncer_stream_lag_offsets",
        "syncer_stream_lag_seconds",
        "syncer_last_success_timestamp",
    } <= set(documented)
    with sandbox() as sb:
        sb.contacthub.load(
            {"generate": {"customers": 120, "events": 60, "seed": 4}, "append_updates": True}
        )
        doc = config_doc(sb, f"sqlite:///{tmp_path / 'state.db'}")
        cfg = write_config(tmp_path / "syncer.yaml", doc)
        base = f"http://{doc['metrics']['address']}"
        with start(cfg, "run") as daemon:

            def scrape() -> str | None:
                try:
                    text = httpx.get(base + "/metrics", timeout=5).text
                except httpx.TransportError:
                    return None
                # caught up and every target delivered at least once
                ok = 'syncer_last_success_timestamp{job="ingest"}' in text and all(
                    f'job="deliver:{t}"' in text for t in ("nrs", "octo", "np6")
                )
                return text if ok else None

            text = wait_for(scrape, timeout=60, what="a scrape after a full run")
            assert daemon.alive()
            code, _out, err = daemon.stop()
        assert code == 0, err[-2000:]
    names, samples = served(text)
    missing = [m for m in documented if m not in names]
    assert not missing, f"documented but not served: {missing}"
    silent = [m for m in documented if m not in samples and m not in NO_SAMPLE_NEEDED]
    assert not silent, f"served without a sample: {silent}"
    stream = re.escape(f"{doc['source']['workspace_id']}/{doc['source']['node_id']}")
    last = re.search(rf'^syncer_stream_last_offset{{stream="{stream}"}} (\S+)$', text, re.M)
    offset = re.search(rf'^syncer_stream_offset{{stream="{stream}"}} (\S+)$', text, re.M)
    lag = re.search(rf'^syncer_stream_lag_offsets{{stream="{stream}"}} (\S+)$', text, re.M)
    assert last and offset and lag
    assert float(last.group(1)) == float(offset.group(1)) > 0  # caught up: last == committed
    assert float(lag.group(1)) == 0.0
    success = re.search(r'^syncer_last_success_timestamp{job="ingest"} (\S+)$', text, re.M)
    assert success and abs(float(success.group(1)) - time.time()) < 120
    assert f'syncer_source_up{{stream="{doc["source"]["workspace_id"]}' in text
