"""From a target's answer to what the store records: delivery state, retry time, id map.

=================  ====================================================================
answer             recorded
=================  ====================================================================
done               ``done``; id map (target id/key; last hash for upserts, cleared
                   after leave/delete so a later join is sent), memberships
retry              ``failed``, due after full-jitter backoff (or ``retry_after`` if
                   longer), one attempt spent; ``dead`` once ``max_attempts`` are spent
retry, 429         ``failed``, due after ``Retry-After``; no attempt spent
retry, pending     a target's job (an NP6 import) in progress: ``failed``, due after
                   ``retry_after`` (when the job is worth resuming); no attempt spent
retry of a known   also the identity the write used (``target_key``) next to the known
record's upsert    id, last hash dropped: the write may be there (an Octopush add)
dead / invalid     ``dead`` with the reason
not sent           (stop, open breaker) back to ``pending``/``failed``, no attempt spent
=================  ====================================================================
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson

from ..http import DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, backoff_delay
from ..state.delivery_ops import RowResult
from ..targets.base import Change, Known, Outcome
from .planner import Planned

DONE_DETAILS = ("created", "updated", "unchanged", "left", "deleted", "unsubscribed")


@dataclass
class TargetStats:
    """Counts of one target's deliveries in one run (``done`` = every done row)."""

    claimed: int = 0
    done: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    left: int = 0
    deleted: int = 0
    unsubscribed: int = 0
    skipped: int = 0
    retry: int = 0
    rate_limited: int = 0
    job_pending: int = 0  # answers "a job is in progress, resume later" (not failures)
    dead: int = 0
    invalid: int = 0
    released: int = 0
    throttled: int = 0  # 429 answers seen by the transport (waited out, not failures)
    waiting: int = 0  # rows of this target still open at the end (retry later)
    error: str | None = None  # the target stopped: credentials refused, ...

    @property
    def clean(self) -> bool:
        """Nothing dead, nothing left waiting, no target error: a run may report success."""
        return not (self.dead or self.invalid or self.waiting or self.error)

    def merge(self, other: TargetStats) -> None:
        for name, value in asdict(other).items():
            if isinstance(value, int) and name != "waiting":
                setattr(self, name, getattr(self, name) + value)
        self.waiting = other.waiting
        self.error = self.error or other.error

    def count(self, result: RowResult) -> None:
        outcome = result.outcome
        if result.state == "done":
            self.done += 1
            if outcome in DONE_DETAILS:
                setattr(self, outcome, getattr(self, outcome) + 1)
            else:
                self.skipped += 1
        elif outcome == "released":
            self.released += 1
        elif outcome == "rate_limited":
            self.rate_limited += 1
        elif outcome == "job_pending":
            self.job_pending += 1
        elif outcome == "invalid":
            self.invalid += 1
        elif result.state == "dead":
            self.dead += 1
        else:
            self.retry += 1

    def as_dict(self) -> dict[str, int | str | None]:
        return asdict(self)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_base: float
    backoff_max: float
    rng: random.Random | None = None
    # the longest wait a target's answer may ask for (config delivery.max_retry_after_seconds)
    max_retry_after: float = MAX_RETRY_AFTER


def to_result(
    p: Planned,
    out: Outcome | None,
    now: float,
    policy: RetryPolicy,
    release_until: float | None = None,
) -> RowResult:
    """The row result for planned change ``p`` given the target's answer ``out``; a change
    that went out carries what was sent (the delivery log keeps it for the console)."""
    result = _result(p, out, now, policy, release_until)
    if out is None or p.change is None:
        return result
    return replace(result, sent=sent_json(p.change))


def sent_json(change: Change) -> str:
    """What a change handed to its target: the action and, for an upsert, the mapped record
    (fields, groups, list, tag). Built from the customer's data by the mapping: it holds no
    credential (those live in the target's config, never in a record)."""
    sent: dict[str, Any] = {"action": change.action}
    record = change.record
    if record is not None and change.action == "upsert":
        sent["fields"] = record.fields
        if record.groups:
            sent["groups"] = list(record.groups)
        if record.list_name is not None:
            sent["list"] = record.list_name
        if record.tag is not None:
            sent["tag"] = record.tag
    return orjson.dumps(sent, default=str).decode()


