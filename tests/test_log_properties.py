"""Property tests (hypothesis, CI budget): tampering is always detected, verify never crashes.

Any deletion or reordering of lines in any segment is detected; arbitrary bytes in
a segment, leaves, checkpoint or journal file, or in a trusted checkpoint, never
raise anything but the documented errors. (Any single-byte change in any file:
tests/test_log.py::test_any_single_byte_change_is_detected.)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from audit.canonical import canonical_bytes
from audit.errors import InputError, IntegrityError
from audit.logs.checkpoint import JOURNAL_FILE
from audit.logs.trusted import read_checkpoint
from audit.logs.verify import PROBLEM_CODES, VerificationReport, verify_log
from audit.logs.writer import seal
from audit.signing.keys import Keyring, KeyringEntry, public_key_pem, signing_key_from_seed

KEY = signing_key_from_seed(b"\x42" * 32)
RING = Keyring(keys=(KeyringEntry(key_id=KEY.key_id, public_key=public_key_pem(KEY.public)),))
SEGMENTS = 3
PER_SEGMENT = 4
BUDGET = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("props") / "log"
    records = [canonical_bytes({"event_id": f"ev-{i}", "n": i}) for i in range(SEGMENTS * PER_SEGMENT)]
    seal(
        records,
        out=out,
        key=KEY,
        origin="props",
        record_type="t",
        segment_size=PER_SEGMENT,
        time=datetime(2024, 1, 1, tzinfo=UTC),
    )
    return out


@contextmanager
def copy_of(base: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "log"
        shutil.copytree(base, copy)
        yield copy


def seg(i: int) -> str:
    return f"segments/{i:08d}.jsonl"


def detected(report: VerificationReport) -> None:
    assert not report.ok
    assert report.problems and {p.code for p in report.problems} <= PROBLEM_CODES


@BUDGET
@given(segment=st.integers(0, SEGMENTS - 1), data=st.data())
def test_any_deletion_of_lines_is_detected(base: Path, segment: int, data: st.DataObject) -> None:
    with copy_of(base) as log:
        path = log / seg(segment)
        lines = path.read_bytes().split(b"\n")[:-1]
        drop = data.draw(st.sets(st.integers(0, len(lines) - 1), min_size=1))
        path.write_bytes(b"".join(line + b"\n" for n, line in enumerate(lines) if n not in drop))
        report = verify_log(log, RING)
        detected(report)
        assert any(p.code == "event-deleted" and p.segment == seg(segment) for p in report.problems)


@BUDGET
@given(segment=st.integers(0, SEGMENTS - 1), order=st.permutations(range(PER_SEGMENT)))
def test_any_reorder_of_lines_is_detected(base: Path, segment: int, order: list[int]) -> None:
    assume(order != sorted(order))
    with copy_of(base) as log:
        path = log / seg(segment)
        lines = path.read_bytes().split(b"\n")[:-1]
        path.write_bytes(b"".join(lines[i] + b"\n" for i in order))
        report = verify_log(log, RING)
        detected(report)
        assert [(p.code, p.segment) for p in report.problems] == [("events-reordered", seg(segment))]
        assert report.problems[0].line == 1 + next(n for n, i in enumerate(order) if i != n)


@BUDGET
@given(
    name=st.sampled_from(
        [
            seg(0),
            seg(2),
            "segments/00000001.leaves",
            "checkpoints/00000000.json",
            "checkpoints/00000002.json",
            JOURNAL_FILE,
        ]
    ),
    content=st.one_of(
        st.binary(max_size=600),
        st.text(max_size=300).map(str.encode),
        st.builds(lambda b: b'{"payload":"' + b + b'"}', st.binary(max_size=40)),
    ),
)
def test_arbitrary_bytes_never_crash_verify(base: Path, name: str, content: bytes) -> None:
    with copy_of(base) as log:
        path = log / name
        assume(not path.exists() or path.read_bytes() != content)
        path.write_bytes(content)
        report = verify_log(log, RING)
        detected(report)
        assert all(p.message for p in report.problems)


@BUDGET
@given(content=st.one_of(st.binary(max_size=600), st.text(max_size=300).map(str.encode)))
def test_arbitrary_trusted_checkpoint_bytes_raise_only_documented_errors(content: bytes) -> None:
    with pytest.raises((InputError, IntegrityError)):
        read_checkpoint(content, RING, path="pin.json")


@BUDGET
@given(segment=st.integers(0, SEGMENTS - 1), offset=st.integers(0), extra=st.binary(min_size=1, max_size=40))
def test_any_insertion_of_bytes_in_a_segment_is_detected(base: Path, segment: int, offset: int, extra: bytes) -> None:
    with copy_of(base) as log:
        path = log / seg(segment)
        data = path.read_bytes()
        at = offset % (len(data) + 1)
        path.write_bytes(data[:at] + extra + data[at:])
        detected(verify_log(log, RING))
