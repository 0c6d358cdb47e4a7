"""Rejected records are logged once per pipeline and reason, with a count and an example."""

from __future__ import annotations

import structlog

from syncer.logs import RecordProblems, get_logger, mask_values


def test_one_line_per_pipeline_and_reason_with_count_and_example() -> None:
    problems = RecordProblems()
    for i in range(233):
        problems.add("dead", "newsletter", f"field 'phone': phone '+39 {i:07d}' is bad", f"c{i}", i)
    problems.add("dead", "newsletter", "no key field: 360NRS needs email", "x", 900)
    problems.add("failed", "newsletter", "HTTP 503 from 360NRS", "y", 901)
    with structlog.testing.capture_logs() as logged:
        assert problems.flush(get_logger(target="nrs")) == 3
        assert problems.flush(get_logger(target="nrs")) == 0  # flushed groups start again
    dead = [e for e in logged if e["event"] == "records dead"]
    assert [(e["count"], e["example_contacthub_id"]) for e in dead] == [(233, "c0"), (1, "x")]
    assert dead[0]["reason"] == "field 'phone': phone '…' is bad"
    assert dead[0]["details"] == "syncer dlq list --pipeline newsletter"
    assert all(e["log_level"] == "warning" for e in dead)
    (retry,) = [e for e in logged if e["event"] == "records will be retried"]
    assert retry["log_level"] == "info" and retry["count"] == 1


def test_records_rejected_before_sending_are_logged_as_invalid() -> None:
    problems = RecordProblems()
    problems.add("invalid", "sms", "no key field: Octopush needs phone_number", "c1", 1)
    problems.add("dead", "sms", "HTTP 422 from Octopush", "c2", 2)
    with structlog.testing.capture_logs() as logged:
        assert problems.flush(get_logger(target="octo")) == 2
    events = {e["event"]: e for e in logged}
    assert set(events) == {"records invalid", "records dead"}
    assert events["records invalid"]["log_level"] == "warning"
    assert events["records invalid"]["details"] == "syncer dlq list --pipeline sms"


def test_mask_values_keeps_the_field_and_hides_the_record_values() -> None:
    assert mask_values("field 'phone': +34709957094 is not a mobile number") == (
        "field 'phone': … is not a mobile number"
    )
    assert mask_values("gave up after 8 attempts: HTTP 503") == "gave up after 8 attempts: HTTP 503"
