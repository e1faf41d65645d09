"""The checked-in fixtures equal a fresh deterministic generation."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.conftest import FIXTURES


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fixtures_generate", FIXTURES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_checked_in_fixtures_equal_a_fresh_generation(tmp_path: Path) -> None:
    gen = _generator()
    gen.generate(tmp_path / "fresh")
    assert gen.differences(tmp_path / "fresh", FIXTURES) == []


def test_generation_is_deterministic(tmp_path: Path) -> None:
    gen = _generator()
    gen.generate(tmp_path / "a")
    gen.generate(tmp_path / "b")
    assert gen.differences(tmp_path / "a", tmp_path / "b") == []
