"""Ctrl-C and the child processes this one starts: the parent handles it, a child ignores it.

Ctrl-C reaches the whole process group. A child started to share the work (a replay
worker, the process writing the exports) must not print a ``KeyboardInterrupt``
traceback of its own: it is started inside :func:`sigint_held`, so it starts with
SIGINT blocked, and calls :func:`ignore_sigint` first thing, which discards a Ctrl-C
pressed while it started. Where threads have no signal mask (Windows) only the
ignoring is done. This module starts no process and installs no handler here.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

_CAN_MASK = hasattr(signal, "pthread_sigmask")
"""POSIX: a thread's signals can be blocked (not on Windows)."""


@contextmanager
def sigint_held() -> Iterator[None]:
    """SIGINT blocked in this thread while the body runs; what it starts (processes, threads) inherits the mask.

    A Ctrl-C pressed meanwhile is raised here once the body is done. Threads started in
    the body keep the mask for good, which is right: Python handles signals in the
    main thread only.
    """
    if not _CAN_MASK:
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def ignore_sigint() -> None:
    """In a child started inside :func:`sigint_held`: ignore SIGINT, then unblock it (a held one is discarded)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _CAN_MASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
