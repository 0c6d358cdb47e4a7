"""Pure mapping: source documents to target-neutral records, driven by pipeline config.

No I/O and no imports of the source, targets, state or engine. The engine uses
:func:`compile_pipeline` / :func:`compile_pipelines`, :class:`PipelineMapper`,
:class:`MappedRecord`, :class:`InvalidRecord` and :func:`payload_hash`.
"""

from __future__ import annotations

from syncer.mapping.errors import InvalidRecord
from syncer.mapping.hashing import canonical_json, payload_hash
from syncer.mapping.mapper import MappedRecord, PipelineMapper, compile_pipeline, compile_pipelines
from syncer.mapping.paths import compile_path, get_path

__all__ = [
    "InvalidRecord",
    "MappedRecord",
    "PipelineMapper",
    "canonical_json",
    "compile_path",
    "compile_pipeline",
    "compile_pipelines",
    "get_path",
    "payload_hash",
]
