"""Interpreter tuning for the replay loop is scoped: settings come back whatever happens."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from audit.replay.tuning import fewer_collections, quick_thread_handoff


def test_fewer_collections_restores_thresholds_and_unfreezes_even_on_error() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold() == (50_000, 20, 100) and gc.get_freeze_count() >= frozen
        raise RuntimeError
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_quick_thread_handoff_restores_the_switch_interval_even_on_error() -> None:
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), quick_thread_handoff():
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        raise RuntimeError
    assert sys.getswitchinterval() == before


def test_overlapping_holders_restore_only_when_the_last_one_leaves() -> None:
    # Two replays in two threads: the first to finish must not undo the setting
    # under the other, and the last must restore what was there before either.
    before = sys.getswitchinterval()
    inside, leave_first = threading.Event(), threading.Event()

    def other() -> None:
        with quick_thread_handoff():
            inside.set()
            leave_first.wait(5)

    thread = threading.Thread(target=other)
    with quick_thread_handoff():
        thread.start()
        assert inside.wait(5)
    assert sys.getswitchinterval() == pytest.approx(0.0005)  # the other thread is still inside
    leave_first.set()
    thread.join(5)
    assert sys.getswitchinterval() == before
    with fewer_collections(), fewer_collections():
        assert gc.get_threshold() == (50_000, 20, 100)
    assert gc.get_threshold() != (50_000, 20, 100)
