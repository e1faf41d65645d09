"""RFC 9162 inclusion and consistency proofs of a sealed log, as JSON documents.

What it does: from a log directory that verifies, :func:`prove_inclusion` proves
that one record (found by its ``event_id``, or ``approval_id`` in an approvals
log) is leaf ``i`` of the tree a checkpoint signs, and :func:`prove_consistency`
proves that an older checkpoint's tree is a prefix of a newer one's. The checks,
:func:`check_inclusion` and :func:`check_consistency`, need nothing but the
proof, the authenticated checkpoint file(s) (:mod:`audit.logs.trusted`) and so
the keyring: not the log. Formats are in ``docs/log-format.md`` section 12.

What it does not do: proofs are not signed (they need not be: every hash in
them is checked against a signed root). Building a proof keeps the leaf hashes
up to the checkpoint's size in memory (about 100 bytes per record); checking
one needs O(log n). It does not print or write files.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit.errors import InputError, IntegrityError
from audit.logs.checkpoint import Hex256, checkpoint_name
from audit.logs.index import INDEX_FILE, IdIndex, IdLocation, record_id
from audit.logs.merkle import consistency_path, inclusion_path, leaf_hash, leaf_hashes, root_of
from audit.logs.merkle import verify_consistency as merkle_consistent
from audit.logs.merkle import verify_inclusion as merkle_includes
from audit.logs.trusted import SignedCheckpoint
from audit.logs.verify import LogVerifier, Problem, VerificationReport, describe_problems
from audit.reading import read_bytes
from audit.records import describe_validation_error, open_input
from audit.signing.keys import Keyring

INCLUSION_FORMAT = "residency-audit/inclusion-proof/v1"
CONSISTENCY_FORMAT = "residency-audit/consistency-proof/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckpointRef(_Strict):
    """Which checkpoint a proof is relative to."""

    index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    root: Hex256
    sha256: Hex256
    """SHA-256 of the checkpoint file bytes."""

    @classmethod
    def of(cls, checkpoint: SignedCheckpoint) -> CheckpointRef:
        """The reference to an authenticated checkpoint."""
        return cls(
            index=checkpoint.body.index, tree_size=checkpoint.tree_size, root=checkpoint.root, sha256=checkpoint.sha256
        )


class InclusionProof(_Strict):
    """Record ``record`` is leaf ``leaf_index`` of the tree signed by ``checkpoint``."""

    format: Literal["residency-audit/inclusion-proof/v1"]
    origin: str
    event_id: str
    record: str
    """The record's exact bytes (canonical JSON) as text; its leaf hash is recomputed from them."""
    leaf_index: int = Field(ge=0)
    leaf_hash: Hex256
    segment: str
    line: int = Field(ge=1)
    checkpoint: CheckpointRef
    audit_path: tuple[Hex256, ...]


class ConsistencyProof(_Strict):
    """The tree signed by ``old`` is a prefix of the tree signed by ``new``."""

    format: Literal["residency-audit/consistency-proof/v1"]
    origin: str
    old: CheckpointRef
    new: CheckpointRef
    proof: tuple[Hex256, ...]


P = TypeVar("P", InclusionProof, ConsistencyProof)


def proof_bytes(proof: InclusionProof | ConsistencyProof) -> bytes:
    """The JSON file bytes of a proof (indented, trailing newline; not hashed or signed)."""
    return orjson.dumps(proof.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"


_MAX_PROOF_BYTES = 16 * 1024 * 1024  # a proof holds at most a few hundred hashes per level


def _load(path: str | Path, model: type[P]) -> P:
    p = open_input(path)
    try:
        return model.model_validate_json(read_bytes(p, max_bytes=_MAX_PROOF_BYTES), strict=True)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=p) from None
    except ValidationError as exc:
        raise InputError(f"not a {model.__name__}: {describe_validation_error(exc)}", path=p) from None


def load_inclusion_proof(path: str | Path) -> InclusionProof:
    """Read an inclusion proof file; InputError naming the path if it is not one."""
    return _load(path, InclusionProof)


def load_consistency_proof(path: str | Path) -> ConsistencyProof:
    """Read a consistency proof file; InputError naming the path if it is not one."""
    return _load(path, ConsistencyProof)


def _require_ok(logdir: Path, report: VerificationReport) -> None:
    if report.ok:
        return
    raise IntegrityError(
        f"refusing to prove from a log that does not verify ({describe_problems(report.problems)})", path=logdir
    )


Hit = tuple[int, str, int, bytes]
"""``(leaf index, segment file, line, record bytes)`` of a record with the wanted id."""


