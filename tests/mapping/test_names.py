"""Which group names a pipeline's templates can render (syncer's groups on an account)."""

from __future__ import annotations

import pytest

from syncer.mapping.names import NamePatterns, name_pattern

PATTERNS = NamePatterns.of(["Newsletter", "Country {{ base.address.country | upper }}"])


@pytest.mark.parametrize(
    ("name", "syncers"),
    [
        ("Newsletter", True),
        ("newsletter", True),  # 360NRS compares names case-insensitively
        (" Newsletter ", True),
        ("Country IT", True),
        ("Country", True),  # a value that printed nothing
        ("News letter", False),
        ("Newsletter 2", False),
        ("Staff", False),
        ("My Country IT", False),
    ],
)
def test_a_name_is_syncers_when_a_template_renders_it(name: str, syncers: bool) -> None:
    assert PATTERNS.match(name) is syncers


@pytest.mark.parametrize("source", ["{{ tag }}", "{{ a }} {{ b }}", "{% if vip %}VIP{% endif %}"])
def test_a_template_that_can_render_anything_gives_no_pattern(source: str) -> None:
    assert name_pattern(source) is None
    assert not NamePatterns.of([source]).match("Staff")


def test_literal_text_is_not_a_regex() -> None:
    assert NamePatterns.of(["VIP (gold) {{ x }}"]).match("VIP (gold) 2026")
    assert not NamePatterns.of(["V.P"]).match("VIP")
