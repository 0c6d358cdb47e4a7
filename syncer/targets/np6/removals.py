"""NP6 deletes and unsubscribes, and the per-target upsert path.

* ``on_delete: delete``: ``DELETE /targets`` in bulk by unicity (chunks of
  :data:`DELETE_CHUNK`; a whole-call 4xx is split in halves to isolate the bad value). An
  account that answers 404 for an unknown value (NP6-SLATE ``_errors.md``) instead of
  ignoring it: the value alone answered 404 is already gone, so it is done.
* ``on_delete: unsubscribe``: the target id (known, else ``GET /targets?unicity=``), then the
  mail and sms redlists (``POST /targets/{id}/redlist/{channel}``).
* ``mode: upsert``: one ``PUT /targets?unicity=`` per record.

The unicity value of a customer is ``known.target_key`` (what was sent last), else the value
of the unicity field in the mapped record.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import RetryableError
from ..base import Change, Outcome, chunks
from ..errors import outcome_for
from .client import Np6ApiError, Np6Client, Np6NotFound

__all__ = ["DELETE_CHUNK", "delete_targets", "unicity_of", "unsubscribe", "upsert"]

DELETE_CHUNK = 500  # values per bulk delete; NP6 documents no limit


def unicity_of(change: Change, unicity_field: str) -> str | None:
    """The unicity value to address this customer by, if any."""
    if change.known.target_key:
        return change.known.target_key
    if change.record is not None:
        value = change.record.fields.get(unicity_field)
        if value not in (None, ""):
            return str(value)
    return None


def delete_targets(
    client: Np6Client, changes: Sequence[Change], unicity_field: str
) -> list[Outcome]:
    """Bulk-delete the customers of ``changes`` (``on_delete: delete``)."""
    outcomes: list[Outcome] = []
    keyed: list[tuple[str, Change]] = []
    for change in changes:
        key = unicity_of(change, unicity_field)
        if key is None:  # never sent to NP6: nothing to delete
            outcomes.append(Outcome.done(change, "deleted", forget=True))
        else:
            keyed.append((key, change))
    for chunk in chunks(keyed, DELETE_CHUNK):
        outcomes.extend(_delete(client, list(chunk)))
    return outcomes


def _delete(client: Np6Client, items: list[tuple[str, Change]]) -> list[Outcome]:
    try:
        client.delete_targets([key for key, _ in items])
    except RetryableError as exc:
        return [outcome_for(change, exc) for _, change in items]
    except Np6ApiError as exc:
        if len(items) == 1:
            if isinstance(exc, Np6NotFound):  # NP6-SLATE's 404 for an unknown target: gone
                key, change = items[0]
                return [Outcome.done(change, "deleted", target_key=key, forget=True)]
            return [Outcome.dead(items[0][1], str(exc))]
        half = len(items) // 2
        return _delete(client, items[:half]) + _delete(client, items[half:])
    return [Outcome.done(c, "deleted", target_key=k, forget=True) for k, c in items]


def unsubscribe(client: Np6Client, change: Change, unicity_field: str) -> Outcome:
    """Put the customer on the mail and sms redlists (``on_delete: unsubscribe``)."""
    key = unicity_of(change, unicity_field)
    try:
        known = change.known
        # after an import the stored "id" is the unicity value itself, not an NP6 id
        target_id = known.target_id if known.target_id != known.target_key else None
        if not target_id and key is not None:
            found = client.find_target(key)
            target_id = str(found["id"]) if found and found.get("id") else None
        if not target_id:
            return Outcome.done(change, "not found")
        for channel in ("mail", "sms"):
            client.redlist(target_id, channel, "syncer: deleted in Contacthub")
    except (RetryableError, Np6ApiError) as exc:
        return outcome_for(change, exc)
    return Outcome.done(change, "unsubscribed", target_id=target_id, target_key=key)


def upsert(client: Np6Client, change: Change, unicity_field: str) -> Outcome:
    """``PUT /targets?unicity=`` with the record's ``{fieldId: value}`` (``mode: upsert``)."""
    record = change.record
    if record is None:
        return Outcome.invalid(change, "no mapped record to upsert")
    key = record.fields.get(unicity_field)
    if key in (None, ""):
        return Outcome.invalid(change, f"no value for the NP6 unicity field {unicity_field}")
    try:
        target = client.upsert_target(str(key), dict(record.fields))
    except (RetryableError, Np6ApiError) as exc:
        return outcome_for(change, exc)
    target_id = str(target["id"]) if target.get("id") else change.known.target_id
    detail = "updated" if change.known.target_key or change.known.target_id else "created"
    return Outcome.done(change, detail, target_id=target_id, target_key=str(key))