def _indexed(logdir: Path, event_id: str) -> tuple[tuple[int, str] | None, list[IdLocation]] | None:
    """What the kept event-id index says (its state and the id's locations), None if there is none."""
    if not (logdir / INDEX_FILE).is_file():
        return None
    try:
        index = IdIndex(logdir / INDEX_FILE, readonly=True)
    except InputError:
        return None
    try:
        return index.state(), index.find(event_id)
    except sqlite3.Error:
        return None
    finally:
        index.close()


def _collect(
    logdir: Path, keyring: Keyring, event_id: str, located: list[IdLocation] | None
) -> tuple[list[bytes], list[Hit], dict[int, int], VerificationReport]:
    """Verify the log; gather its leaves, checkpoint sizes and the records with ``event_id``.

    With ``located`` (from the index) only those lines are looked at (and each is
    confirmed to carry the id); otherwise every record is parsed.
    """
    verifier = LogVerifier(logdir, keyring)
    leaves: list[bytes] = []
    hits: list[Hit] = []
    sizes: dict[int, int] = {}
    for segment in verifier.segments():
        records = segment.records
        if located is None:
            numbers: Iterable[int] = range(1, len(records) + 1)
        else:
            numbers = [loc.line for loc in located if loc.segment == segment.index and loc.line <= len(records)]
        for number in numbers:
            if record_id(records[number - 1]) == event_id:
                hits.append((segment.first + number - 1, segment.name, number, records[number - 1]))
        leaves.extend(leaf_hashes(records))
        sizes[segment.index] = segment.body.tree_size
    report = verifier.report()
    _require_ok(logdir, report)
    return leaves, hits, sizes, report


def _find(
    logdir: Path, keyring: Keyring, event_id: str
) -> tuple[list[bytes], list[Hit], dict[int, int], VerificationReport]:
    """:func:`_collect` through the index if it knows the id and describes the verified log, else by parsing."""
    indexed = _indexed(logdir, event_id)
    if indexed is None or not indexed[1]:
        return _collect(logdir, keyring, event_id, None)
    state, located = indexed
    found = _collect(logdir, keyring, event_id, located)
    report = found[3]
    if state != (report.tree_size, report.root) or len(found[1]) != len(located):
        return _collect(logdir, keyring, event_id, None)  # a stale or edited index: parse every record
    return found


def prove_inclusion(
    logdir: Path, keyring: Keyring, *, event_id: str, checkpoint_index: int | None = None
) -> InclusionProof:
    """Prove that the record with ``event_id`` is in the tree of checkpoint ``checkpoint_index`` (default: last).

    The whole log must verify (:class:`IntegrityError` otherwise). InputError
    if the id is absent, not unique, or after the chosen checkpoint. The kept
    event-id index (:mod:`audit.logs.index`), if the log has one, says where the
    record is, so records are not parsed; it is used only if it describes exactly
    the verified log, every record it names is confirmed, and an id it does not know
    is looked for by parsing every record.
    """
    logdir = Path(logdir)
    leaves, hits, sizes, report = _find(logdir, keyring, event_id)
    if not hits:
        raise InputError(f"no record with id {event_id!r} in the log", path=logdir)
    if len(hits) > 1:
        where = ", ".join(f"{name}:{number}" for _, name, number, _ in hits[:5])
        raise InputError(f"id {event_id!r} is not unique: {len(hits)} records ({where})", path=logdir)
    index = max(sizes) if checkpoint_index is None else checkpoint_index
    if index not in sizes:
        raise InputError(f"the log has no checkpoint {index} (last is {max(sizes)})", path=logdir)
    leaf_index, segment_file, line, record = hits[0]
    size = sizes[index]
    if leaf_index >= size:
        raise InputError(
            f"record {event_id!r} is leaf {leaf_index}, after checkpoint {index} (size {size})", path=logdir
        )
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"record {event_id!r} at {segment_file}:{line} is not UTF-8 text", path=logdir) from None
    raw = (logdir / checkpoint_name(index)).read_bytes()
    tree = leaves[:size]
    return InclusionProof(
        format=INCLUSION_FORMAT,
        origin=report.origin or "",
        event_id=event_id,
        record=text,
        leaf_index=leaf_index,
        leaf_hash=tree[leaf_index].hex(),
        segment=segment_file,
        line=line,
        checkpoint=CheckpointRef(
            index=index, tree_size=size, root=root_of(tree).hex(), sha256=hashlib.sha256(raw).hexdigest()
        ),
        audit_path=tuple(h.hex() for h in inclusion_path(tree, leaf_index)),
    )


