"""The replay's decode of its own ``findings.jsonl`` as written (:mod:`audit.report.readback`) is the validated read.

- on the fixture reports (US, US with waivers, EU) and on generated findings (odd
  Unicode, None fields, approval ids, offsets, big line numbers), every finding decoded
  as written reads as the one :func:`iter_findings` validates: every field (and nested
  field) of the same type and value, the same id and time zone; the derived files are
  the bytes the validated read gives;
- the pass sees the very bytes hashed into the signed digest; a ``findings.jsonl``
  altered after the write (a changed byte, a line dropped or added, a waiver forged)
  is caught by ``report verify``: exit 3 naming the file;
- a line that does not decode as a finding is an internal error naming the line.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import typing
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.cli.app import main
from audit.errors import EXIT_INTEGRITY, EXIT_VIOLATIONS, InternalError
from audit.models import Finding, LogPosition, PolicyRowRef
from audit.pipeline import ReplayOutcome, replay, store_rule_ids
from audit.policy import load_policy
from audit.records import sha256_file
from audit.report.bundle import write_derived
from audit.report.cases import CaseBook
from audit.report.exports import findings_csv, ocsf_lines
from audit.report.findings import FindingsSpool, WrittenFindings, iter_findings
from audit.report.publish import FINDINGS_FILE, REPORT_FILE
from audit.report.readback import _OPTIONAL, WrittenFinding, findings_as_written
from audit.signing.keys import load_keyring, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, FIXTURES, KEYS, POLICIES, REPO
from tests.report_helpers import NOW
from tests.test_eu_pack import NOW as EU_NOW
from tests.test_waivers import WAIVERS

KEYRING = str(KEYS / "keyring.json")
EU_PACK = REPO / "packs" / "eu-personal-data"


def _same_finding(a: WrittenFinding, b: Finding) -> bool:
    """What every report writer reads (:class:`FindingView`) is the same: each field, nested ones, the id."""
    nested = {"policy_row": ("file", "line", "fields"), "position": ("segment", "line")}
    for name in (*Finding.model_fields, "id"):
        mine, theirs = getattr(a, name), getattr(b, name)
        if name in nested and mine is not None and theirs is not None:
            if any(getattr(mine, part) != getattr(theirs, part) for part in nested[name]):
                return False
        elif type(mine) is not type(theirs) or mine != theirs:
            return False
    return a.time.tzinfo is b.time.tzinfo


def test_the_mirror_is_the_finding_model_in_its_field_order_then_its_id() -> None:
    assert WrittenFinding.__struct_fields__ == (*Finding.model_fields, "id")
    optional = {name for name, field in Finding.model_fields.items() if field.default is None}
    assert set(_OPTIONAL) == optional  # written only when not None: the others are in every line
    hints, model_hints = typing.get_type_hints(WrittenFinding, include_extras=True), typing.get_type_hints(Finding)
    assert hints["severity"] == model_hints["severity"]  # the model's Literal: the mirror refuses what it refuses
    assert hints["time"] is datetime and hints["event_ids"] == model_hints["event_ids"] == tuple[str, ...]


def _fixture_reports(tmp: Path) -> Iterator[tuple[str, ReplayOutcome]]:
    keyring = load_keyring(KEYS / "keyring.json")
    key = load_private_key(KEYS / "auditor.key", FIXTURE_PASSPHRASE)
    yield "us", replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, key, tmp / "us", now=NOW)
    waivers = tmp / "waivers.yaml"
    waivers.write_text(WAIVERS)
    yield "us-waived", replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, key, tmp / "w", now=NOW, waivers=waivers)
    eu = FIXTURES / "eu" / "logs"
    yield "eu", replay(eu / "access", keyring, eu / "approvals", EU_PACK, key, tmp / "eu", now=EU_NOW)


def test_fixture_reports_read_back_as_validated_and_their_derived_files_are_the_validated_bytes(
    tmp_path: Path,
) -> None:
    seen = set()
    for name, outcome in _fixture_reports(tmp_path):
        findings = outcome.outdir / FINDINGS_FILE
        validated = list(iter_findings(findings))
        fast = list(findings_as_written(findings.read_bytes().splitlines(keepends=True), findings))
        assert len(fast) == len(validated) > 20, name
        assert all(_same_finding(a, b) for a, b in zip(fast, validated, strict=True)), name
        seen |= {(f.waiver is not None, bool(f.approval_ids), f.policy_row is None) for f in fast}
        # The derived files the replay wrote from the read-back are those of the validated read.
        staging = tmp_path / f"{name}-again"
        staging.mkdir()
        shutil.copy(findings, staging / FINDINGS_FILE)
        predicate = outcome.statement.predicate
        pack = EU_PACK if name == "eu" else POLICIES
        with CaseBook(store_rule_ids(load_policy(pack)), scratch=staging) as cases:
            cases.build(iter_findings(findings))
            subjects = write_derived(staging, predicate, cases, staging)
        for subject in subjects:
            assert (staging / subject.name).read_bytes() == (outcome.outdir / subject.name).read_bytes(), subject.name
    assert (True, False, False) in seen and (False, True, False) in seen  # waived findings, cited approvals


_odd = st.characters(codec="utf-8")  # every code point but lone surrogates: controls, NUL, U+2028, astral
_text = st.text(_odd, max_size=12) | st.sampled_from(["", "=1+2", '"a,b"', "line\r\nbreak", "\u2028", "\U0001f600"])
_nonempty = _text.filter(bool)
_line = st.integers(min_value=1, max_value=2**53 - 1)
_zones = st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(hours=14))])
_findings = st.builds(
    Finding,
    rule_id=_nonempty,
    commitment=st.sampled_from(["C1", "C9", "C12"]),
    severity=st.sampled_from(["critical", "high", "medium", "low"]),
    title=_nonempty,
    message=_nonempty,
    remediation=_nonempty,
    event_ids=st.lists(_text, max_size=3).map(tuple),
    approval_ids=st.lists(_text, max_size=3).map(tuple),
    time=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_zones),
    actor_id=_text,
    policy_row=st.none() | st.builds(PolicyRowRef, file=_nonempty, line=_line, fields=st.lists(_text).map(tuple)),
    position=st.none() | st.builds(LogPosition, segment=_nonempty, line=_line),
    store=st.none() | _text,
    region=st.none() | _text,
    actor_country=st.none() | _text,
    waiver=st.none() | _text,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_findings, max_size=12))
def test_generated_findings_read_back_as_validated(findings: list[Finding]) -> None:
    with _scratch() as scratch, FindingsSpool(scratch, run_size=4) as spool:
        for finding in findings:
            spool.add(finding)
        path = scratch / FINDINGS_FILE
        fast = list(findings_as_written(spool.writing(path), path))
        validated = list(iter_findings(path))
        assert spool.written == WrittenFindings(path, len(findings), sha256_file(path))
    assert len(fast) == len(validated) == len(findings)
    assert all(_same_finding(a, b) for a, b in zip(fast, validated, strict=True))
    assert b"".join(findings_csv(fast)) == b"".join(findings_csv(validated))
    texts = {"C1": "one", "C9": "nine"}
    assert b"".join(ocsf_lines(fast, texts)) == b"".join(ocsf_lines(validated, texts))


class _scratch:
    """A fresh directory per generated example (hypothesis does not reset pytest's tmp_path)."""

    def __enter__(self) -> Path:
        self._dir = tempfile.TemporaryDirectory()
        return Path(self._dir.name)

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()


# --- altered after the write ---------------------------------------------------------------------------------------


def _flip_a_message_byte(data: bytes) -> bytes:
    at = data.index(b'"message":"') + len(b'"message":"') + 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _drop_last_line(data: bytes) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:-1])


