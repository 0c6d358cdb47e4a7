"""The contract between the delivery engine and a target connector.

The engine owns the loop: it claims deliveries, maps them (pure mapping code), skips unchanged
payloads, rate-limits requests (the HTTP client it hands over is already limited), retries,
records outcomes, id maps and memberships in the state store. A target only speaks its API:

* :meth:`Target.apply` receives a batch of :class:`Change` (what should become true in the
  target for one customer/event and one pipeline, plus what the state store knows from earlier
  deliveries) and answers one :class:`Outcome` per change, in any order.
* Targets never import the state store or the engine. What they must remember between calls
  (group ids, lists created, imports in flight) goes through :class:`TargetContext`, which the
  engine implements on top of the store.

Outcome statuses (the engine acts on them):

========  ===================================================================================
done      applied (or nothing to do); ``target_id``/``target_key``/``memberships`` are recorded
retry     transient failure; retried with backoff (``retry_after`` if the API gave one);
          ``rate_limited=True`` means a 429: the wait does not spend the attempt budget;
          ``pending=True``: a job is in progress, come back in ``retry_after`` (no attempt)
dead      the target rejected the record for good (4xx validation): dead-letter with ``error``
invalid   rejected before sending (no phone, name too long): dead-letter with ``error``
========  ===================================================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..mapping.mapper import MappedRecord
from ..mapping.names import NamePatterns

ChangeAction = Literal["upsert", "leave", "delete"]
OutcomeStatus = Literal["done", "retry", "dead", "invalid"]
OnDelete = Literal["delete", "remove_from_list", "unsubscribe", "ignore"]


@dataclass(frozen=True)
class Known:
    """What the state store remembers about one customer in one target."""

    target_id: str | None = None
    target_key: str | None = None  # e.g. the phone a contact was added under, the NP6 unicity
    # names this customer is in, per pipeline, as last delivered (groups, lists)
    memberships: Mapping[str, frozenset[str]] = field(default_factory=dict)
    member_keys: Mapping[str, str] = field(default_factory=dict)  # per pipeline: key used
    #: provenance: "syncer" (syncer created the record), "found" (it was there before syncer
    #: wrote to it), None (unknown, e.g. recorded before provenance was kept: not syncer's)
    origin: str | None = None
    #: when syncer noted, before a create's call, the identity it uses (an id map row with no
    #: target id yet; the database clock): a record found under it that was created since is
    #: syncer's own create whose answer was lost (a crash between the call and the commit)
    noted_at: float | None = None
    #: the names other customers hold on the same record (their id map rows point to it: one
    #: e-mail in two sources, or twice in one): a write keeps them, a leave or a delete of
    #: this customer never takes the record away from them
    co_held: frozenset[str] = frozenset()
    #: syncer created the record for one of those other customers: once nobody holds it, it
    #: is syncer's to delete
    co_created: bool = False

    def other_pipelines_names(self, pipeline: str) -> frozenset[str]:
        """What the record must keep besides ``pipeline``'s names: this customer's other
        pipelines' and the other customers' on the same record (:attr:`co_held`)."""
        names: set[str] = set(self.co_held)
        for name, groups in self.memberships.items():
            if name != pipeline:
                names |= groups
        return frozenset(names)


@dataclass(frozen=True)
class Change:
    """One delivery handed to a target.

    ``action``: ``upsert`` (the record should exist with these fields and memberships),
    ``leave`` (the customer no longer matches the pipeline: remove this pipeline's
    memberships, keep the contact), ``delete`` (the customer was deleted in Contacthub: do what
    ``on_delete`` says).
    """

    delivery_id: int
    pipeline: str
    entity_id: str
    action: ChangeAction
    on_delete: OnDelete
    record: MappedRecord | None
    known: Known
    attempt: int = 1
    #: True when an earlier try may have reached the target (a retry, or a claim taken over
    #: from a crashed worker): look the record up before creating it, never create twice.
    resent: bool = False
    #: the group names some pipeline of this target can render: syncer's groups on the
    #: account, whatever the state recorded (see :mod:`syncer.mapping.names`)
    syncer_groups: NamePatterns = field(default_factory=NamePatterns)


@dataclass(frozen=True)
class Outcome:
    """The target's answer for one :class:`Change`."""

    delivery_id: int
    status: OutcomeStatus
    detail: str = ""  # created, updated, unchanged, left, deleted, unsubscribed, skipped...
    target_id: str | None = None
    target_key: str | None = None
    # this pipeline's memberships after the change; None = leave the stored ones as they are
    memberships: frozenset[str] | None = None
    member_key: str | None = None
    error: str | None = None
    retry_after: float | None = None
    rate_limited: bool = False
    #: a job of the target (an NP6 import) is in progress: the engine re-queues the change for
    #: ``retry_after`` seconds, spending no attempt, and the next apply resumes the job
    pending: bool = False
    forget: bool = False  # the customer is gone from the target: drop its id map row
    #: provenance learnt by this call: "syncer" (created now), "found" (the record was there
    #: before syncer wrote to it); None keeps what the id map holds
    origin: str | None = None

    @staticmethod
    def done(change: Change, detail: str, **kw: Any) -> Outcome:
        return Outcome(change.delivery_id, "done", detail, **kw)

    @staticmethod
    def retry(change: Change, error: str, **kw: Any) -> Outcome:
        return Outcome(change.delivery_id, "retry", error=error, **kw)

    @staticmethod
    def dead(change: Change, error: str) -> Outcome:
        return Outcome(change.delivery_id, "dead", error=error)

    @staticmethod
    def invalid(change: Change, error: str) -> Outcome:
        return Outcome(change.delivery_id, "invalid", error=error)


