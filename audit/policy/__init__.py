"""Policy packs: load a pack (or dated versions of one) and decide fact requests.

A pack is a directory with ``model.conf``, ``policy.csv``, ``pack.yaml`` and
``commitments.yaml``; :func:`load_pack` validates it with file:line diagnostics and
:meth:`PolicyPack.decide` answers ``(facet, sub, obj, act, ctx)`` requests with the
deciding row, its commitment and rule id. :func:`load_policy` loads one pack or a
directory of versions as a :class:`PolicyHistory`. Deriving requests from events
is the replay engine's job (:mod:`audit.replay`), not this package's.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.policy.config import EXPIRED_SUFFIX, PackConfig, PackRule, StoreSet, TransitionalStore
    from audit.policy.load import load_pack, load_policy
    from audit.policy.pack import (
        DEFAULT_COMMITMENT,
        DEFAULT_RULE,
        Decision,
        PolicyHistory,
        PolicyPack,
        PolicyRow,
        Request,
    )
    from audit.policy.parse import PACK_FILES

__all__ = [
    "DEFAULT_COMMITMENT",
    "DEFAULT_RULE",
    "EXPIRED_SUFFIX",
    "PACK_FILES",
    "Decision",
    "PackConfig",
    "PackRule",
    "PolicyHistory",
    "PolicyPack",
    "PolicyRow",
    "Request",
    "StoreSet",
    "TransitionalStore",
    "load_pack",
    "load_policy",
]

_HOMES = {
    "load_pack": "load",
    "load_policy": "load",
    "PACK_FILES": "parse",
    "DEFAULT_COMMITMENT": "pack",
    "DEFAULT_RULE": "pack",
    "Decision": "pack",
    "PackConfig": "config",
    "PackRule": "config",
    "StoreSet": "config",
    "TransitionalStore": "config",
    "EXPIRED_SUFFIX": "config",
    "PolicyHistory": "pack",
    "PolicyPack": "pack",
    "PolicyRow": "pack",
    "Request": "pack",
}
"""Where each name above lives. They are imported on first use (PEP 562), not with the package:
importing a light submodule (``audit.policy.budget``, ``.diagnostics``) must not load pycasbin,
because the CLI builds its options from those at start-up."""


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
