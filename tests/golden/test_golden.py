"""Golden files: every config under config/ maps every sample input to the expected payload.

For each ``config/<config>.yaml``, pipeline and ``inputs/<input>.json`` that the pipeline
accepts, ``expected/<config>__<pipeline>__<input>.json`` holds the mapped record (or
``{"invalid": reason}``). A combination the pipeline does not accept has no expected file,
and the test checks that too. The expected files are written by hand, not generated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from syncer.config import load_config
from syncer.mapping import InvalidRecord, compile_pipelines

HERE = Path(__file__).resolve().parent
CONFIGS = sorted((HERE.parents[1] / "config").glob("*.yaml"))
INPUTS = sorted((HERE / "inputs").glob("*.json"))
EXPECTED = HERE / "expected"
ENV = {
    name: f"fake-{name.lower()}"
    for name in (
        "CONTACTHUB_TOKEN", "NRS_USERNAME", "NRS_API_PASSWORD", "OCTOPUSH_LOGIN",
        "OCTOPUSH_API_KEY", "NP6_API_KEY",
    )
}  # fmt: skip


def _outcome(config: Path, pipeline: str, sample: dict[str, Any]) -> dict[str, Any] | None:
    mapper = compile_pipelines(load_config(config, env=ENV))[pipeline]
    if not mapper.accepts(sample["entity_type"], sample["document"]):
        return None
    try:
        record = mapper.map(sample["document"])
    except InvalidRecord as exc:
        return {"invalid": exc.reason}
    return {
        "fields": record.fields,
        "groups": list(record.groups),
        "list_name": record.list_name,
        "tag": record.tag,
    }


def _cases() -> list[tuple[Path, str, Path]]:
    cases: list[tuple[Path, str, Path]] = []
    for config in CONFIGS:
        for pipeline in load_config(config, env=ENV).pipelines:
            cases.extend((config, pipeline.name, sample) for sample in INPUTS)
    return cases


def _id(case: tuple[Path, str, Path]) -> str:
    return f"{case[0].stem}__{case[1]}__{case[2].stem}"


@pytest.mark.parametrize("case", _cases(), ids=_id)
def test_golden(case: tuple[Path, str, Path]) -> None:
    config, pipeline, input_path = case
    sample = json.loads(input_path.read_text(encoding="utf-8"))
    outcome = _outcome(config, pipeline, sample)
    expected_path = EXPECTED / f"{_id(case)}.json"
    if outcome is None:
        assert not expected_path.exists(), f"{pipeline} does not accept {input_path.name}"
        return
    assert expected_path.exists(), f"missing {expected_path.name}; outcome: {json.dumps(outcome)}"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert outcome == expected
    assert list(outcome.get("fields", {})) == list(expected.get("fields", {}))  # order too


def test_every_expected_file_belongs_to_a_case() -> None:
    names = {f"{_id(case)}.json" for case in _cases()}
    stray = sorted(p.name for p in EXPECTED.glob("*.json") if p.name not in names)
    assert not stray


def test_every_config_and_input_is_covered() -> None:
    assert len(CONFIGS) >= 3
    used = {p.name.split("__")[0] for p in EXPECTED.glob("*.json")}
    assert used == {c.stem for c in CONFIGS}
    inputs = {p.stem.split("__")[2] for p in EXPECTED.glob("*.json")}
    assert inputs | {"event_cart_in_store"} == {p.stem for p in INPUTS}
