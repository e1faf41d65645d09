"""Enumerations of user choices that must import cheaply: no pydantic, no cryptography, no SDK.

The CLI builds its options from these at start-up (``--record-type``, ``--purpose``),
before any command runs; the modules that use them (:mod:`audit.models`,
:mod:`audit.signing.keys`) import them from here.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["KeyPurpose", "RecordType"]


class RecordType(StrEnum):
    """What a sealed log holds (its checkpoints' ``record_type``): access events or approvals."""

    access_event = "access-event"
    approval = "approval"


class KeyPurpose(StrEnum):
    """What a key may sign: access-log checkpoints, approvals-log checkpoints, reports.

    Separating them stops one party's key from vouching for another's artefact (a
    log producer's key signing a "clean" audit report, say). The values are what the
    keyring JSON holds.
    """

    log = "log"
    approvals = "approvals"
    report = "report"
