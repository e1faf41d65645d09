"""Discover rule modules: every module of a package (but ``base`` and ``_private`` ones) exporting ``RULE``.

Used by the replay and residency rule packages, which keep one rule per file. Checks
the type and the uniqueness of ids; does not validate rule metadata (each rule's own
pydantic model does).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Protocol, TypeVar


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=_HasId)


def load_rule_modules(package: str, path: Iterable[str], kind: type[R]) -> dict[str, R]:
    """``RULE`` of every module in ``package`` by id, in module-name order."""
    rules: dict[str, R] = {}
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        rule = module.RULE
        if not isinstance(rule, kind):
            raise TypeError(f"{module.__name__}.RULE is not a {kind.__name__}")
        if rule.id in rules:
            raise ValueError(f"duplicate rule id {rule.id!r} in {module.__name__}")
        rules[rule.id] = rule
    return rules
