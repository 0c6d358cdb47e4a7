"""Process-wide settings for a syncer process (the CLI applies them once, at start)."""

from __future__ import annotations

import gc

# A young collection after this many new container objects instead of CPython's 700. Ingest
# holds two pages of parsed documents (about 100,000 objects each) alive at once; at the
# default, every few hundred allocations start a collection that re-walks them, which cost
# 10-15 % of ingest CPU (docs/performance.md). syncer creates little cyclic garbage, so
# collecting less often costs little memory.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect cyclic garbage less often, and never re-walk what start-up left alive."""
    gc.freeze()  # modules, config, compiled templates: alive for the whole process anyway
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