def _duplicate_first_line(data: bytes) -> bytes:
    first = data.splitlines(keepends=True)[0]
    return first + data


def _waive_one_more(data: bytes) -> bytes:
    # A well-formed finding as this tool writes it, but one the replay did not write.
    return data.replace(b'"time":', b'"waiver":"W-forged","time":', 1)


ALTERATIONS: dict[str, Callable[[bytes], bytes]] = {
    "one byte of a message": _flip_a_message_byte,
    "last line dropped": _drop_last_line,
    "first line duplicated": _duplicate_first_line,
    "a waiver added": _waive_one_more,
}


def _replay_args(out: Path) -> list[str]:
    return [
        "replay", str(ACCESS_LOG), "--keyring", KEYRING, "--approvals", str(APPROVALS_LOG), "--policy", str(POLICIES),
        "--report-key", str(KEYS / "auditor.key"), "--out", str(out),
    ]  # fmt: skip


def test_the_pass_sees_the_bytes_hashed_into_the_signed_digest(tmp_path: Path) -> None:
    """Without and with waivers (which mark lines before they are written and hashed)."""
    for name, outcome in _fixture_reports(tmp_path):
        subject = next(s for s in outcome.statement.subject if s.name == FINDINGS_FILE)
        assert subject.digest["sha256"] == sha256_file(outcome.outdir / FINDINGS_FILE), name


@pytest.mark.parametrize("alteration", ALTERATIONS)
def test_findings_altered_after_the_write_fail_report_verify_with_exit_3(
    alteration: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fixture_passphrase: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_writing = FindingsSpool.writing

    def writing_then_alter(spool: FindingsSpool, path: Path, transform: Any = None) -> Iterator[bytes]:
        yield from real_writing(spool, path, transform)
        path.write_bytes(ALTERATIONS[alteration](path.read_bytes()))

    monkeypatch.setattr(FindingsSpool, "writing", writing_then_alter)
    out = tmp_path / "report"
    assert main(_replay_args(out)) == EXIT_VIOLATIONS  # written from the bytes hashed, then altered on disk
    capsys.readouterr()
    assert main(["report", "verify", str(out / REPORT_FILE), "--keyring", KEYRING]) == EXIT_INTEGRITY
    output = capsys.readouterr()
    assert "FAILED" in output.out + output.err and FINDINGS_FILE in output.out + output.err


def test_a_line_that_is_not_a_finding_as_written_is_an_internal_error_naming_it(tmp_path: Path) -> None:
    """Regression (the read-back of a changed file): msgspec decoded a time whose UTC instant is before year 1,
    then the conversion to UTC overflowed, a traceback. Now no file is read; a line the spool hands on that
    does not decode would be a bug of this tool's: exit 4, one line."""
    path = tmp_path / FINDINGS_FILE
    with FindingsSpool(tmp_path) as spool:
        spool.add(FINDING)
        good = list(spool.writing(path))
    early = re.sub(rb'"time":"[^"]*"', b'"time":"0001-01-01T00:00:00+01:00"', good[0])
    for bad in (early, b'{"not": "a finding"}\n', good[0].replace(b'"severity":"low"', b'"severity":"dire"')):
        with pytest.raises(InternalError, match="does not decode") as caught:
            list(findings_as_written([good[0], bad], path))
        assert caught.value.line == 2 and caught.value.exit_code == 4


FINDING = Finding(
    rule_id="r", commitment="C1", severity="low", title="t", message="m", remediation="r",
    event_ids=("e",), time=datetime(2024, 1, 1, tzinfo=UTC), actor_id="a",
)  # fmt: skip
