"""The sandbox fixture of the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_helpers import Sandbox, start_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    yield from start_sandbox()
