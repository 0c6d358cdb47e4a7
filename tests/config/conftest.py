"""Shared fixtures for config tests: the example file and a complete fake environment."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.yaml"

ENV = {
    "CONTACTHUB_TOKEN": "ch-token-123",
    "NRS_USERNAME": "nrs-user",
    "NRS_API_PASSWORD": "nrs-password-456",
    "OCTOPUSH_LOGIN": "ops@example.com",
    "OCTOPUSH_API_KEY": "octo-key-789",
    "NP6_API_KEY": "np6-key-abc",
}


@pytest.fixture
def env() -> dict[str, str]:
    """Every environment variable the example config references, with fake values."""
    return dict(ENV)


@pytest.fixture
def example_path() -> Path:
    """The path of config/example.yaml."""
    return EXAMPLE


@pytest.fixture(scope="session")
def example_data() -> dict[str, Any]:
    """The example config as parsed YAML, with its ${...} references unexpanded."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def example_copy(example_data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the example config that a test may change."""
    return copy.deepcopy(example_data)
