"""``policy test``: YAML cases against the real enforcer, p-row coverage, --min-coverage and JUnit XML."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_VIOLATIONS
from audit.policy.testing import run_tests
from tests.conftest import POLICIES
from tests.policy_breaks import copy_pack, grant_foreign_precise_location


def test_shipped_pack_passes_with_full_row_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_tests(POLICIES)
    assert report.results and not report.failed
    assert report.coverage == 100.0 and report.uncovered == ()
    assert main(["policy", "test", str(POLICIES), "--min-coverage", "100"]) == EXIT_CLEAN
    assert "0 failed; row coverage 100.0%" in capsys.readouterr().out


def test_uncovered_row_fails_min_coverage_in_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = copy_pack(tmp_path)
    line = grant_foreign_precise_location(pack)
    report = run_tests(pack)
    assert [row.line for row in report.uncovered] == [line]
    assert not report.failed
    out = tmp_path / "junit.xml"
    argv = ["policy", "test", str(pack), "--min-coverage", "100", "--format", "junit", "--output", str(out)]
    assert main(argv) == EXIT_VIOLATIONS
    assert "report written to" in capsys.readouterr().out
    root = ET.fromstring(out.read_bytes())
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    assert int(suite.get("tests", "0")) == len(report.results) + 1
    (failed,) = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed.get("classname") == "coverage"
    failure = failed.find("failure")
    assert failure is not None and f"{pack / 'policy.csv'}:{line}: p row 215 decides no case" in (failure.text or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["row_coverage"] == f"{report.coverage:.1f}"
    assert main(["policy", "test", str(pack)]) == EXIT_CLEAN  # no minimum: coverage is informational


def test_failing_case_named_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- name: US staff read contacts\n  request: [access, us_staff, contact, read, none]\n  allow: true\n"
        "  commitment: C1\n"
        "- name: wrong expectation\n  request: [access, foreign_staff, contact, read, valid]\n  allow: true\n"
        "  commitment: C2\n  rule: null\n  row: 230\n"
    )
    assert main(["policy", "test", str(POLICIES), "--cases", str(cases), "--format", "json"]) == EXIT_VIOLATIONS
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["cases"] == 2 and doc["summary"]["failed"] == 1
    bad = doc["cases"][1]
    assert (bad["line"], bad["passed"]) == (5, False)
    assert bad["problems"] == [
        "expected allow, got deny",
        "expected rule None, got foreign-sensitive-access",
        "expected row 230, got 220 (line " + str(bad["decision"]["row"]["line"]) + ")",
    ]
    assert main(["policy", "test", str(POLICIES), "--cases", str(cases), "--format", "junit"]) == EXIT_VIOLATIONS
    root = ET.fromstring(capsys.readouterr().out)
    failures = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert [(c.get("name"), c.get("line")) for c in failures] == [("wrong expectation", "5")]


def test_malformed_cases_are_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- name: short\n  request: [access, us_staff]\n  allow: true\n  commitment: C1\n"
        "- name: extra\n  request: [a, b, c, d, e]\n  allow: true\n  commitment: C1\n  colour: red\n"
    )
    assert main(["policy", "test", str(POLICIES), "--cases", str(cases)]) == EXIT_INPUT
    assert f"{cases}:2: case 'short': request has 2 fields" in capsys.readouterr().err
    cases.write_text("- name: extra\n  request: [a, b, c, d, e]\n  allow: true\n  commitment: C1\n  colour: red\n")
    assert main(["policy", "test", str(POLICIES), "--cases", str(cases)]) == EXIT_INPUT
    assert f"{cases}:5: case 1: colour" in capsys.readouterr().err
    empty = tmp_path / "pack"
    copy_pack(tmp_path)
    for file in (empty / "tests").iterdir():
        file.unlink()
    assert main(["policy", "test", str(empty)]) == EXIT_INPUT
    assert "no test case files" in capsys.readouterr().err
