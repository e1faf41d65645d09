"""SARIF output of the policy commands validates against the official SARIF 2.1.0 schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from audit.cli.app import main
from audit.errors import EXIT_VIOLATIONS
from audit.policy.diagnostics import CHECKS, Diagnostic
from audit.report.sarif import artifact_uri, render_sarif
from tests.conftest import POLICIES, REPO
from tests.policy_breaks import append, copy_pack, grant_foreign_precise_location

SCHEMA = json.loads((REPO / "tests" / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


def _validate(doc: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)


def test_lint_sarif_validates_with_rule_level_uri_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pack = copy_pack(tmp_path)
    line = append(pack / "policy.csv", "p3, 1, access, *, *, *, *, allow, C1, -")
    out = tmp_path / "lint.sarif"
    assert main(["policy", "lint", str(pack), "--format", "sarif", "--output", str(out)]) == EXIT_VIOLATIONS
    doc = json.loads(out.read_bytes())
    _validate(doc)
    run = doc["runs"][0]
    (result,) = run["results"]
    assert result["ruleId"] == "undefined-ptype" and result["level"] == "error"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "undefined-ptype"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "pack/policy.csv"
    assert location["region"] == {"startLine": line, "startColumn": 1}
    assert capsys.readouterr().out.startswith("6 file(s) linted: 1 error(s)")


def test_prove_and_diff_sarif_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = copy_pack(tmp_path)
    line = grant_foreign_precise_location(pack)
    assert main(["policy", "prove", str(pack), "--format", "sarif"]) == EXIT_VIOLATIONS
    doc = json.loads(capsys.readouterr().out)
    _validate(doc)
    (result,) = doc["runs"][0]["results"]
    assert (result["ruleId"], result["locations"][0]["physicalLocation"]["region"]["startLine"]) == (
        "invariant-violated",
        line,
    )
    assert main(["policy", "diff", str(POLICIES), str(pack), "--format", "sarif"]) == EXIT_VIOLATIONS
    _validate(json.loads(capsys.readouterr().out))


def test_every_check_and_fileless_results_validate() -> None:
    diagnostics = [
        Diagnostic(check.id, check.severity, check.title, "policies/policy.csv", 3, 2) for check in CHECKS.values()
    ]
    diagnostics.append(Diagnostic("pack-file", "error", "no line", "/elsewhere/model.conf"))
    diagnostics.append(Diagnostic("coverage-below-minimum", "error", "no file"))
    doc = json.loads(render_sarif(diagnostics, CHECKS, root=REPO, command="lint"))
    _validate(doc)
    assert len(doc["runs"][0]["tool"]["driver"]["rules"]) == len(CHECKS)
    assert (
        doc["runs"][0]["results"][-2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == "file:///elsewhere/model.conf"
    )
    assert "locations" not in doc["runs"][0]["results"][-1]


def test_artifact_uri(tmp_path: Path) -> None:
    assert artifact_uri(str(tmp_path / "a b" / "c.csv"), tmp_path) == "a b/c.csv"
    assert artifact_uri("/x/y.csv", tmp_path) == "file:///x/y.csv"
