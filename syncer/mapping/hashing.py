"""A stable digest of a mapped record, to skip sending unchanged payloads."""

from __future__ import annotations

import hashlib
import json

from syncer.mapping.mapper import MappedRecord

__all__ = ["canonical_json", "payload_hash"]


def canonical_json(record: MappedRecord) -> str:
    """Canonical JSON of ``record``: sorted keys, no spaces; group order does not count."""
    body = {
        "fields": record.fields,
        "groups": sorted(record.groups),
        "list_name": record.list_name,
        "tag": record.tag,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def payload_hash(record: MappedRecord) -> str:
    """Hex sha256 of :func:`canonical_json`; equal records always give equal hashes."""
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()
