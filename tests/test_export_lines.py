"""The line encoders of the exports (:mod:`audit.report.export_lines`) write the general encoders' bytes.

``findings.csv`` rows are held equal to the ``csv`` module's (:func:`findings_csv`)
and ``findings.ocsf.jsonl`` lines to ``plain_canonical_bytes`` of :func:`ocsf_finding`
(itself held equal to ``rfc8785``), on generated findings with odd Unicode, quotes,
commas, line breaks, formula starts and every optional field absent or present; and
the files :class:`FindingExports` writes are those bytes. The fixture reports are
covered by ``tests/test_report_fast_paths.py`` and ``tests/test_readback.py``.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from audit.canonical import plain_canonical_bytes
from audit.models import Finding
from audit.report import export_lines
from audit.report.export_lines import CsvLines, OcsfLines, csv_cell, ocsf_bytes
from audit.report.exports import FINDING_COLUMNS, FindingExports, _CsvRows, findings_csv, ocsf_finding, ocsf_lines
from tests.test_readback import _findings, _text

_QUOTING = st.text(st.sampled_from(',"\r\n =+-@\t\x00\u2028\x85a'), max_size=6)


@settings(max_examples=500, deadline=None)
@given(_text | _QUOTING)
@example("")
@example('"')
@example("-1")
@example("\r")
@example("a,b")
def test_a_cell_is_the_csv_modules_formula_safe_field(value: str) -> None:
    rows = _CsvRows()
    expected = rows.encode([value, "x"]).decode()  # two fields: a lone empty field is quoted by csv
    assert csv_cell(value) + ",x\r\n" == expected


@settings(max_examples=300, deadline=None)
@given(_findings, _text)
def test_a_findings_lines_are_the_general_encoders_bytes(finding: Finding, text: str) -> None:
    header = b"".join(findings_csv([]))
    assert header == _CsvRows().encode(FINDING_COLUMNS, safe=False)
    assert CsvLines().line(finding).encode() == b"".join(findings_csv([finding]))[len(header) :]
    assert ocsf_bytes(finding, text) == plain_canonical_bytes(ocsf_finding(finding, text)) + b"\n"


def _finding(time: datetime = datetime(2021, 1, 1, tzinfo=UTC)) -> Finding:
    return Finding(
        rule_id="r",
        commitment="C1",
        severity="low",
        title="t",
        message="m",
        remediation="r",
        event_ids=("e",),
        time=time,
        actor_id="a",
    )


def test_a_lone_surrogate_is_left_to_the_general_encoder() -> None:
    finding = _finding().model_copy(update={"message": "m\ud800"})  # pydantic refuses it; a copy does not validate
    with pytest.raises(orjson.JSONEncodeError):  # orjson refuses it: the exports then ask the general encoder
        ocsf_bytes(finding, "")
    with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)) as general:
        plain_canonical_bytes(ocsf_finding(finding, ""))
    with (
        tempfile.TemporaryDirectory() as tmp,
        FindingExports(Path(tmp) / "c", Path(tmp) / "o", {}) as exports,
        pytest.raises(type(general.value)),
    ):
        list(exports.exporting([finding]))


@settings(max_examples=60, deadline=None)
@given(st.lists(_findings, max_size=40))
def test_the_export_files_are_the_general_encoders_bytes(findings: list[Finding]) -> None:
    texts = {"C1": 'one, "quoted"\nline', "C9": "=nine"}
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, ocsf_path = Path(tmp) / "f.csv", Path(tmp) / "f.ocsf.jsonl"
        with FindingExports(csv_path, ocsf_path, texts) as exports:
            assert list(exports.exporting(findings)) == findings
            exports.close()
        assert csv_path.read_bytes() == b"".join(findings_csv(findings))
        assert ocsf_path.read_bytes() == b"".join(ocsf_lines(findings, texts))


def test_the_memos_are_bounded_and_change_no_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_lines, "_CELLS_KEPT", 8)
    lines, ocsf = CsvLines(), OcsfLines()
    for n in range(50):
        finding = Finding(
            rule_id=f"rule-{n}",
            commitment="C1",
            severity="low",
            title=f"=title {n}",
            message=f"m, {n}",
            remediation="r",
            event_ids=(f"e{n}",),
            time=datetime(2021, 1, 1, tzinfo=UTC),
            actor_id=f"a{n}",
        )
        assert lines.line(finding).encode() == b"".join(findings_csv([finding])).split(b"\r\n", 1)[1]
        assert ocsf.line(finding, "text") == plain_canonical_bytes(ocsf_finding(finding, "text")) + b"\n"
        assert len(lines._cells) <= 8 and len(ocsf._dumped) <= 8


def test_a_remembered_time_is_reused_only_for_the_same_time_in_the_same_zone() -> None:
    """Regression guard for the last-time memo: equal instants in other zones (or folds) format otherwise."""
    at = datetime(2021, 11, 7, 6, 30, tzinfo=UTC)
    plus_one = at.astimezone(timezone(timedelta(hours=1)))
    new_york = datetime(2021, 11, 7, 1, 30, tzinfo=ZoneInfo("America/New_York"))  # the hour that comes twice
    base = _finding(at)
    times = [at, at, plus_one, at, new_york, new_york.replace(fold=1), at + timedelta(seconds=1)]
    assert at == plus_one and at.isoformat() != plus_one.isoformat()  # what the memo must not be fooled by
    lines, ocsf = CsvLines(), OcsfLines()
    for when in times:
        finding = base.model_copy(update={"time": when})  # a copy does not validate: the zone stays
        assert lines.line(finding).encode() == b"".join(findings_csv([finding])).split(b"\r\n", 1)[1]
        assert ocsf.line(finding, "text") == plain_canonical_bytes(ocsf_finding(finding, "text")) + b"\n"
