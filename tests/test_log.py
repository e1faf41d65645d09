"""Sealing and verifying signed logs: round trip, every tamper class, the doc's test vector."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.canonical import canonical_bytes
from audit.errors import InputError
from audit.logs.checkpoint import (
    CHECKPOINT_PAYLOAD_TYPE,
    checkpoint_payload,
    parse_checkpoint_payload,
)
from audit.logs.merkle import leaf_hash, root_of
from audit.logs.verify import (
    SEGMENT_CHECKS,
    LogVerifier,
    Problem,
    VerificationReport,
    verify_log,
)
from audit.logs.writer import seal
from audit.signing.dsse import envelope_bytes, pae, parse_envelope, sign_envelope
from audit.signing.keys import (
    Keyring,
    KeyringEntry,
    SigningKey,
    public_key_pem,
    signing_key_from_seed,
)

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "log-format.md"
SEALED_AT = datetime(2024, 1, 1, tzinfo=UTC)
KEY = signing_key_from_seed(bytes(32))
OTHER_KEY = signing_key_from_seed(b"\x11" * 32)
SEGMENT_SIZE = 4
RECORDS = 12  # three segments of four


def entry(key: SigningKey, **kwargs: datetime) -> KeyringEntry:
    return KeyringEntry(key_id=key.key_id, public_key=public_key_pem(key.public), **kwargs)


RING = Keyring(keys=(entry(KEY),))


def records(n: int = RECORDS) -> list[bytes]:
    return [canonical_bytes({"event_id": f"ev-{i:04d}", "actor": f"user-{i % 3}", "action": "read"}) for i in range(n)]


def make_log(
    out: Path,
    *,
    key: SigningKey = KEY,
    n: int = RECORDS,
    segment_size: int = SEGMENT_SIZE,
    record_type: str = "access-event",
) -> Path:
    seal(
        records(n),
        out=out,
        key=key,
        origin="test-log",
        record_type=record_type,
        segment_size=segment_size,
        time=SEALED_AT,
    )
    return out


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return make_log(tmp_path / "log")


def seg(i: int) -> str:
    return f"segments/{i:08d}.jsonl"


def lines_of(logdir: Path, i: int) -> list[bytes]:
    return (logdir / seg(i)).read_bytes().split(b"\n")[:-1]


def write_lines(logdir: Path, i: int, lines: list[bytes]) -> None:
    (logdir / seg(i)).write_bytes(b"".join(line + b"\n" for line in lines))


def verify(
    logdir: Path,
    ring: Keyring = RING,
    record_type: str | None = None,
) -> tuple[VerificationReport, list[int]]:
    verifier = LogVerifier(logdir, ring, record_type=record_type)
    yielded = [s.index for s in verifier.segments()]
    return verifier.report(), yielded


def only(report: VerificationReport) -> Problem:
    assert not report.ok
    assert len(report.problems) == 1, report.problems
    return report.problems[0]


def resign(logdir: Path, i: int, key: SigningKey = KEY, **changes: object) -> None:
    """Rewrite checkpoint ``i`` with body fields changed, signed by ``key``."""
    path = logdir / f"checkpoints/{i:08d}.json"
    body = parse_checkpoint_payload(parse_envelope(path.read_bytes(), path=path).payload_bytes())
    body = body.model_copy(update=changes)
    env = sign_envelope(checkpoint_payload(body), CHECKPOINT_PAYLOAD_TYPE, key)
    path.write_bytes(envelope_bytes(env))


# ----------------------------------------------------------------------------- round trip


def test_seal_then_verify_ok(log: Path) -> None:
    verifier = LogVerifier(log, RING, record_type="access-event")
    with pytest.raises(RuntimeError):
        verifier.report()
    segments = list(verifier.segments())
    report = verifier.report()
    assert report.ok and report.problems == ()
    assert [s.index for s in segments] == [0, 1, 2]
    assert [s.first for s in segments] == [0, 4, 8]
    assert [line for s in segments for line in s.lines or ()] == records()
    assert report.tree_size == RECORDS and report.segments == 3
    assert report.root == root_of(leaf_hash(r) for r in records()).hex()
    assert report.origin == "test-log" and report.record_type == "access-event"
    last = (log / "checkpoints/00000002.json").read_bytes()
    assert report.last_checkpoint_sha256 == hashlib.sha256(last).hexdigest()
    assert segments[2].body.previous == hashlib.sha256((log / "checkpoints/00000001.json").read_bytes()).hexdigest()
    with pytest.raises(RuntimeError):
        verifier.segments()


def test_seal_result_and_layout(tmp_path: Path) -> None:
    result = seal(
        records(5), out=tmp_path / "out", key=KEY, origin="o", record_type="t", segment_size=2, time=SEALED_AT
    )
    assert (result.tree_size, result.segments, result.out) == (5, 3, tmp_path / "out")
    assert result.root == root_of(leaf_hash(r) for r in records(5)).hex()
    files = sorted(str(p.relative_to(result.out)) for p in result.out.rglob("*") if p.is_file())
    assert files == [
        "checkpoints/00000000.json",
        "checkpoints/00000001.json",
        "checkpoints/00000002.json",
        "segments/00000000.jsonl",
        "segments/00000000.leaves",
        "segments/00000001.jsonl",
        "segments/00000001.leaves",
        "segments/00000002.jsonl",
        "segments/00000002.leaves",
    ]
    assert (result.out / "segments/00000002.leaves").read_bytes() == leaf_hash(records(5)[4])
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp dir left behind
    # Byte-deterministic with a fixed time.
    again = seal(
        records(5), out=tmp_path / "again", key=KEY, origin="o", record_type="t", segment_size=2, time=SEALED_AT
    )
    assert again.root == result.root
    for name in files:
        assert (tmp_path / "again" / name).read_bytes() == (result.out / name).read_bytes()


def test_verify_log_equals_streaming_report(log: Path) -> None:
    assert verify_log(log, RING) == verify(log)[0]


def test_checks_are_a_registry_of_named_functions() -> None:
    names = [check.__name__ for check in SEGMENT_CHECKS]
    assert names[0] == "check_checkpoint_envelope"
    assert names[-1] == "check_cumulative_root"
    assert len(set(names)) == len(names)


# ----------------------------------------------------------------------------- seal errors


def test_seal_failing_iterator_leaves_nothing(tmp_path: Path) -> None:
    def source() -> Iterator[bytes]:
        yield from records(9)  # enough for two finished segments
        raise InputError("bad record", path="events.jsonl", line=10)

    out = tmp_path / "out"
    with pytest.raises(InputError, match="bad record"):
        seal(source(), out=out, key=KEY, origin="o", record_type="t", segment_size=4)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_seal_refuses_non_empty_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("keep")
    with pytest.raises(InputError, match="not empty"):
        seal(records(1), out=out, key=KEY, origin="o", record_type="t")
    assert [p.name for p in out.iterdir()] == ["x"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert seal(records(1), out=empty, key=KEY, origin="o", record_type="t").tree_size == 1


@pytest.mark.parametrize(
    ("items", "size", "reason"),
    [
        ([], 10, "no records"),
        ([b'{"a":1}'], 0, "segment_size"),
        ([b'{"a":1}', b'{"a":\n2}'], 10, "record 2 contains a newline"),
        ([b""], 10, "record 1 is empty"),
    ],
)
def test_seal_input_errors(tmp_path: Path, items: list[bytes], size: int, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        seal(items, out=tmp_path / "out", key=KEY, origin="o", record_type="t", segment_size=size)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- tamper classes


def test_modified_event(log: Path) -> None:
    path = log / seg(1)
    data = bytearray(path.read_bytes())
    data[data.index(b"ev-0005") + 6] = ord("9")  # line 2 of segment 1: ev-0005 -> ev-0009
    path.write_bytes(bytes(data))
    report, yielded = verify(log)
    problem = only(report)
    assert (problem.code, problem.segment, problem.line) == ("event-modified", seg(1), 2)
    assert "leaf 5" in problem.message
    # The signed leaves sidecar keeps the cumulative tree going: segment 2 still verifies.
    assert yielded == [0, 2]


def test_deleted_event(log: Path) -> None:
    lines = lines_of(log, 2)
    write_lines(log, 2, lines[:1] + lines[2:])
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment, problem.line) == ("event-deleted", seg(2), 2)
    assert "leaf 9" in problem.message


def test_inserted_event(log: Path) -> None:
    lines = lines_of(log, 0)
    write_lines(log, 0, [*lines[:3], b'{"action":"read","actor":"mallory","event_id":"x"}', lines[3]])
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment, problem.line) == ("event-inserted", seg(0), 4)


def test_appended_event_at_end(log: Path) -> None:
    lines = lines_of(log, 2)
    write_lines(log, 2, [*lines, lines[0]])
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment, problem.line) == ("event-inserted", seg(2), 5)


def test_reordered_events(log: Path) -> None:
    lines = lines_of(log, 1)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(log, 1, lines)
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment, problem.line) == ("events-reordered", seg(1), 2)
    assert "lines 2-3" in problem.message


def test_whole_segment_deleted(log: Path) -> None:
    for name in (seg(1), "segments/00000001.leaves", "checkpoints/00000001.json"):
        (log / name).unlink()
    report, yielded = verify(log)
    problem = only(report)
    assert (problem.code, problem.segment, problem.line) == ("segment-missing", seg(1), None)
    assert yielded == [0]  # nothing after the gap can be trusted


def test_segment_file_deleted_checkpoint_kept(log: Path) -> None:
    (log / seg(1)).unlink()
    report, yielded = verify(log)
    problem = only(report)
    assert (problem.code, problem.segment) == ("segment-missing", seg(1))
    assert yielded == [0, 2]  # the signed leaves file bridges the gap


def test_two_consecutive_checkpoints_deleted(tmp_path: Path) -> None:
    log = make_log(tmp_path / "log", n=20)  # five segments
    (log / "checkpoints/00000001.json").unlink()
    (log / "checkpoints/00000002.json").unlink()
    report, yielded = verify(log)
    problem = only(report)
    assert (problem.code, problem.segment) == ("checkpoint-missing", seg(1))
    assert "2 consecutive checkpoints missing" in problem.message
    assert "00000001.json..checkpoints/00000002.json" in problem.message
    assert yielded == [0]


def test_one_checkpoint_deleted(log: Path) -> None:
    (log / "checkpoints/00000000.json").unlink()
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment) == ("checkpoint-missing", seg(0))
    assert problem.message == "checkpoint missing: checkpoints/00000000.json"


def test_flipped_signature_byte_last_checkpoint(log: Path) -> None:
    _flip_signature(log, 2)
    report, yielded = verify(log)
    problem = only(report)
    assert (problem.code, problem.segment) == ("bad-signature", seg(2))
    assert KEY.key_id in problem.message
    assert yielded == [0, 1]
    assert report.tree_size == 8  # of the last verified checkpoint


def test_flipped_signature_byte_middle_checkpoint(log: Path) -> None:
    _flip_signature(log, 1)
    report, _ = verify(log)
    assert [(p.code, p.segment) for p in report.problems] == [
        ("bad-signature", seg(1)),
        ("chain-broken", seg(2)),  # the file the next checkpoint hashed is not this one
    ]


def _flip_signature(logdir: Path, i: int) -> None:
    path = logdir / f"checkpoints/{i:08d}.json"
    env = parse_envelope(path.read_bytes(), path=path)
    sig = bytearray(env.signatures[0].sig_bytes())
    sig[0] ^= 0x01
    bad = env.signatures[0].model_copy(update={"sig": base64.b64encode(sig).decode()})
    path.write_bytes(envelope_bytes(env.model_copy(update={"signatures": (bad,)})))


def test_signed_by_key_not_in_keyring(tmp_path: Path) -> None:
    log = make_log(tmp_path / "log", key=OTHER_KEY, n=4)
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment) == ("unknown-key", seg(0))
    assert OTHER_KEY.key_id in problem.message


def test_one_checkpoint_resigned_by_unknown_key(log: Path) -> None:
    resign(log, 2, key=OTHER_KEY, key_id=OTHER_KEY.key_id)
    report, yielded = verify(log)
    assert [(p.code, p.segment) for p in report.problems] == [("unknown-key", seg(2))]
    assert yielded == [0, 1]


def test_revoked_key(log: Path) -> None:
    # Revoked *after* sealing: a revoked key is compromised, nothing it signed is trusted.
    ring = Keyring(keys=(entry(KEY, revoked_at=SEALED_AT + timedelta(days=365)),))
    report, yielded = verify(log, ring)
    assert [(p.code, p.segment) for p in report.problems] == [
        ("key-revoked", seg(0)),
        ("key-revoked", seg(1)),
        ("key-revoked", seg(2)),
    ]
    assert yielded == []
    assert report.root is None and report.tree_size == 0


def test_expired_and_not_yet_valid_key(log: Path) -> None:
    expired = Keyring(keys=(entry(KEY, not_after=SEALED_AT - timedelta(seconds=1)),))
    assert {p.code for p in verify(log, expired)[0].problems} == {"key-expired"}
    early = Keyring(keys=(entry(KEY, not_before=SEALED_AT + timedelta(seconds=1)),))
    assert {p.code for p in verify(log, early)[0].problems} == {"key-not-yet-valid"}
    exact = Keyring(keys=(entry(KEY, not_before=SEALED_AT, not_after=SEALED_AT),))
    assert verify(log, exact)[0].ok


def test_wrong_record_type(log: Path) -> None:
    report, yielded = verify(log, record_type="approval")
    assert [(p.code, p.segment) for p in report.problems] == [
        ("record-type-mismatch", seg(0)),
        ("record-type-mismatch", seg(1)),
        ("record-type-mismatch", seg(2)),
    ]
    assert "'access-event'" in report.problems[0].message
    assert yielded == []


def test_record_type_changes_midway(log: Path) -> None:
    resign(log, 1, record_type="approval")
    report, _ = verify(log)
    assert [(p.code, p.segment) for p in report.problems] == [
        ("record-type-mismatch", seg(1)),
        ("chain-broken", seg(2)),
    ]


def test_chain_broken(log: Path) -> None:
    resign(log, 2, previous="0" * 64)
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment) == ("chain-broken", seg(2))


def test_cumulative_root_mismatch(log: Path) -> None:
    resign(log, 2, root="ab" * 32)
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment) == ("root-mismatch", seg(2))


def test_leaves_file_tampered(log: Path) -> None:
    path = log / "segments/00000001.leaves"
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(bytes(data))
    report, yielded = verify(log)
    problem = only(report)
    assert (problem.code, problem.segment) == ("leaves-file-tampered", seg(1))
    assert yielded == [0, 2]  # the segment itself still matches its signed digest


def test_segment_and_leaves_both_tampered(log: Path) -> None:
    (log / "segments/00000001.leaves").write_bytes(b"\x00" * 128)
    lines = lines_of(log, 1)
    write_lines(log, 1, lines[:3])
    report, yielded = verify(log)
    assert [(p.code, p.segment) for p in report.problems] == [
        ("leaves-file-tampered", seg(1)),
        ("root-mismatch", seg(1)),
    ]
    assert "not usable to localise" in report.problems[1].message
    assert yielded == [0]


def test_trailing_data(log: Path) -> None:
    with (log / seg(2)).open("ab") as fh:
        fh.write(b'{"partial":')
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment, problem.line) == ("trailing-data", seg(2), 5)


def test_unreferenced_segment(log: Path) -> None:
    shutil.copy(log / seg(2), log / seg(3))
    (log / "segments/notes.txt").write_text("hi")
    report, yielded = verify(log)
    assert [(p.code, p.segment) for p in report.problems] == [
        ("unreferenced-segment", seg(3)),
        ("unreferenced-segment", "segments/notes.txt"),
    ]
    assert yielded == [0, 1, 2]


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "undecodable-file"),
        (b"not json", "undecodable-file"),
        (b"\xff\xfe\x00garbage", "undecodable-file"),
        (b'{"payload":"","payloadType":"x","signatures":[]}', "malformed-checkpoint"),
        (b'{"payload":"%%%","payloadType":"x","signatures":[{"keyid":"k","sig":""}]}', "malformed-checkpoint"),
    ],
)
def test_malformed_checkpoint(log: Path, content: bytes, code: str) -> None:
    (log / "checkpoints/00000002.json").write_bytes(content)
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment) == (code, seg(2))


def test_non_canonical_checkpoint_file(log: Path) -> None:
    path = log / "checkpoints/00000002.json"
    path.write_bytes(path.read_bytes() + b"\n")
    problem = only(verify(log)[0])
    assert problem.code == "malformed-checkpoint" and "canonical" in problem.message


def test_malformed_segment(log: Path) -> None:
    (log / seg(1)).unlink()
    (log / seg(1)).mkdir()
    problem = only(verify(log)[0])
    assert (problem.code, problem.segment) == ("malformed-segment", seg(1))


def test_empty_log(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    problem = only(verify(tmp_path / "log")[0])
    assert problem.code == "empty-log" and problem.segment is None


def test_missing_logdir_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such log directory"):
        verify_log(tmp_path / "nope", RING)


def test_many_modified_lines_are_summarised(tmp_path: Path) -> None:
    log = make_log(tmp_path / "log", n=300, segment_size=300)
    write_lines(log, 0, [line.replace(b"read", b"READ") for line in lines_of(log, 0)])
    problems = verify(log)[0].problems
    assert len(problems) == 101
    assert {p.code for p in problems} == {"event-modified"}
    assert problems[0].line is None and "200 more" in problems[0].message
    assert [p.line for p in problems[1:]] == list(range(1, 101))


# ----------------------------------------------------------------------------- any byte


@pytest.fixture(scope="module")
def base_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    logdir = make_log(tmp_path_factory.mktemp("base") / "log", n=10, segment_size=4)
    files = sorted(str(p.relative_to(logdir)) for p in logdir.rglob("*") if p.is_file())
    return logdir, files


@settings(max_examples=50, deadline=None)
@given(which=st.integers(min_value=0), offset=st.integers(min_value=0), delta=st.integers(1, 255))
def test_any_single_byte_change_is_detected(
    base_log: tuple[Path, list[str]], which: int, offset: int, delta: int
) -> None:
    logdir, files = base_log
    name = files[which % len(files)]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "log"
        shutil.copytree(logdir, copy)
        path = copy / name
        data = bytearray(path.read_bytes())
        pos = offset % len(data)
        data[pos] = (data[pos] + delta) % 256
        path.write_bytes(bytes(data))
        report = verify_log(copy, RING)
        assert not report.ok, (name, pos)
        assert all(p.segment is not None for p in report.problems)


# ----------------------------------------------------------------------------- doc vector


VECTOR_EVENTS = [
    {"event_id": "ev-1", "actor": "alice", "action": "read"},
    {"event_id": "ev-2", "actor": "bob", "action": "export"},
    {"event_id": "ev-3", "actor": "carol", "action": "read"},
]


def compute_vector(workdir: Path) -> dict[str, str]:
    """Every value the doc's worked example prints, recomputed from the code."""
    key = signing_key_from_seed(bytes(32))
    recs = [canonical_bytes(e) for e in VECTOR_EVENTS]
    out = workdir / "vector"
    result = seal(
        recs, out=out, key=key, origin="example-log", record_type="access-event", segment_size=2, time=SEALED_AT
    )
    v: dict[str, str] = {
        "seed": bytes(32).hex(),
        "public_key": key.public.public_bytes_raw().hex(),
        "key_id": key.key_id,
        "origin": "example-log",
        "record_type": "access-event",
        "segment_size": "2",
        "time": "2024-01-01T00:00:00Z",
    }
    leaves = [leaf_hash(r) for r in recs]
    for i, (rec, leaf) in enumerate(zip(recs, leaves, strict=True)):
        v[f"record[{i}]"] = rec.decode()
        v[f"leaf[{i}]"] = leaf.hex()
    for size in range(1, len(recs) + 1):
        v[f"tree_root[{size}]"] = root_of(leaves[:size]).hex()
    for i in range(result.segments):
        jsonl = (out / f"segments/{i:08d}.jsonl").read_bytes()
        sidecar = (out / f"segments/{i:08d}.leaves").read_bytes()
        raw = (out / f"checkpoints/{i:08d}.json").read_bytes()
        env = parse_envelope(raw, path="vector")
        body = env.payload_bytes()
        v[f"segment[{i}].jsonl_sha256"] = hashlib.sha256(jsonl).hexdigest()
        v[f"segment[{i}].leaves_sha256"] = hashlib.sha256(sidecar).hexdigest()
        v[f"segment[{i}].root"] = root_of(sidecar[j : j + 32] for j in range(0, len(sidecar), 32)).hex()
        v[f"checkpoint[{i}].body"] = body.decode()
        v[f"checkpoint[{i}].pae_length"] = str(len(pae(env.payloadType, body)))
        v[f"checkpoint[{i}].pae_sha256"] = hashlib.sha256(pae(env.payloadType, body)).hexdigest()
        v[f"checkpoint[{i}].sig"] = env.signatures[0].sig
        v[f"checkpoint[{i}].file"] = raw.decode()
        v[f"checkpoint[{i}].file_sha256"] = hashlib.sha256(raw).hexdigest()
    v["final_root"] = result.root
    return v


def doc_vector() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- test-vector:begin -->(.*?)<!-- test-vector:end -->", text, re.S)
    assert block is not None, "docs/log-format.md has no test-vector block"
    pairs = re.findall(r"^(\S+) = (.*)$", block.group(1), re.M)
    values = dict(pairs)
    assert len(values) == len(pairs), "duplicate names in the doc's test vector"
    return values


def test_doc_test_vector_matches_code(tmp_path: Path) -> None:
    assert doc_vector() == compute_vector(tmp_path)


def test_doc_vector_log_verifies(tmp_path: Path) -> None:
    compute_vector(tmp_path)
    report = verify_log(tmp_path / "vector", RING, record_type="access-event")
    assert report.ok and report.tree_size == 3
    assert report.root == doc_vector()["final_root"]