def _result(
    p: Planned,
    out: Outcome | None,
    now: float,
    policy: RetryPolicy,
    release_until: float | None,
) -> RowResult:
    row = p.row
    if out is None:
        if p.kind in ("unchanged", "superseded"):
            return RowResult(row, "done", p.kind, p.subject_id, spend_attempt=False)
        if p.kind == "invalid":
            return RowResult(row, "dead", "invalid", p.subject_id, error=p.error)
        state = "failed" if row.attempts else "pending"
        return RowResult(
            row, state, "released", p.subject_id, due_at=release_until, spend_attempt=False
        )
    if out.status == "done":
        return _done(p, out)
    if out.status in ("dead", "invalid"):
        return RowResult(row, "dead", out.status, p.subject_id, error=out.error or out.status)
    error = out.error or "retry"
    if out.pending:  # the engine owns the wait: the job resumes when the row is due again
        return RowResult(
            row,
            "failed" if row.attempts else "pending",  # a job in progress is no failure
            "job_pending",
            p.subject_id,
            due_at=now + (out.retry_after or 0.0),
            spend_attempt=False,
            error=error,
        )
    if out.rate_limited:
        wait = out.retry_after if out.retry_after is not None else DEFAULT_RETRY_AFTER
        wait = min(wait, policy.max_retry_after)  # e.g. NP6's reset time, not a Retry-After
        return RowResult(
            row,
            "failed",
            "rate_limited",
            p.subject_id,
            due_at=now + wait,
            spend_attempt=False,
            error=error,
        )
    spent = row.attempts + 1
    # An upsert with no known id that failed may still have created the record: remember
    # that (id map row without an id) so every later change of the customer looks it up.
    maybe = row.action == "upsert" and p.change is not None and p.change.known.target_id is None
    # the identity that may be there now
    kept = _unconfirmed_identity(p, out) or {"target_key": out.target_key if maybe else None}
    if spent >= policy.max_attempts:
        error = f"gave up after {spent} attempts: {error}"
        return RowResult(
            row,
            "dead",
            "dead",
            p.subject_id,
            error=error,
            maybe_written=maybe,
            origin=out.origin if maybe else None,
            **kept,
        )
    delay = backoff_delay(spent, policy.backoff_base, policy.backoff_max, policy.rng)
    delay = max(delay, min(out.retry_after or 0.0, policy.max_retry_after))
    return RowResult(
        row,
        "failed",
        "retry",
        p.subject_id,
        due_at=now + delay,
        error=error,
        maybe_written=maybe,
        origin=out.origin if maybe else None,
        **kept,
    )


def _unconfirmed_identity(p: Planned, out: Outcome) -> dict[str, Any]:
    """A failed upsert of a *known* record may still have been applied under the identity it
    used (``out.target_key``, e.g. an Octopush add's ``"<phone> <list>"``): keep that key next
    to the known id, so the next change of the customer undoes what may be there. The last
    hash is dropped: what the target holds is no longer known."""
    known = p.change.known if p.change is not None else None
    if (
        p.row.action != "upsert"
        or known is None
        or known.target_id is None
        or not out.target_key
        or out.target_key == known.target_key
    ):
        return {}
    return {
        "set_id_map": True,
        "target_id": known.target_id,
        "target_key": out.target_key,
        "last_hash": None,
    }


def _done(p: Planned, out: Outcome) -> RowResult:
    known = p.change.known if p.change is not None else Known()
    upsert = p.row.action == "upsert"
    return RowResult(
        p.row,
        "done",
        out.detail or "done",
        p.subject_id,
        target_id=out.target_id or known.target_id,
        target_key=out.target_key or known.target_key,
        last_hash=p.hash if upsert else None,
        set_id_map=bool(out.target_id or known.target_id),
        forget=out.forget,
        memberships=out.memberships,
        member_key=out.member_key,
        spend_attempt=False,
        origin=out.origin,
        co_held=known.co_held,
    )


def known_after(known: Known, pipeline: str, out: Outcome) -> Known:
    """What the store will remember once ``out`` is recorded (for the next change of the
    same customer in the same batch)."""
    if out.status != "done":
        return known
    if out.forget:
        return Known()
    names = dict(known.memberships)
    keys = dict(known.member_keys)
    if out.memberships is not None:
        names[pipeline] = out.memberships
        if out.member_key is not None:
            keys[pipeline] = out.member_key
    return Known(
        out.target_id or known.target_id,
        out.target_key or known.target_key,
        names,
        keys,
        out.origin or known.origin,
        co_held=known.co_held,
        co_created=known.co_created,
    )
