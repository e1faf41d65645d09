"""Policy packs: load a pack (or dated versions of one) and decide fact requests.

A pack is a directory with ``model.conf``, ``policy.csv``, ``pack.yaml`` and
``commitments.yaml``; :func:`load_pack` validates it with file:line diagnostics and
:meth:`PolicyPack.decide` answers ``(facet, sub, obj, act, ctx)`` requests with the
deciding row, its commitment and rule id. :func:`load_policy` loads one pack or a
directory of versions as a :class:`PolicyHistory`. Deriving requests from events
is the replay engine's job (:mod:`audit.replay`), not this package's.
"""

from __future__ import annotations

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
