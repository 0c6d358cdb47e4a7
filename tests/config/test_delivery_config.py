"""The ``delivery`` section: the claim lease and the Retry-After cap (docs/operations.md)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from syncer.config import SyncerConfig

BASE: dict[str, Any] = {
    "version": 1,
    "source": {
        "type": "contacthub",
        "base_url": "http://contacthub.invalid",
        "workspace_id": "w",
        "node_id": "n",
        "token": "unused",
    },
    "targets": {
        "t": {"type": "octopush", "base_url": "http://o.invalid", "api_login": "l", "api_key": "k"}
    },
    "pipelines": [{"name": "p", "target": "t", "entity": "customer", "list": "L"}],
}


def test_defaults_are_a_5_minute_lease_and_a_15_minute_cap() -> None:
    cfg = SyncerConfig.model_validate(BASE)
    assert (cfg.delivery.claim_lease_seconds, cfg.delivery.max_retry_after_seconds) == (300, 900)


def test_durations_are_read_like_every_other() -> None:
    doc = {**BASE, "delivery": {"claim_lease_seconds": "2m", "max_retry_after_seconds": "90s"}}
    cfg = SyncerConfig.model_validate(doc)
    assert (cfg.delivery.claim_lease_seconds, cfg.delivery.max_retry_after_seconds) == (120, 90)


@pytest.mark.parametrize(
    ("key", "value", "bound"),
    [
        ("max_retry_after_seconds", "1h", "less than or equal to 900"),
        ("max_retry_after_seconds", "500ms", "greater than or equal to 1"),
        ("claim_lease_seconds", "5s", "greater than or equal to 10"),
    ],
)
def test_out_of_range_values_are_refused(key: str, value: Any, bound: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SyncerConfig.model_validate({**BASE, "delivery": {key: value}})
    assert bound in str(caught.value)
