"""Interpreter settings for the replay hot loop: garbage collection and thread hand-off.

A replay allocates and frees millions of short-lived objects (decoded events,
keys) while holding a large, long-lived heap (policy enforcers, models, caches).
CPython's default thresholds then run a collection every 700 net allocations and
full collections that rescan the long-lived heap; that costs about a tenth of a
replay. :func:`fewer_collections` freezes what exists into the permanent
generation and collects young objects less often, restoring both on exit. Cycles
are still collected. It changes no result, only when the collector runs.

:func:`quick_thread_handoff` shortens the interval after which a thread holding the
GIL must let a waiting one run (5 ms by default). A parallel replay's main thread
judges segments itself while the process pool's helper threads wait to feed the
workers and collect their results; each hand-off waiting 5 ms left workers idle for
about a tenth of the run. It changes no result, only scheduling.
"""

from __future__ import annotations

import gc
import sys
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


_SWITCH_INTERVAL = 0.0005


@contextmanager
def quick_thread_handoff() -> Iterator[None]:
    """Run the body with a 0.5 ms GIL switch interval, restoring the old one on exit."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(old)
