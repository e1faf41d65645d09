"""The commitment register: load ``commitments.yaml`` and look commitments up by id.

Validates structure and uniqueness of ids. Does not check the cited seed lines; the
test-suite does that against ``seeds/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from audit.errors import InputError
from audit.models import Commitment
from audit.records import load_yaml, validate


class _Register(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    commitments: tuple[Commitment, ...]


def load_commitments(path: str | Path) -> Mapping[str, Commitment]:
    """Commitments by id, in file order."""
    register = validate(_Register, load_yaml(path), path=path, line=None)
    by_id: dict[str, Commitment] = {}
    for commitment in register.commitments:
        if commitment.id in by_id:
            raise InputError(f"duplicate commitment id {commitment.id}", path=path)
        by_id[commitment.id] = commitment
    return by_id
