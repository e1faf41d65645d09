"""The replay checks each access record's RFC 8785 form as it decodes it (ADR 0016).

An in-process replay's log verifier defers the canonical-record check
(``defer_canonical``); the replay proves each line canonical from its own decode
(msgspec re-encodes the event to the very line), asks the exact check only when
that does not prove it, and flags a segment holding a line that is not, which turns
the replay into an integrity failure listing exactly what ``log verify`` lists.
These tests hold the proof sound, the replay's verdicts and exit codes unchanged,
and the policy epochs equal to ``PolicyHistory.at`` and the deadlines they stand for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.canonical import canonical_bytes, is_canonical
from audit.errors import InputError, IntegrityError
from audit.logs.approvals import load_approvals
from audit.logs.record_types import ACCESS_RECORD_TYPE
from audit.logs.verify import LogVerifier, verify_log
from audit.logs.writer import seal
from audit.models import AccessEvent
from audit.pipeline import replay
from audit.policy import PolicyHistory, load_policy
from audit.replay.fast import (
    _DECODE_LINES,
    _DECODER,
    _ENCODE,
    CHUNK,
    FastReplay,
    NonCanonicalRecord,
    _utc_midnight,
    epochs,
)
from audit.replay.options import Execution
from audit.report.findings import EncodedFinding
from audit.signing.keys import Keyring, SigningKey, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE
from tests.conftest import APPROVALS_LOG, FIXTURES, KEYS, POLICIES, REPO

LINES = (FIXTURES / "events.jsonl").read_bytes().splitlines()
NOW = datetime(2022, 6, 30, tzinfo=UTC)


def _proves(line: bytes) -> bool:
    """Whether the replay's own check takes ``line`` as canonical without asking the exact check."""
    try:
        return _ENCODE(_DECODER.decode(line)) == line
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False


# ------------------------------------------------------------------------------ the proof is sound


def test_msgspec_writes_every_code_point_as_rfc8785_does() -> None:
    """Every character, in blocks (escaping is per character, so equal blocks are equal characters)."""
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(points), 4096):
        text = "".join(map(chr, points[start : start + 4096]))
        assert msgspec.json.encode(text) == rfc8785.dumps(text), hex(points[start])


def test_every_sealed_fixture_record_is_proved_canonical_by_its_own_decode() -> None:
    """The fast proof is the one taken for what ``seal`` writes, with or without optional fields."""
    sealed = [line for log in ("access", "approvals") for line in _segment_lines(FIXTURES / "logs" / log)]
    access = [line for line in sealed if b'"action"' in line]
    assert len(access) > 50
    assert all(_proves(line) for line in access)
    minimal = canonical_bytes(AccessEvent.model_validate_json(_us_read()))
    assert _proves(minimal)


def _segment_lines(log: Path) -> list[bytes]:
    return [line for seg in sorted((log / "segments").glob("*.jsonl")) for line in seg.read_bytes().splitlines()]


def _us_read() -> bytes:
    return orjson.dumps(
        {
            "event_id": "e",
            "time": "2021-10-10T10:00:00Z",
            "action": "read",
            "actor": {"id": "a"},
            "resource": {
                "id": "r",
                "dataset": "d",
                "category": "public_video",
                "store": "s",
                "provider": "oci",
                "region": "us-ashburn-1",
            },
        }
    )


_TEXT = st.text(st.characters(codec="utf-8"), max_size=6) | st.sampled_from(
    ["", "\u2028", "\x7f", "\x1f", "/", "\\", '"', "\U0001f600", "\ufeff", "e\u0301"]
)


@st.composite
def _record_texts(draw: st.DrawFn) -> bytes:
    """A fixture record with strange strings and optional fields present, absent or null, in many textual forms."""
    record: dict[str, Any] = orjson.loads(draw(st.sampled_from(LINES)))
    for _ in range(draw(st.integers(0, 3))):
        target = record if draw(st.booleans()) else record.get(draw(st.sampled_from(["actor", "resource"])))
        if not isinstance(target, dict) or not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        target[key] = draw(
            _TEXT | st.none() | st.booleans() | st.lists(_TEXT, max_size=2) | st.integers(-2, 2) | st.floats()
        )
    form = draw(st.sampled_from(["canonical", "orjson", "ascii", "spaced", "unsorted", "duplicate", "escaped"]))
    if form == "canonical":
        try:
            return canonical_bytes(record)
        except (rfc8785.CanonicalizationError, ValueError, TypeError):
            return orjson.dumps(record)
    if form == "orjson":
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    if form == "ascii":
        return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    if form == "spaced":
        return json.dumps(record, sort_keys=True, ensure_ascii=False).encode()
    if form == "unsorted":
        return json.dumps(dict(reversed(record.items())), separators=(",", ":"), ensure_ascii=False).encode()
    canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    if form == "duplicate":  # a second value for one key: readers disagree on which counts
        key = draw(st.sampled_from(sorted(record)))
        return canonical[:-1] + b',"' + key.encode() + b'":' + orjson.dumps(record[key]) + b"}"
    return canonical.replace(b'"read"', b'"\\u0072ead"').replace(b"/", b"\\/")  # "escaped"


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_record_texts())
def test_a_line_the_replay_proves_canonical_is_canonical(line: bytes) -> None:
    if _proves(line):
        assert is_canonical(line), line


