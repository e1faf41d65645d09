"""Exports: findings.csv, cases.csv and OCSF Detection Finding JSON Lines (validated against the OCSF schema)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from audit.models import Finding
from audit.pipeline import ReplayOutcome
from audit.report.cases import iter_cases
from audit.report.exports import CASE_COLUMNS, FINDING_COLUMNS, findings_csv, ocsf_finding
from audit.report.publish import CASES_CSV, CASES_FILE, FINDINGS_CSV, OCSF_FILE
from audit.report.statement import subject_digests
from tests.conftest import REPO
from tests.report_helpers import fixture_report

SCHEMA = json.loads((REPO / "tests" / "data" / "ocsf" / "detection_finding-1.2.0.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> ReplayOutcome:
    return fixture_report(tmp_path_factory.mktemp("exports") / "report")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_exports_are_signed_subjects(outcome: ReplayOutcome) -> None:
    assert {FINDINGS_CSV, CASES_CSV, OCSF_FILE} <= set(subject_digests(outcome.statement))


def test_findings_csv_has_one_row_per_finding(outcome: ReplayOutcome) -> None:
    rows = _rows(outcome.outdir / FINDINGS_CSV)
    findings = outcome.findings
    assert [r["id"] for r in rows] == [f.id for f in findings]
    assert tuple(rows[0]) == FINDING_COLUMNS
    assert all(
        r["commitment"] == f.commitment and r["rule_id"] == f.rule_id for r, f in zip(rows, findings, strict=True)
    )


def test_cases_csv_has_one_row_per_case(outcome: ReplayOutcome) -> None:
    rows = _rows(outcome.outdir / CASES_CSV)
    cases = list(iter_cases(outcome.outdir / CASES_FILE))
    assert [(r["id"], int(r["findings"])) for r in rows] == [(c.id, c.findings) for c in cases]
    assert tuple(rows[0]) == CASE_COLUMNS


def test_every_ocsf_line_validates_against_the_ocsf_schema(outcome: ReplayOutcome) -> None:
    lines = (outcome.outdir / OCSF_FILE).read_bytes().splitlines()
    assert len(lines) == len(outcome.findings)
    for line, finding in zip(lines, outcome.findings, strict=True):
        doc = json.loads(line)
        errors = sorted(VALIDATOR.iter_errors(doc), key=str)
        assert not errors, f"{finding.id}: {errors[0].message} at {list(errors[0].absolute_path)}"
        assert doc["class_uid"] == 2004 and doc["finding_info"]["uid"] == finding.id


def test_the_schema_rejects_what_ocsf_does_not_allow() -> None:
    finding = Finding(
        rule_id="proxy-access",
        commitment="C8",
        severity="critical",
        title="t",
        message="m",
        remediation="r",
        event_ids=("e1",),
        time=datetime(2021, 1, 1, tzinfo=UTC),
        actor_id="a",
    )
    doc = ocsf_finding(finding, "text")
    assert VALIDATOR.is_valid(doc)
    assert not VALIDATOR.is_valid({**doc, "severity_id": 42})
    assert not VALIDATOR.is_valid({k: v for k, v in doc.items() if k != "finding_info"})
    assert not VALIDATOR.is_valid({**doc, "not_an_ocsf_attribute": 1})


def test_csv_cells_cannot_run_as_formulas() -> None:
    finding = Finding(
        rule_id="proxy-access",
        commitment="C8",
        severity="critical",
        title="t",
        message='=HYPERLINK("http://x")',
        remediation="r",
        event_ids=("e1",),
        time=datetime(2021, 1, 1, tzinfo=UTC),
        actor_id="@evil",
    )
    text = b"".join(findings_csv([finding])).decode()
    row = next(csv.DictReader(text.splitlines()))
    assert row["message"].startswith("'=") and row["actor_id"] == "'@evil"
