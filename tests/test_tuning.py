"""Interpreter tuning for the replay loop is scoped: settings come back whatever happens."""

from __future__ import annotations

import gc
import sys

import pytest

from audit.replay.tuning import fewer_collections, quick_thread_handoff


def test_fewer_collections_restores_thresholds_and_unfreezes_even_on_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold() == (50_000, 20, 100) and gc.get_freeze_count() > 0
        raise RuntimeError
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_quick_thread_handoff_restores_the_switch_interval_even_on_error() -> None:
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), quick_thread_handoff():
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        raise RuntimeError
    assert sys.getswitchinterval() == before
