"""Garbage-collector settings for the replay hot loop.

A replay allocates and frees millions of short-lived objects (decoded events,
keys) while holding a large, long-lived heap (policy enforcers, models, caches).
CPython's default thresholds then run a collection every 700 net allocations and
full collections that rescan the long-lived heap; that costs about a tenth of a
replay. :func:`fewer_collections` freezes what exists into the permanent
generation and collects young objects less often, restoring both on exit. Cycles
are still collected. It changes no result, only when the collector runs.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the body with the heap so far frozen and young collections every 50,000 allocations."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