@dataclass(frozen=True)
class Job:
    """Multi-step target work persisted before it starts (e.g. an NP6 import in flight)."""

    id: int
    pipeline: str
    kind: str
    phase: str
    data: dict[str, Any]


@dataclass(frozen=True)
class FlushPolicy:
    """For targets that load files: hold deliveries until ``max_rows`` are due or the oldest
    due one has waited ``flush_every`` seconds (the engine also flushes at the end of
    ``sync --once``)."""

    max_rows: int
    flush_every: float


class TargetContext(Protocol):
    """Durable memory the engine lends a target (backed by the state store)."""

    def kv_get(self, key: str) -> str | None: ...

    def kv_set(self, key: str, value: str) -> None: ...

    def kv_lock(self, key: str) -> AbstractContextManager[None]:
        """Held while creating a shared object (a group, a list) so two workers, threads or
        processes never create it twice; re-check ``kv_get`` inside."""
        ...

    def job_create(self, pipeline: str, kind: str, phase: str, data: dict[str, Any]) -> int: ...

    def job_update(self, job_id: int, phase: str, data: dict[str, Any]) -> None: ...

    def job_finish(self, job_id: int) -> None: ...

    def jobs_open(self, kind: str) -> list[Job]: ...


class Target(Protocol):
    """A target connector. One instance per configured target; the engine calls it from one
    worker (``apply`` may be called from several threads at once when ``per_record`` is
    true)."""

    name: str
    #: True: the engine calls apply() with one change at a time, up to max_in_flight at once
    #: (APIs with one record per call). False: apply() gets whole batches (batch APIs).
    per_record: bool

    def flush_policy(self) -> FlushPolicy | None:
        """None: deliver as soon as due. Otherwise: hold rows until the policy says flush."""
        ...

    def check(self) -> None:
        """Cheap authenticated call; raise :class:`syncer.errors.AuthError` when refused."""
        ...

    def apply(self, changes: Sequence[Change], ctx: TargetContext) -> list[Outcome]:
        """Make ``changes`` true in the target; one Outcome per change. Must not raise for a
        record-level problem (answer dead/invalid/retry instead).

        The engine owns the order of a customer's actions: a per-record target gets one
        customer's changes one call at a time, in order; a batch target at most one change
        per customer per call; a flush target (``flush_policy``) a customer's rows in delivery
        order, and never a write with a later removal (leave, delete) in one call. So a
        target may send a call's changes in any order its API likes.

        With ``Capabilities(identity=True)`` in its spec the target also has
        ``identity(change) -> str | None`` (:class:`IdentifyingTarget`), the key a create of
        ``change`` uses. The engine stores it before the call, and a re-send after a crash gets
        it back as ``known.target_key`` (with no ``target_id``) to look the record up by."""
        ...

    def close(self) -> None: ...


class IdentifyingTarget(Target, Protocol):
    """A target whose spec declares ``Capabilities(identity=True)``."""

    def identity(self, change: Change) -> str | None:
        """The key a create of ``change`` uses (kept by the engine before the call)."""
        ...


class KeyedTarget(Target, Protocol):
    """A target whose spec declares ``Capabilities(batch_key=True)``."""

    def batch_key(self, change: Change) -> str | None:
        """The call ``change`` goes into (its list), None when it adds nothing."""
        ...


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