# ------------------------------------------------------------------- replay: verdicts and exit codes


@pytest.fixture(scope="module")
def producer() -> SigningKey:
    return load_private_key(KEYS / "log-producer.key", FIXTURE_PASSPHRASE)


def _sealed(tmp_path: Path, producer: SigningKey, records: list[bytes], segment_size: int = 3) -> Path:
    log = tmp_path / "log"
    seal(
        iter(records),
        out=log,
        key=producer,
        origin="canonical",
        record_type=ACCESS_RECORD_TYPE,
        segment_size=segment_size,
        time=datetime(2022, 2, 1, tzinfo=UTC),
    )
    return log


def _replay(log: Path, keyring: Keyring, key: SigningKey, out: Path, workers: int = 1) -> None:
    replay(log, keyring, APPROVALS_LOG, POLICIES, key, out, now=NOW, execution=Execution(workers=workers))


_NOT_CANONICAL: dict[str, Callable[[bytes], bytes]] = {
    "duplicate-key": lambda line: line[:-1] + b',"action":"read"}',
    "whitespace": lambda line: line.replace(b'","', b'", "', 1),
    "escaped-letter": lambda line: line.replace(b'"event_id":"', b'"event_id":"\\u0065', 1),
    "escaped-solidus": lambda line: line.replace(b'"time":"', b'"time":"\\/', 1),
    "unsorted-keys": lambda line: json.dumps(
        dict(reversed(orjson.loads(line).items())), separators=(",", ":")
    ).encode(),
}
"""Sealed access records that are not their RFC 8785 form, named by how they depart from it."""


@pytest.mark.parametrize("how", sorted(_NOT_CANONICAL))
def test_the_replay_never_proves_a_departure_from_rfc8785_itself(how: str) -> None:
    """Each departure, on every fixture record: the exact check must decide (and refuses it)."""
    for line in LINES:
        changed = _NOT_CANONICAL[how](canonical_bytes(orjson.loads(line)))
        assert not _proves(changed), changed
        assert not is_canonical(changed)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("how", sorted(_NOT_CANONICAL))
def test_a_non_canonical_record_fails_the_replay_as_log_verify_reports_it(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, producer: SigningKey, how: str, workers: int
) -> None:
    """Attack: a producer seals a record that readers may decode differently; the hashes verify."""
    records = list(LINES[:6])
    records[4] = _NOT_CANONICAL[how](records[4])
    assert not is_canonical(records[4])
    log = _sealed(tmp_path, producer, records)
    expected = verify_log(log, keyring)
    assert [(p.code, p.segment, p.line) for p in expected.problems] == [
        ("non-canonical-record", "segments/00000001.jsonl", 2)
    ]
    with pytest.raises(IntegrityError, match="non-canonical-record") as caught:
        _replay(log, keyring, auditor_key, tmp_path / "out", workers)
    assert "00000001.jsonl" in str(caught.value)
    assert not (tmp_path / "out").exists()  # nothing is published


@pytest.mark.parametrize("workers", [1, 2])
def test_integrity_is_reported_before_an_invalid_record_of_the_same_segment(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, producer: SigningKey, workers: int
) -> None:
    """Regression guard: the check moved into the replay loop, so an invalid but canonical record
    met first in a segment must not turn the integrity failure (exit 3) into an input error (exit 2)."""
    invalid = orjson.loads(LINES[0])
    del invalid["actor"]
    invalid["event_id"] = "invalid-1"
    records = [LINES[0], canonical_bytes(invalid), LINES[1], LINES[2][:-1] + b',"action":"read"}']
    log = _sealed(tmp_path, producer, records, segment_size=4)
    with pytest.raises(IntegrityError, match="non-canonical-record"):
        _replay(log, keyring, auditor_key, tmp_path / "out", workers)
    records[3] = LINES[2]  # the same log without the non-canonical record: the input error it always was
    with pytest.raises(InputError, match=r"00000000.jsonl:2: actor: Field required"):
        _replay(_sealed(tmp_path / "b", producer, records, segment_size=4), keyring, auditor_key, tmp_path / "o2")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_deeply_nested_record_fails_the_replay_as_an_integrity_failure_not_a_crash(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, producer: SigningKey, workers: int
) -> None:
    """Regression: a sealed record nested 5,000 deep crashed the canonical check with RecursionError (exit 4)."""
    log = _sealed(tmp_path, producer, [LINES[0], b"[" * 5_000 + b"]" * 5_000, LINES[1]])
    with pytest.raises(IntegrityError, match="non-canonical-record"):
        _replay(log, keyring, auditor_key, tmp_path / "out", workers)


