"""The Octopush target: contacts in named lists, in the API's batch shapes.

One :meth:`OctopushTarget.apply` call:

1. plans every change (:mod:`.plan`): invalid records and no-op changes are answered at once;
2. sends the leaves first, grouped by list, at most 200 numbers per ``contact/delete`` (a phone
   that moves from one customer to another in the same batch is removed before it is added);
3. makes sure every list joined exists (``contact-list/create`` once per list, under
   ``ctx.kv_lock``, remembered in ``ctx.kv``);
4. sends the joins grouped by (list, tag), ``batch_size`` contacts per ``contact/create``, and
   reads each contact's ``status``: ``added``/``updated`` are done, any other (``skipped``)
   was not applied although the call answered 201: that change is dead with the status.

A call Octopush rejects as a whole (a 4xx other than auth/429) is split in halves until the bad
contacts are isolated: they go dead with Octopush's message, the rest succeed. Calls for n adds
into lists that already exist: at most ``ceil(n / batch_size) + lists - 1``; each new list
costs one more call, once.

A customer's changes come one per call: the engine orders them (round k of a claim holds
every customer's k-th change) and carries what each left to the next.

An add whose answer is lost may still have put the number in the list: :meth:`identity` gives
the engine the add's ``"<phone> <list>"`` to keep in the id map before the call, and a retried
add answers it as ``target_key`` too, so a re-send after a phone or list change removes the
number from the list it may be in (see :mod:`.plan`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import httpx

from ..base import Change, FlushPolicy, Outcome, TargetContext, chunks
from ..errors import ApiRejected, RateLimited, RetryableError, outcome_for
from .client import MAX_DELETE, OctopushApiError, OctopushClient
from .plan import ChangePlan, Join, identity_key, plan_change

if TYPE_CHECKING:
    from .spec import OctopushTargetConfig

__all__ = ["OctopushTarget"]

LIST_KEY = "octopush:list:"  # ctx.kv key prefix: "1" once the list is known to exist
_K = TypeVar("_K")


#: why an operation did not go through, in the shared taxonomy (:mod:`syncer.targets.errors`)
_Failure = RetryableError | ApiRejected


class OctopushTarget:
    """Octopush contacts and lists (see the module docstring). Batch target: ``per_record``
    is False and there is no flush policy."""

    per_record = False

    def __init__(self, name: str, client: OctopushClient, batch_size: int = 500) -> None:
        self.name = name
        self.client = client
        self.batch_size = batch_size
        self._throttle: RateLimited | None = None

    @classmethod
    def from_config(
        cls, name: str, config: OctopushTargetConfig, http: httpx.Client
    ) -> OctopushTarget:
        """Build the target from its config section and the engine's HTTP client."""
        client = OctopushClient(
            http, config.base_url, config.api_login, config.api_key.get_secret_value()
        )
        return cls(name, client, config.batch_size)

    def flush_policy(self) -> FlushPolicy | None:
        return None

    def check(self) -> None:
        self.client.check()

    def close(self) -> None:
        """Nothing to release: the HTTP client belongs to the engine."""

    def identity(self, change: Change) -> str | None:
        """The key an add of ``change`` uses, ``"<phone> <list>"`` (the engine keeps it
        before the call, so a re-send knows where a lost add may have put the number)."""
        if change.action != "upsert":
            return None
        return _join_key(plan_change(change))

    def batch_key(self, change: Change) -> str | None:
        """The call ``change``'s add goes into: its list and tag (``contact/create`` carries
        one of each), or None when it adds nothing. The engine fills each key's calls to
        ``batch_size`` across claims (see :mod:`syncer.engine.listfill`)."""
        plan = plan_change(change)
        if plan.final is not None or not plan.joins:
            return None
        join = plan.joins[0]
        return f"{join.list_name}\n{join.tag or ''}"

    # -- apply -------------------------------------------------------------------------------
    def apply(self, changes: Sequence[Change], ctx: TargetContext) -> list[Outcome]:
        """Apply ``changes``; one outcome each. Raises only :class:`~syncer.errors.AuthError`.
        The engine sends at most one change per customer in a call (a customer's later
        changes go in later calls, each planned from what the earlier one left), so the
        order of a call's changes does not matter."""
        self._throttle = None
        return self._apply_round(sorted(changes, key=lambda c: c.delivery_id), ctx)

    def _apply_round(self, changes: list[Change], ctx: TargetContext) -> list[Outcome]:
        plans = [plan_change(c) for c in changes]
        failed: dict[int, _Failure] = {}
        statuses: dict[int, str] = {}
        self._send_leaves([p for p in plans if p.final is None], failed)
        self._send_joins([p for p in plans if p.final is None], ctx, failed, statuses)
        outcomes = []
        for plan in plans:
            did = plan.change.delivery_id
            if plan.final is not None:
                outcomes.append(plan.final)
            elif did in failed:
                outcome = outcome_for(plan.change, failed[did])
                key = _join_key(plan) if outcome.status == "retry" else None
                if key is not None:  # the add may be there: the identity it used
                    outcome = dataclasses.replace(outcome, target_key=key)
                outcomes.append(outcome)
            else:
                outcomes.append(plan.success(statuses.get(did)))
        return outcomes

    @staticmethod
    def _fail(failed: dict[int, _Failure], plan: ChangePlan, failure: _Failure) -> None:
        current = failed.get(plan.change.delivery_id)
        if current is None or (
            isinstance(current, RetryableError) and isinstance(failure, ApiRejected)
        ):
            failed[plan.change.delivery_id] = failure

    # -- leaves ------------------------------------------------------------------------------
    def _send_leaves(self, plans: list[ChangePlan], failed: dict[int, _Failure]) -> None:
        groups: dict[str | None, dict[str, list[ChangePlan]]] = {}
        for plan in plans:
            for leave in plan.leaves:
                groups.setdefault(leave.list_name, {}).setdefault(leave.phone, []).append(plan)
        for list_name, by_phone in groups.items():
            for chunk in chunks(list(by_phone), MAX_DELETE):
                for phone, failure in self._delete(list(chunk), list_name).items():
                    for plan in by_phone[phone]:
                        self._fail(failed, plan, failure)

    def _delete(self, phones: list[str], list_name: str | None) -> dict[str, _Failure]:
        """Failures by phone; a whole-call 4xx is split in halves to isolate bad numbers."""
        if self._throttle is not None:
            return dict.fromkeys(phones, self._throttle)
        try:
            self.client.delete_contacts(phones, list_name)
        except RetryableError as exc:
            return self._retry_all(phones, exc)
        except OctopushApiError as exc:
            if exc.status == 404:  # the list does not exist: nobody is in it
                return {}
            if len(phones) == 1:
                return {phones[0]: exc}
            half = len(phones) // 2
            return {
                **self._delete(phones[:half], list_name),
                **self._delete(phones[half:], list_name),
            }
        return {}

    def _retry_all(self, keys: list[_K], exc: RetryableError) -> dict[_K, _Failure]:
        if isinstance(exc, RateLimited):
            self._throttle = exc
        return dict.fromkeys(keys, exc)

    # -- lists and joins ---------------------------------------------------------------------
    def _ensure_list(self, name: str, ctx: TargetContext, *, again: bool = False) -> None:
        key = LIST_KEY + name
        if not again and ctx.kv_get(key) == "1":
            return
        with ctx.kv_lock(key):
            if not again and ctx.kv_get(key) == "1":
                return
            self.client.create_list(name)
            ctx.kv_set(key, "1")

    def _send_joins(
        self,
        plans: list[ChangePlan],
        ctx: TargetContext,
        failed: dict[int, _Failure],
        statuses: dict[int, str],
    ) -> None:
        groups: dict[tuple[str, str | None], list[tuple[Join, ChangePlan]]] = {}
        for plan in plans:
            for join in plan.joins:
                groups.setdefault((join.list_name, join.tag), []).append((join, plan))
        for (list_name, tag), items in groups.items():
            try:
                if self._throttle is None:
                    self._ensure_list(list_name, ctx)
            except RetryableError as exc:
                self._retry_all([0], exc)
                for _, plan in items:
                    self._fail(failed, plan, exc)
                continue
            except OctopushApiError as exc:
                for _, plan in items:
                    self._fail(failed, plan, ApiRejected(exc.status, f"list {list_name!r}: {exc}"))
                continue
            for chunk in chunks(items, self.batch_size):
                results = self._create(list_name, tag, list(chunk), ctx, relisted=False)
                for (_, plan), result in zip(chunk, results, strict=True):
                    if isinstance(result, _Failure):
                        self._fail(failed, plan, result)
                    else:
                        statuses[plan.change.delivery_id] = result

    def _create(
        self,
        list_name: str,
        tag: str | None,
        items: list[tuple[Join, ChangePlan]],
        ctx: TargetContext,
        relisted: bool,
    ) -> list[str | _Failure]:
        """One result per item: Octopush's status, or why it failed."""
        if self._throttle is not None:
            return [self._throttle] * len(items)
        try:
            by_phone = self.client.create_contacts(list_name, tag, [j.contact for j, _ in items])
        except RetryableError as exc:
            return list(self._retry_all(list(range(len(items))), exc).values())
        except OctopushApiError as exc:
            if exc.status == 404 and not relisted:  # the list vanished: create it again, once
                try:
                    self._ensure_list(list_name, ctx, again=True)
                except (RetryableError, OctopushApiError) as list_exc:
                    return [RetryableError(f"list {list_name!r}: {list_exc}")] * len(items)
                return self._create(list_name, tag, items, ctx, relisted=True)
            if len(items) == 1:
                return [exc]
            half = len(items) // 2
            return self._create(list_name, tag, items[:half], ctx, relisted) + self._create(
                list_name, tag, items[half:], ctx, relisted
            )
        return [_item_result(join, by_phone.get(join.phone, "updated")) for join, _ in items]


APPLIED = ("added", "updated")  # per-item statuses that mean the contact is in the list


def _item_result(join: Join, status: str) -> str | _Failure:
    """One item of a 201: ``added``/``updated`` applied it; anything else did not. syncer never
    sends ``do_not_overwrite``, so ``skipped`` means Octopush ignored the contact (a number it
    refused, a blacklisted one): dead with that reason. An item missing from the answer is
    taken as applied (the API may answer 2xx with no items, DIGEST 3.3)."""
    if status in APPLIED:
        return status
    return ApiRejected(
        0, f"Octopush did not add {join.phone} to {join.list_name!r}: item status {status!r}"
    )


def _join_key(plan: ChangePlan) -> str | None:
    """:func:`~.plan.identity_key` of the plan's add, if it has one."""
    if plan.final is not None or not plan.joins:
        return None
    return identity_key(plan.joins[0].phone, plan.joins[0].list_name)
