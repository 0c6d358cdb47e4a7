"""``doc_version`` orders versions of one entity by instant, never by the spelling of a date."""

from __future__ import annotations

from syncer.engine.apply import doc_version


def test_the_same_instant_in_two_spellings_is_the_same_version() -> None:
    real = {"version": 3, "updatedAt": "2017-06-29T20:23:09.215+0000"}  # the API's spelling
    zulu = {"version": 3, "updatedAt": "2017-06-29T20:23:09.215Z"}
    offset = {"version": 3, "updatedAt": "2017-06-29T22:23:09.215+02:00"}
    assert doc_version(real) == doc_version(zulu) == doc_version(offset)
    assert doc_version(real) == (3, "2017-06-29T20:23:09.215+0000")


def test_a_later_instant_is_newer_whatever_the_text_says() -> None:
    # As text "...10:00:00.000Z" > "...10:00:00.500+0000" ('Z' sorts after '+'), and
    # "...11:00:00+02:00" > "...10:00:00.500+0000", though it is 09:00 UTC.
    old = {"version": 1, "updatedAt": "2024-01-01T10:00:00.000Z"}
    new = {"version": 1, "updatedAt": "2024-01-01T10:00:00.500+0000"}
    earlier = {"version": 1, "updatedAt": "2024-01-01T11:00:00+02:00"}
    assert doc_version(old) < doc_version(new)
    assert doc_version(earlier) < doc_version(old)


def test_version_first_then_a_missing_or_odd_date_sorts_first() -> None:
    assert doc_version({"version": 2}) > doc_version({"version": 1, "updatedAt": "2030-01-01Z"})
    assert doc_version({"version": 1, "updatedAt": "soon"}) == (1, "")
    assert doc_version({"updatedAt": None}) == (0, "")