def test_one_process_and_workers_agree_when_an_input_error_follows_a_non_canonical_segment(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, producer: SigningKey
) -> None:
    """Regression (found in review): one process stopped judging after a flagged segment (exit 3) while
    ``--workers 2`` went on to a later segment's input error (exit 2). Both now judge on, as before ADR 0016."""
    invalid = orjson.loads(LINES[0])
    del invalid["actor"]
    invalid["event_id"] = "invalid-1"
    records = [LINES[0], LINES[1], LINES[2][:-1] + b',"action":"read"}', canonical_bytes(invalid), LINES[3], LINES[4]]
    log = _sealed(tmp_path, producer, records, segment_size=3)
    for workers in (1, 2):
        with pytest.raises(InputError, match=r"00000001.jsonl:1: actor: Field required"):
            _replay(log, keyring, auditor_key, tmp_path / f"out-{workers}", workers)
    records[3] = LINES[5]  # without the input error: the integrity failure, in both
    clean_later = _sealed(tmp_path / "b", producer, records, segment_size=3)
    for workers in (1, 2):
        with pytest.raises(IntegrityError, match="non-canonical-record"):
            _replay(clean_later, keyring, auditor_key, tmp_path / f"o-{workers}", workers)


def test_a_deferred_canonical_check_flagged_by_the_consumer_reports_as_a_full_verification(
    tmp_path: Path, keyring: Keyring, producer: SigningKey
) -> None:
    records = list(LINES[:6])
    records[1] = records[1].replace(b'","', b'", "', 1)
    log = _sealed(tmp_path, producer, records)
    unflagged = LogVerifier(log, keyring, defer_canonical=True)
    assert len(list(unflagged.segments())) == 2  # left to the consumer: nothing else is wrong
    flagged = LogVerifier(log, keyring, defer_canonical=True)
    first, _ = list(flagged.segments())
    flagged.content_mismatch(first.name)
    assert flagged.report() == verify_log(log, keyring)
    assert not flagged.report().ok


# ---------------------------------------------------------------------- lines checked a chunk at a time


def _canonical_lines(count: int) -> list[bytes]:
    """``count`` canonical access records picked across the fixture events, each with its own id."""
    picked = (orjson.loads(LINES[n * 11 % len(LINES)]) for n in range(count))
    return [canonical_bytes({**body, "event_id": f"chunk-{n}"}) for n, body in enumerate(picked)]


def _judged(lines: list[bytes], check: bool) -> list[EncodedFinding]:
    fast = FastReplay.for_policy(load_policy(POLICIES), load_approvals(FIXTURES / "approvals.jsonl", None))
    return fast.encoded_segment(lines, "s", Path("s"), check_canonical=check)


@pytest.mark.parametrize("at", [1, CHUNK, CHUNK + 1, 2 * CHUNK + 7])
def test_the_chunked_check_names_the_first_non_canonical_line_wherever_it_falls(at: int) -> None:
    """A chunk is proved whole or checked line by line: the error names the first bad line, not the chunk."""
    lines = _canonical_lines(2 * CHUNK + 20)
    lines[at - 1] = _NOT_CANONICAL["whitespace"](lines[at - 1])
    lines[at + 5] = _NOT_CANONICAL["duplicate-key"](lines[at + 5])
    with pytest.raises(NonCanonicalRecord, match=rf"^s:{at}: line {at} of s is not"):
        _judged(lines, check=True)


def test_a_chunk_not_proved_whole_is_judged_line_by_line_with_the_same_findings() -> None:
    lines = _canonical_lines(2 * CHUNK + 20)
    expected = _judged(lines, check=True)
    hit = next(n for n in range(CHUNK, len(lines)) if _judged([lines[n]], check=True))  # a line with a finding
    spaced = list(lines)
    spaced[hit] = _NOT_CANONICAL["whitespace"](spaced[hit])  # the same event in other bytes: its chunk falls back
    assert len(expected) >= 3
    assert _judged(spaced, check=False) == expected  # a verifier that checked the form itself