def prove_consistency(logdir: Path, keyring: Keyring, old: SignedCheckpoint, new: SignedCheckpoint) -> ConsistencyProof:
    """Prove that ``old``'s tree is a prefix of ``new``'s, using the leaves of ``logdir``.

    InputError if the checkpoints are of another log or in the wrong order;
    IntegrityError if the log does not verify, is shorter than ``new``, or
    either checkpoint's root is not the log's root at its size (a fork).
    """
    logdir = Path(logdir)
    if old.tree_size > new.tree_size:
        raise InputError(f"OLD {old.describe()} is larger than NEW {new.describe()}: give the older one first")
    verifier = LogVerifier(logdir, keyring)
    leaves: list[bytes] = []
    for segment in verifier.segments():
        if len(leaves) < new.tree_size:
            leaves.extend(leaf_hashes(segment.records))
    report = verifier.report()
    _require_ok(logdir, report)
    for label, checkpoint in (("OLD", old), ("NEW", new)):
        if checkpoint.body.origin != report.origin:
            raise InputError(f"{label} {checkpoint.describe()} is not a checkpoint of log {report.origin!r}")
    if len(leaves) < new.tree_size:
        raise IntegrityError(f"the log holds {len(leaves)} records, fewer than NEW {new.describe()}", path=logdir)
    for label, checkpoint in (("OLD", old), ("NEW", new)):
        actual = root_of(leaves[: checkpoint.tree_size]).hex()
        if actual != checkpoint.root:
            raise IntegrityError(
                f"{label} {checkpoint.describe()} signs root {checkpoint.root}, but the log's "
                f"first {checkpoint.tree_size} records hash to {actual} (a fork)",
                path=logdir,
            )
    return ConsistencyProof(
        format=CONSISTENCY_FORMAT,
        origin=new.body.origin,
        old=CheckpointRef.of(old),
        new=CheckpointRef.of(new),
        proof=tuple(h.hex() for h in consistency_path(leaves[: new.tree_size], old.tree_size)),
    )


def _ref_problems(label: str, ref: CheckpointRef, checkpoint: SignedCheckpoint) -> list[Problem]:
    if (ref.tree_size, ref.root) == (checkpoint.tree_size, checkpoint.root):
        return []
    return [
        Problem(
            "checkpoint-mismatch",
            f"the proof is for a tree of size {ref.tree_size} with root {ref.root}, but {label} "
            f"{checkpoint.describe()} signs root {checkpoint.root}",
        )
    ]


def check_inclusion(proof: InclusionProof, checkpoint: SignedCheckpoint) -> list[Problem]:
    """Problems with an inclusion proof against an authenticated checkpoint (empty: it holds)."""
    problems = _ref_problems("checkpoint", proof.checkpoint, checkpoint)
    if proof.origin != checkpoint.body.origin:
        problems.append(
            Problem(
                "origin-mismatch",
                f"the proof is for log {proof.origin!r}, the checkpoint for {checkpoint.body.origin!r}",
            )
        )
    record = proof.record.encode("utf-8")
    leaf = leaf_hash(record)
    if leaf.hex() != proof.leaf_hash or record_id(record) != proof.event_id:
        problems.append(
            Problem(
                "leaf-mismatch",
                f"the record in the proof does not hash to leaf_hash "
                f"{proof.leaf_hash} or does not carry id {proof.event_id!r}",
            )
        )
    path = [bytes.fromhex(h) for h in proof.audit_path]
    if not merkle_includes(leaf, proof.leaf_index, checkpoint.tree_size, path, bytes.fromhex(checkpoint.root)):
        problems.append(
            Problem(
                "inclusion-failed",
                f"the audit path does not lead from leaf {proof.leaf_index} to the root of {checkpoint.describe()}",
            )
        )
    return problems


def check_consistency(proof: ConsistencyProof, old: SignedCheckpoint, new: SignedCheckpoint) -> list[Problem]:
    """Problems with a consistency proof between two authenticated checkpoints (empty: it holds).

    ``rollback``: NEW is smaller than OLD; ``equivocation``: same size,
    different roots; ``consistency-failed``: the proof does not link the roots.
    """
    if old.body.origin != new.body.origin:
        return [Problem("origin-mismatch", f"OLD {old.describe()} and NEW {new.describe()} are of different logs")]
    if new.tree_size < old.tree_size:
        return [
            Problem(
                "rollback",
                f"NEW {new.describe()} is older than OLD {old.describe()}: presenting it as "
                f"the newer state is a rollback",
            )
        ]
    if new.tree_size == old.tree_size and new.root != old.root:
        return [
            Problem(
                "equivocation",
                f"OLD {old.describe()} and NEW {new.describe()} are both validly signed "
                f"for size {new.tree_size} with different roots",
            )
        ]
    problems = _ref_problems("OLD", proof.old, old) + _ref_problems("NEW", proof.new, new)
    path = [bytes.fromhex(h) for h in proof.proof]
    if not merkle_consistent(old.tree_size, new.tree_size, bytes.fromhex(old.root), bytes.fromhex(new.root), path):
        problems.append(
            Problem(
                "consistency-failed",
                f"the proof does not show OLD {old.describe()} is a prefix of NEW {new.describe()}",
            )
        )
    return problems
