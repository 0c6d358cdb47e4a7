"""The standard target suite (tests/targets/contract.py) run against the NP6 simulator, in the
default import mode (rows flushed as CSV imports at the end of each run).

Adapted, because NP6 has no lists or groups for syncer to manage: every membership expected
and seen is empty, and ``join_and_leave`` checks that leaving pipeline ``a`` keeps the target
(only ``leave`` is counted, nothing is called). Fields use the simulator's default import
format 1234 (columns 1001 Email, 1002, 1003 numeric, 1004 date): pipeline ``a`` writes 1002,
pipeline ``b`` writes 1003. A bad value (an e-mail NP6 rejects) fails the import (state 2) and
is isolated by splitting the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
from contract import Seen, TargetContract

from syncer.sandbox.np6 import Np6Simulator
from syncer.sandbox.serve import ServedApp

KEY = "sandbox-np6-key"


class TestNp6Contract(TargetContract):
    skip: ClassVar[dict[str, str]] = {
        "existing_contact_keeps_its_other_groups": (
            "NP6 has no groups or lists syncer manages: a target's other data is its fields, "
            "which syncer's imports and upserts never clear"
        ),
    }
    on_delete_modes: ClassVar[tuple[str, ...]] = ("delete", "unsubscribe")
    bad_reason = "execution state 2"

    @pytest.fixture(scope="class")
    @classmethod
    def served(cls) -> Iterator[str]:
        with ServedApp(Np6Simulator(api_key=KEY).asgi()) as app:
            yield app.url

    @pytest.fixture(autouse=True)
    def _fast_imports(self, sim_url: str) -> None:
        httpx.post(
            sim_url + "/_sandbox/load", json={"behaviour": {"processing_seconds": 0.02}}
        ).raise_for_status()

    def target_settings(self, sim_url: str) -> dict[str, Any]:
        return {
            "type": "np6",
            "base_url": sim_url,
            "api_key": KEY,
            "import": {"binding": 1234, "flush_every": "1s", "max_rows": 1000},
        }

    def pipeline_settings(self, name: str) -> dict[str, Any]:
        if name == "a":
            return {"fields": {"1001": "base.contacts.email", "1002": "base.firstName"}}
        return {"fields": {"1001": "base.contacts.email", "1003": "extended.points"}}

    def customer_doc(self, n: int, variant: int = 0) -> dict[str, Any]:
        return {
            "base": {"firstName": f"Ana{variant}", "contacts": {"email": self.key_of(n)}},
            "extended": {"points": 10 + n},
        }

    def bad_customer_doc(self, n: int) -> dict[str, Any]:
        doc = self.customer_doc(n)
        doc["base"]["contacts"]["email"] = "not an email"
        return doc

    def key_of(self, n: int) -> str:
        return f"c{n}@example.com"

    def seen(self, state: dict[str, Any]) -> list[Seen]:
        return [
            Seen(t["fields"]["1001"], dict(t["fields"]), frozenset(), bool(t["redList"]))
            for t in state["targets"]
        ]

    def expected_fields(self, n: int, variant: int) -> dict[str, Any]:
        return {"1002": f"Ana{variant}"}

    def expected_memberships(self, n: int, pipelines: set[str]) -> frozenset[str]:
        return frozenset()

    def test_an_import_in_progress_is_requeued_without_spending_attempts(
        self, harness: Any, sim_url: str, sim_state: Any
    ) -> None:
        """The NP6 import as an engine-owned job (issue 15): the target never waits for NP6;
        the engine re-queues the rows of an import in progress and the job resumes."""
        # processing (choice) much longer than the first poll wait for 3 rows (0.25 s)
        httpx.post(
            sim_url + "/_sandbox/load", json={"behaviour": {"processing_seconds": 1.0}}
        ).raise_for_status()
        for n in (1, 2, 3):
            self.put(harness, n, {"a"})
        stats = harness.run(wait=0)  # sync --once: waits for the job although wait is 0
        assert (stats.done, stats.waiting, stats.dead) == (3, 0, 0), stats
        assert stats.job_pending >= 3, stats  # re-queued at least once while processing
        assert {r["attempts"] for r in harness.rows()} == {0}  # a wait is not an attempt
        assert sim_state()["executionCount"] == 1
        for n in (1, 2, 3):
            self.check(sim_state(), n, 0, {"a"})


def test_no_target_sleeps() -> None:
    """Every wait is the engine's (a due time); a target module that sleeps holds a worker
    thread past shutdown and claim leases."""
    from pathlib import Path

    import syncer.targets

    root = Path(syncer.targets.__file__).parent
    sleepers = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "sleep(" in p.read_text(encoding="utf-8")
    ]
    assert sleepers == []
