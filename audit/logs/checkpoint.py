"""The signed checkpoint body and the file layout of a sealed log directory.

What it does: defines the pydantic models of a checkpoint body
(:class:`CheckpointBody`, :class:`SegmentInfo`), their canonical bytes (the DSSE
payload), the payload type, the names of segment, leaves, checkpoint and
temporary files, and the append journal (:class:`AppendJournal`) that marks an
append in progress.

It also fixes the size limits a verifier holds the files to
(:data:`MAX_CHECKPOINT_BYTES`, :data:`MAX_JOURNAL_BYTES`, :func:`max_segment_bytes`,
:func:`leaves_bytes`) and the clock skew allowed to checkpoint times
(:data:`CLOCK_SKEW`).

What it does not do: no signing, no file I/O, no verification — see
:mod:`audit.logs.writer` and :mod:`audit.logs.verify`. The format is specified
for third parties in ``docs/log-format.md``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_serializer

from audit.canonical import canonical_bytes
from audit.models import UtcDatetime
from audit.reading import DEFAULT_LIMITS, Limits

LOG_FORMAT = "residency-audit/log/v1"
CHECKPOINT_PAYLOAD_TYPE = "application/vnd.residency-audit.checkpoint+json"
SEGMENTS_DIR = "segments"
CHECKPOINTS_DIR = "checkpoints"
INDEX_DIGITS = 8
MAX_SEGMENTS = 10**INDEX_DIGITS

JOURNAL_FILE = "append-journal.json"
"""Written directly in the log directory while ``log append`` runs; removed when it completes."""
JOURNAL_FORMAT = "residency-audit/append-journal/v1"
PARTIAL_SUFFIX = ".partial"
"""Suffix of the temporary files ``log append`` writes and renames (``.NNNNNNNN.jsonl.partial``)."""

SEGMENT_FILE_RE = re.compile(r"^([0-9]{8})\.(jsonl|leaves)$")
CHECKPOINT_FILE_RE = re.compile(r"^([0-9]{8})\.json$")
PARTIAL_FILE_RE = re.compile(r"^\.([0-9]{8})\.(jsonl|leaves|json)\.partial$")

MAX_CHECKPOINT_BYTES = 1024 * 1024
"""A checkpoint file (one DSSE envelope, about 1 KiB with one signature) is at most this."""
MAX_JOURNAL_BYTES = 64 * 1024
"""An append journal is at most this."""
LEAF_BYTES = 32
"""Bytes per leaf hash in a ``.leaves`` sidecar (SHA-256)."""
CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future (by the verifier's clock) a checkpoint's ``time`` may lie."""


def leaves_bytes(count: int) -> int:
    """The exact size of the ``.leaves`` sidecar of a segment of ``count`` records."""
    return count * LEAF_BYTES


def max_segment_bytes(count: int, limits: Limits = DEFAULT_LIMITS) -> int:
    """The largest ``.jsonl`` a segment of ``count`` records may be: each record at most the
    line cap plus its newline, and the whole file at most the whole-file cap (it is read at once)."""
    return min(count * (limits.max_line_bytes + 1), limits.max_whole_file_bytes)


Hex256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""Lowercase hex of a 32-byte SHA-256 digest."""


def index_name(index: int) -> str:
    """The 8-digit zero-padded decimal name of a segment index (``00000042``)."""
    if not 0 <= index < MAX_SEGMENTS:
        raise ValueError(f"segment index out of range: {index}")
    return f"{index:0{INDEX_DIGITS}d}"


def segment_name(index: int) -> str:
    """Path of a segment's records, relative to the log dir: ``segments/00000000.jsonl``."""
    return f"{SEGMENTS_DIR}/{index_name(index)}.jsonl"


def leaves_name(index: int) -> str:
    """Path of a segment's leaf-hash sidecar: ``segments/00000000.leaves``."""
    return f"{SEGMENTS_DIR}/{index_name(index)}.leaves"


def checkpoint_name(index: int) -> str:
    """Path of a segment's checkpoint envelope: ``checkpoints/00000000.json``."""
    return f"{CHECKPOINTS_DIR}/{index_name(index)}.json"


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with ``Z``: ``2024-01-01T00:00:00Z`` (``.ffffff`` only if non-zero)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SegmentInfo(_Body):
    """What a checkpoint says about its segment's files and leaves."""

    name: str
    sha256: Hex256
    leaves_sha256: Hex256
    first: int = Field(ge=0)
    count: int = Field(ge=0)
    root: Hex256


class CheckpointBody(_Body):
    """The signed statement written after each segment (DSSE payload)."""

    format: Literal["residency-audit/log/v1"]
    origin: str
    record_type: str
    index: int = Field(ge=0, lt=MAX_SEGMENTS)
    segment: SegmentInfo
    tree_size: int = Field(ge=0)
    root: Hex256
    previous: Hex256 | None
    time: UtcDatetime
    key_id: Hex256

    @field_serializer("time")
    def _serialize_time(self, value: datetime) -> str:
        return format_time(value)


def checkpoint_payload(body: CheckpointBody) -> bytes:
    """Canonical JSON bytes of a body (``previous`` kept as ``null``; nothing omitted)."""
    return canonical_bytes(body.model_dump(mode="json"))


def parse_checkpoint_payload(payload: bytes) -> CheckpointBody:
    """Validate payload bytes as a checkpoint body (strict JSON types; ValidationError)."""
    return CheckpointBody.model_validate_json(payload, strict=True)


class AppendJournal(_Body):
    """What ``log append`` is doing; present in the log directory only while it runs (or after a crash)."""

    format: Literal["residency-audit/append-journal/v1"]
    source_name: str
    source_sha256: Hex256
    records: int = Field(ge=1)
    start_tree_size: int = Field(ge=1)
    start_index: int = Field(ge=1, lt=MAX_SEGMENTS)
    segment_size: int = Field(ge=1)
    started: UtcDatetime

    @field_serializer("started")
    def _serialize_started(self, value: datetime) -> str:
        return format_time(value)
