"""Interpreter settings for the replay hot loop: garbage collection and thread hand-off.

A replay allocates and frees millions of short-lived objects (decoded events,
keys) while holding a large, long-lived heap (policy enforcers, models, caches).
CPython's default thresholds then run a collection every 700 net allocations and
full collections that rescan the long-lived heap; that costs about a tenth of a
replay. :func:`fewer_collections` freezes what exists into the permanent
generation and collects young objects less often. Cycles are still collected.

:func:`quick_thread_handoff` shortens the interval after which a thread holding the
GIL must let a waiting one run (5 ms by default). A parallel replay's main thread
judges segments itself while the process pool's helper threads wait to feed the
workers and collect their results; each hand-off waiting 5 ms left workers idle for
about a tenth of the run.

Both settings belong to the whole process, so each is applied when the first holder
enters (in any thread) and restored when the last one leaves. They change no result,
only when the collector and the scheduler run.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

_THRESHOLDS = (50_000, 20, 100)
_SWITCH_INTERVAL = 0.0005


def _process_wide(apply: Callable[[], Callable[[], None]]) -> Callable[[], AbstractContextManager[None]]:
    """A context manager applying a process-wide setting while at least one holder is inside.

    ``apply`` changes the setting and returns what undoes it.
    """
    lock = threading.Lock()
    holders = 0
    undo: Callable[[], None] | None = None

    @contextmanager
    def scope() -> Iterator[None]:
        nonlocal holders, undo
        with lock:
            if holders == 0:
                undo = apply()
            holders += 1
        try:
            yield
        finally:
            with lock:
                holders -= 1
                if holders == 0 and undo is not None:
                    undo()
                    undo = None

    return scope


def _collect_less() -> Callable[[], None]:
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*_THRESHOLDS)

    def undo() -> None:
        gc.set_threshold(*old)
        gc.unfreeze()

    return undo


def _switch_quickly() -> Callable[[], None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(_SWITCH_INTERVAL)
    return lambda: sys.setswitchinterval(old)


fewer_collections = _process_wide(_collect_less)
"""Run the body with the heap so far frozen and young collections every 50,000 allocations."""

quick_thread_handoff = _process_wide(_switch_quickly)
"""Run the body with a 0.5 ms GIL switch interval."""
