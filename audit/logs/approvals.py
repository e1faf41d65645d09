"""Loading approvals: a plain JSON Lines file, or a sealed approvals log verified first.

:func:`load_approvals` returns an :class:`ApprovalSet` (approvals by id, where they
came from and whether their signatures were checked). A sealed log that does not
verify raises :class:`~audit.errors.IntegrityError` and no record of it is used.
Judging an approval for one event (expired, out of scope, ...) is not done here:
see :mod:`audit.replay.approvals`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from audit.errors import InputError, IntegrityError
from audit.logs.record_types import APPROVAL_RECORD_TYPE
from audit.logs.verify import LogVerifier, describe_problems
from audit.models import Approval
from audit.records import iter_jsonl, sha256_file, validate_lines
from audit.signing.keys import Keyring


@dataclass(frozen=True)
class ApprovalSet:
    """Approvals by id, and how far they can be trusted."""

    by_id: Mapping[str, Approval]
    source: Path
    signature_verified: bool
    digest: str  # sha256 of the JSONL file, or the Merkle root of the sealed log
    tree_size: int | None = None
    origin: str | None = None  # the sealed log's origin

    def get(self, approval_id: str) -> Approval | None:
        return self.by_id.get(approval_id)


def _index(records: Iterator[tuple[str, int, Approval]]) -> dict[str, Approval]:
    by_id: dict[str, Approval] = {}
    for path, line, approval in records:
        if approval.approval_id in by_id:
            raise InputError(f"duplicate approval_id {approval.approval_id!r}", path=path, line=line)
        by_id[approval.approval_id] = approval
    return by_id


def load_approvals(path: Path, keyring: Keyring | None) -> ApprovalSet:
    """Load approvals from a JSONL file, or from a sealed log directory (verified first).

    A sealed log is verified against ``keyring`` before any record is read; a log
    that does not verify raises :class:`IntegrityError` listing its problems.
    """
    if path.is_dir():
        if keyring is None:
            raise InputError("a sealed approvals log needs a keyring", path=path)
        if not (path / "checkpoints").is_dir():
            raise InputError("not a sealed log directory (no checkpoints/)", path=path)
        return _load_sealed(path, keyring)
    records = ((str(path), line, approval) for line, approval in iter_jsonl(path, Approval))
    by_id = _index(records)
    return ApprovalSet(by_id, path, signature_verified=False, digest=sha256_file(path))


def _load_sealed(path: Path, keyring: Keyring) -> ApprovalSet:
    verifier = LogVerifier(path, keyring, record_type=APPROVAL_RECORD_TYPE)
    collected: list[tuple[str, int, Approval]] = []
    for segment in verifier.segments():
        seg_path = path / segment.name
        collected += [(str(seg_path), n, a) for n, a in validate_lines(segment.records, Approval, path=seg_path)]
    report = verifier.report()
    if not report.ok or report.root is None:
        raise IntegrityError(f"approvals log failed verification ({describe_problems(report.problems)})", path=path)
    return ApprovalSet(
        _index(iter(collected)),
        path,
        signature_verified=True,
        digest=report.root,
        tree_size=report.tree_size,
        origin=report.origin,
    )
