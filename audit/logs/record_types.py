"""What a sealed log holds: its record types, and the canonical bytes of records to seal.

A log's checkpoints name its record type (``access-event`` or ``approval``);
:func:`sealable_records` validates a JSON Lines file against that type's model and
yields each record's canonical bytes, ready for :func:`audit.logs.writer.seal` or
:func:`audit.logs.append.append`. Does not write or verify logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from audit.canonical import canonical_bytes
from audit.models import AccessEvent, Approval, RecordType
from audit.records import iter_jsonl

ACCESS_RECORD_TYPE: str = RecordType.access_event.value
APPROVAL_RECORD_TYPE: str = RecordType.approval.value


def sealable_records(path: Path, record_type: str) -> Iterator[bytes]:
    """Validate a JSON Lines file record by record and yield each one's canonical bytes."""
    model: type[AccessEvent] | type[Approval] = AccessEvent if record_type == ACCESS_RECORD_TYPE else Approval
    for _, record in iter_jsonl(path, model):
        yield canonical_bytes(record)
