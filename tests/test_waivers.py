"""Waivers: accepted findings are marked waived (never dropped), expired waivers no longer apply, the file is signed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.errors import InputError
from audit.pipeline import replay
from audit.report.cases import iter_cases
from audit.report.publish import CASES_FILE, MARKDOWN_FILE, REPORT_FILE, WAIVERS_FILE
from audit.report.verify import verify_report
from audit.report.waivers import load_waivers
from audit.signing.keys import load_keyring, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, KEYS, POLICIES
from tests.report_helpers import NOW, fixture_report

WAIVERS = """\
waivers:
  - id: W-store
    rule: store-outside-oci-us
    reason: analytics copy being migrated (SEC-1)
    approver: ciso@example.com
    expires: 2022-12-31
  - id: W-old
    commitment: C8
    reason: accepted last year
    approver: ciso@example.com
    expires: 2021-12-31
  - id: W-one-actor
    commitment: C1
    scope: {actor: "cn-eng-0[12]"}
    reason: contractor pilot
    approver: ciso@example.com
    expires: 2023-01-01
"""


def _replay(out: Path, waivers: Path) -> None:
    key = load_private_key(KEYS / "auditor.key", FIXTURE_PASSPHRASE)
    replay(ACCESS_LOG, load_keyring(KEYS / "keyring.json"), APPROVALS_LOG, POLICIES, key, out, now=NOW,
           waivers=waivers)  # fmt: skip


def test_waived_findings_are_kept_marked_and_signed(tmp_path: Path) -> None:
    plain = fixture_report(tmp_path / "plain")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(WAIVERS)
    out = tmp_path / "waived"
    _replay(out, waivers)
    result = verify_report(out / REPORT_FILE, load_keyring(KEYS / "keyring.json"))
    assert result.ok and WAIVERS_FILE in {c.name for c in result.checks}
    assert (out / WAIVERS_FILE).read_text() == WAIVERS
    from audit.report.findings import iter_findings

    findings = list(iter_findings(out / "findings.jsonl"))
    assert [f.id for f in findings] == [f.id for f in plain.findings]  # never dropped
    expect = {
        f.id: ("W-store" if f.rule_id == "store-outside-oci-us" else
               "W-one-actor" if f.commitment == "C1" and f.actor_id in ("cn-eng-01", "cn-eng-02") else None)
        for f in plain.findings
    }  # fmt: skip
    assert {f.id: f.waiver for f in findings} == expect
    pred = result.statement.predicate
    statuses = {w.id: w for w in pred.waivers}
    assert statuses["W-old"].expired and statuses["W-old"].waived == 0
    assert statuses["W-store"].waived == sum(v == "W-store" for v in expect.values()) > 0
    assert pred.summary.waived == sum(v is not None for v in expect.values())
    assert sum(c.waived for c in iter_cases(out / CASES_FILE)) == pred.summary.waived
    c3 = next(v for v in pred.verdicts if v.id == "C3")
    assert c3.verdict == ("waived" if c3.findings == c3.waived else "broken")
    assert "**WAIVED** by `W-store`" in (out / MARKDOWN_FILE).read_text()


def test_a_changed_waivers_file_fails_verification(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(WAIVERS)
    out = tmp_path / "r"
    _replay(out, waivers)
    (out / WAIVERS_FILE).write_text(WAIVERS.replace("2022-12-31", "2099-12-31"))
    result = verify_report(out / REPORT_FILE, load_keyring(KEYS / "keyring.json"))
    assert [c.name for c in result.checks if not c.ok] == [WAIVERS_FILE]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("waivers:\n  - id: W\n    reason: r\n    approver: a\n    expires: 2022-01-01\n", "rule or a commitment"),
        ("- just a list\n", "mapping"),
        (
            "waivers:\n  - id: W\n    rule: x\n    reason: r\n    approver: a\n    expires: 2022-01-01\n    extra: 1\n",
            "extra",
        ),
        (
            "waivers: [{id: W, rule: x, reason: r, approver: a, expires: 2022-01-01},"
            " {id: W, rule: y, reason: r, approver: a, expires: 2022-01-01}]\n",
            "unique",
        ),
    ],
)
def test_bad_waiver_files_are_input_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_waivers(path)


def test_expiry_is_judged_at_the_report_date(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(WAIVERS)
    out = tmp_path / "later"
    key = load_private_key(KEYS / "auditor.key", FIXTURE_PASSPHRASE)
    outcome = replay(ACCESS_LOG, load_keyring(KEYS / "keyring.json"), APPROVALS_LOG, POLICIES, key, out,
                     now=datetime(2023, 6, 1, tzinfo=UTC), waivers=waivers)  # fmt: skip
    assert all(w.expired for w in outcome.statement.predicate.waivers)
    assert not any(f.waiver for f in outcome.findings)


def test_a_line_is_marked_exactly_as_its_validated_finding_is(tmp_path: Path) -> None:
    """``apply_line`` decides on the typed decode and validates only covered lines: same bytes and counts as
    :meth:`WaiverSet.apply` on every validated finding, for waivers by rule, by commitment, by each scope
    pattern, and covering nothing."""
    from audit.canonical import canonical_bytes
    from audit.models import Finding
    from audit.report.waivers import WaiverSet

    text = (
        WAIVERS
        + """\
  - id: W-event
    commitment: C2
    scope: {event: "evt-000[6-8]*", store: "oci-*"}
    reason: backfill
    approver: ciso@example.com
    expires: 2023-01-01
  - id: W-none
    rule: no-such-rule
    reason: covers nothing
    approver: ciso@example.com
    expires: 2023-01-01
"""
    )
    waivers_file = tmp_path / "waivers.yaml"
    waivers_file.write_text(text)
    waivers, _ = load_waivers(waivers_file)
    lines = (fixture_report(tmp_path / "plain").outdir / "findings.jsonl").read_bytes().splitlines(keepends=True)
    by_line, by_model = WaiverSet(waivers, NOW), WaiverSet(waivers, NOW)
    marked = [by_line.apply_line(line) for line in lines]
    expected = [canonical_bytes(by_model.apply(Finding.model_validate_json(line))) + b"\n" for line in lines]
    assert marked == expected
    assert by_line.counts == by_model.counts
    assert {"W-store", "W-one-actor", "W-event"} <= set(by_line.counts)  # each kind of waiver marked something
    assert sum(by_line.counts.values()) < len(lines)  # and some lines passed through unmarked
