"""The shortcuts of writing a report hold exactly what the plain way gives.

- :func:`audit.canonical.canonical_bytes` of a :class:`Finding` skips the per-value
  walk, and ``findings.ocsf.jsonl`` lines skip it too (:func:`plain_canonical_bytes`):
  both are held equal to the ``rfc8785`` package for arbitrary findings;
- a finding's id is computed once and kept; a copy with other fields gets its own;
- one pass over ``findings.jsonl`` builds the cases and counts the verdicts, and one
  more renders the HTML page and writes ``findings.csv`` and ``findings.ocsf.jsonl``:
  the report's files equal what the separate passes give.
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.canonical import canonical_bytes, orjson_is_canonical_for, plain_canonical_bytes
from audit.models import Finding, LogPosition, PolicyRowRef, finding_id
from audit.pipeline import ReplayOutcome, store_rule_ids
from audit.policy import load_policy
from audit.report.cases import build_cases
from audit.report.claims import FindingTallies, commitment_verdicts
from audit.report.exports import findings_csv, ocsf_finding, ocsf_lines
from audit.report.findings import iter_findings
from audit.report.html import render_html
from audit.report.publish import FINDINGS_CSV, FINDINGS_FILE, HTML_FILE, OCSF_FILE
from audit.report.statement import subject_digests
from tests.conftest import POLICIES
from tests.report_helpers import fixture_report
from tests.test_import_fast_path import _leaf_types

_text = st.text(max_size=8)
_nonempty = st.text(min_size=1, max_size=8)
_line = st.integers(min_value=1, max_value=2**70)
_findings = st.builds(
    Finding,
    rule_id=_nonempty,
    commitment=st.sampled_from(["C1", "C9", "C12"]),
    severity=st.sampled_from(["critical", "high", "medium", "low"]),
    title=_nonempty,
    message=_nonempty,
    remediation=_nonempty,
    event_ids=st.lists(_text, max_size=3).map(tuple),
    approval_ids=st.lists(_text, max_size=2).map(tuple),
    time=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])),
    actor_id=_text,
    policy_row=st.none() | st.builds(PolicyRowRef, file=_nonempty, line=_line, fields=st.lists(_text).map(tuple)),
    position=st.none() | st.builds(LogPosition, segment=_nonempty, line=_line),
    store=st.none() | _text,
    region=st.none() | _text,
    actor_country=st.none() | _text,
    waiver=st.none() | _text,
)


def _rfc8785_or_error(value: Any) -> bytes | None:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return None


def test_finding_fields_admit_no_float_or_free_keys() -> None:
    """What lets canonical_bytes skip the per-value walk for a Finding: only its integers need a check."""
    leaves = list(_leaf_types(Finding, set()))
    assert sorted({where for where, kind in leaves if kind is int}) == ["LogPosition.line", "PolicyRowRef.line"]
    for where, kind in leaves:
        allowed = (str, int, datetime, type(None))
        assert kind in allowed or (isinstance(kind, tuple) and set(kind) <= {str}), (where, kind)
    assert typing.get_type_hints(Finding)["event_ids"] == tuple[str, ...]


@settings(max_examples=300, deadline=None)
@given(_findings)
def test_finding_canonical_bytes_equal_rfc8785(finding: Finding) -> None:
    expected = _rfc8785_or_error(finding.model_dump(mode="json", exclude_none=True))
    if expected is None:
        with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
            canonical_bytes(finding)
        return
    assert canonical_bytes(finding) == expected


@settings(max_examples=300, deadline=None)
@given(_findings, _text)
def test_ocsf_lines_are_rfc8785_without_the_walk(finding: Finding, commitment_text: str) -> None:
    value = ocsf_finding(finding, commitment_text)
    assert orjson_is_canonical_for(value)  # the guarantee plain_canonical_bytes relies on: no float, ASCII keys
    expected = _rfc8785_or_error(value)
    if expected is None:
        with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
            plain_canonical_bytes(value)
        return
    assert plain_canonical_bytes(value) == expected


def test_plain_canonical_bytes_hands_big_integers_and_lone_surrogates_to_rfc8785() -> None:
    assert plain_canonical_bytes({"b": [2**53 - 1], "a": -(2**53 - 1)}) == rfc8785.dumps(
        {"b": [2**53 - 1], "a": -(2**53 - 1)}
    )
    with pytest.raises(rfc8785.CanonicalizationError):
        plain_canonical_bytes({"a": 2**53})
    with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
        plain_canonical_bytes({"a": "\ud800"})  # a lone surrogate: orjson refuses, rfc8785 decides


@settings(max_examples=100, deadline=None)
@given(_findings, st.lists(_text, min_size=1, max_size=2).map(tuple), _nonempty)
def test_a_finding_id_is_always_the_one_its_fields_give(finding: Finding, events: tuple[str, ...], rule: str) -> None:
    assert finding.id == finding_id(finding.rule_id, finding.commitment, finding.event_ids)
    for changed in (
        finding.model_copy(update={"event_ids": events}),
        finding.model_copy(update={"rule_id": rule}, deep=True),
    ):
        assert changed.id == finding_id(changed.rule_id, changed.commitment, changed.event_ids)
        assert changed.model_dump()["id"] == changed.id
    again = Finding.model_validate(finding.model_dump())
    assert again == finding and "id" in again.__dict__  # the checked id is kept, not computed again
    with pytest.raises(ValueError, match="is not the one"):
        Finding.model_validate({**finding.model_dump(), "id": "F-" + "0" * 20})


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> ReplayOutcome:
    return fixture_report(tmp_path_factory.mktemp("fast-paths") / "report")


def test_one_pass_exports_equal_the_separate_passes(outcome: ReplayOutcome) -> None:
    findings_path = outcome.outdir / FINDINGS_FILE
    predicate = outcome.statement.predicate
    assert len(outcome.findings) > 20
    csv_bytes = b"".join(findings_csv(iter_findings(findings_path)))
    assert (outcome.outdir / FINDINGS_CSV).read_bytes() == csv_bytes
    ocsf = b"".join(ocsf_lines(iter_findings(findings_path), predicate.commitments))
    assert (outcome.outdir / OCSF_FILE).read_bytes() == ocsf
    assert ocsf.splitlines() == [
        rfc8785.dumps(ocsf_finding(f, predicate.commitments.get(f.commitment, ""))) for f in outcome.findings
    ]
    cases = build_cases(iter_findings(findings_path), store_rule_ids(load_policy(POLICIES)))
    page = render_html(predicate, iter_findings(findings_path), cases)
    assert (outcome.outdir / HTML_FILE).read_text() == page
    digests = subject_digests(outcome.statement)
    assert {FINDINGS_CSV, OCSF_FILE, HTML_FILE} <= set(digests)


def test_findings_jsonl_lines_are_rfc8785(outcome: ReplayOutcome) -> None:
    for line, finding in zip((outcome.outdir / FINDINGS_FILE).read_bytes().splitlines(), outcome.findings, strict=True):
        assert line == rfc8785.dumps(finding.model_dump(mode="json", exclude_none=True))


def test_verdicts_from_the_cases_pass_equal_those_from_their_own_pass(outcome: ReplayOutcome) -> None:
    findings_path = outcome.outdir / FINDINGS_FILE
    commitments = {v.id: v for v in outcome.statement.predicate.verdicts}
    assert any(v.verdict == "broken" for v in commitments.values())
    tallies = FindingTallies()
    store_rules = store_rule_ids(load_policy(POLICIES))
    cases = build_cases(tallies.counting(iter_findings(findings_path)), store_rules)
    assert cases == build_cases(iter_findings(findings_path), store_rules)
    exercised = set(commitments)
    register = {cid: c for pack in load_policy(POLICIES).packs for cid, c in pack.commitments.items()}
    counted = commitment_verdicts(register, tallies, cases, exercised)
    assert counted == commitment_verdicts(register, iter_findings(findings_path), cases, exercised)
    assert counted == outcome.statement.predicate.verdicts