def test_two_records_on_one_line_beside_a_blank_line_are_not_realigned_by_the_chunk_decode() -> None:
    """Attack: msgspec's ``decode_lines`` reads NDJSON leniently (two values on a line, blank lines
    skipped), so a line holding two records next to a blank line decodes to as many events as lines."""
    lines = _canonical_lines(6)
    lines[2], lines[3] = lines[2] + b" " + lines[3], b""
    assert len(_DECODE_LINES(b"\n".join(lines) + b"\n")) == len(lines)  # what the chunk's proof must not trust
    with pytest.raises(NonCanonicalRecord, match=r"^s:3: line 3 of s is not"):
        _judged(lines, check=True)
    with pytest.raises(InputError, match=r"^s:3: "):
        _judged(lines, check=False)


def test_a_line_holding_a_newline_is_not_split_into_two_events() -> None:
    """Regression (found in review): equal bytes alone proved a chunk whose line held a newline, so with
    the shapes cached its first half was judged as line 1 and its second half as line 2 (and the rest
    one line off). The chunk must also decode to one event per line. The log readers split on newlines,
    so only a direct caller could pass such a line."""
    first, second, third = _canonical_lines(3)
    fast = FastReplay.for_policy(load_policy(POLICIES), load_approvals(FIXTURES / "approvals.jsonl", None))
    fast.encoded_segment([first, second, third], "warm", Path("warm"), check_canonical=True)  # shapes cached
    joined = [first + b"\n" + second, third]
    with pytest.raises(NonCanonicalRecord, match=r"^s:1: line 1 of s is not"):
        fast.encoded_segment(joined, "s", Path("s"), check_canonical=True)
    with pytest.raises(InputError, match=r"^s:1: malformed JSON"):
        fast.encoded_segment(joined, "s", Path("s"), check_canonical=False)


class _CountingDecoder:
    """The fast decoder, counting the lines it is asked to decode one at a time."""

    def __init__(self) -> None:
        self.lines = 0

    def decode(self, raw: bytes) -> object:
        self.lines += 1
        return _DECODER.decode(raw)


def test_a_chunk_not_proved_whole_decodes_again_only_the_lines_it_could_not_prove(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review: one canonical line the encoder does not reproduce (an explicit null) made the whole chunk
    decode twice, 26% slower than line by line. Lines equal to the encoding of the event decoded at
    their place are that event; only the others are decoded again."""
    lines = _canonical_lines(CHUNK)
    expected = _judged(lines, check=True)
    with_null = orjson.loads(lines[5])
    with_null["justification"] = None
    lines[5] = canonical_bytes(with_null)  # canonical, and the same event, but not what msgspec writes
    assert is_canonical(lines[5]) and not _proves(lines[5])
    counting = _CountingDecoder()
    monkeypatch.setattr("audit.replay.fast._DECODER", counting)
    assert _judged(lines, check=True) == expected
    assert counting.lines == 1


# ------------------------------------------------------------------------------- policy epochs


def _instants(policy: PolicyHistory) -> list[datetime]:
    """Every epoch point, a microsecond either side, and the same instants written at other offsets."""
    points, _ = epochs(policy)
    near = [p + timedelta(microseconds=d) for p in points for d in (-1, 0, 1)]
    near += [datetime(1970, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC)]
    zones = [timezone(timedelta(minutes=m)) for m in (0, -300, 330, 14 * 60, -(23 * 60 + 59))]
    return [t.astimezone(zone) for t in near for zone in zones]


@pytest.mark.parametrize("pack_dir", [POLICIES, REPO / "packs" / "eu-personal-data"], ids=["us", "eu"])
def test_an_epoch_stands_for_the_pack_in_force_and_the_deadlines_passed(pack_dir: Path) -> None:
    from bisect import bisect_right

    policy = load_policy(pack_dir)
    points, packs = epochs(policy)
    deadlines = {_utc_midnight(s.deadline) for p in policy.packs for s in p.config.transitional_stores}
    assert deadlines or len(policy.packs) > 1, "nothing to test: the pack has one version and no deadline"
    by_span: dict[int, set[tuple[bool, ...]]] = {}
    for t in _instants(policy):
        span = bisect_right(points, t)
        assert packs[span] is policy.at(t), t
        by_span.setdefault(span, set()).add(tuple(t >= d for d in sorted(deadlines)))
    assert all(len(passed) == 1 for passed in by_span.values())  # a span never straddles a deadline
