"""The commitment register: load ``commitments.yaml`` and look commitments up by id.

Validates structure and uniqueness of ids. A register may name ``source_directory``,
where its cited files are, relative to the pack directory (``sources``); each source
then carries it as ``directory``. Without it the sources are in ``seeds/`` beside the
pack directory (the US register: ``policies/`` and ``seeds/`` in the repository).
Does not check the cited lines; the test-suite does that for the shipped packs
(tests/test_commitments.py), with :func:`source_file`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from audit.errors import InputError
from audit.models import Commitment, CommitmentSource, SourceDirectory
from audit.records import load_yaml, validate


class _Register(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    source_directory: SourceDirectory | None = None
    commitments: tuple[Commitment, ...]


def load_commitments(path: str | Path) -> Mapping[str, Commitment]:
    """Commitments by id, in file order."""
    register = validate(_Register, load_yaml(path), path=path, line=None)
    by_id: dict[str, Commitment] = {}
    for commitment in register.commitments:
        if register.source_directory is not None:
            sources = tuple(
                s if s.directory is not None else s.model_copy(update={"directory": register.source_directory})
                for s in commitment.sources
            )
            commitment = commitment.model_copy(update={"sources": sources})
        if commitment.id in by_id:
            raise InputError(f"duplicate commitment id {commitment.id}", path=path)
        by_id[commitment.id] = commitment
    return by_id


def source_file(pack_dir: Path, source: CommitmentSource) -> Path:
    """Where a cited file is: ``pack_dir/directory/file``, or ``seeds/file`` beside ``pack_dir``."""
    if source.directory is None:
        return pack_dir.parent / "seeds" / source.file
    return pack_dir / source.directory / source.file
