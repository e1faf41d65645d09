"""``policy prove``: the shipped pack proves its invariants; a C2 breach fails with a counterexample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_VIOLATIONS
from audit.policy.prove import ProofReport, prove
from tests.conftest import POLICIES
from tests.policy_breaks import copy_pack, grant_foreign_precise_location, insert_before, line_of, replace

REQUIRED = {
    "foreign-staff-never-see-sensitive-data": "C2",
    "foreign-access-needs-us-security-approval": "C1",
    "no-storage-outside-oci-us": "C3",
}


@pytest.fixture(scope="module")
def breach(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    pack = copy_pack(tmp_path_factory.mktemp("breach"))
    return pack, grant_foreign_precise_location(pack)


@pytest.fixture(scope="module")
def breach_report(breach: tuple[Path, int]) -> ProofReport:
    return prove(breach[0])


def test_shipped_pack_proves_its_invariants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "prove", str(POLICIES)]) == EXIT_CLEAN
    text = capsys.readouterr().out
    for invariant in REQUIRED:
        assert f"PROVED {invariant} ({REQUIRED[invariant]})" in text
    assert "FAILED" not in text and "0 domain gap(s)" in text


def test_breach_fails_c2_with_a_counterexample(breach: tuple[Path, int], breach_report: ProofReport) -> None:
    pack, line = breach
    assert not breach_report.ok
    failing = {r.spec.invariant.id: r for r in breach_report.results if not r.holds}
    assert set(failing) == {"foreign-staff-never-see-sensitive-data"}
    counter = failing["foreign-staff-never-see-sensitive-data"].counterexamples
    assert {c.request for c in counter} == {
        ("access", "foreign_staff", "precise_location", "read", "valid"),
        ("access", "unlocated_staff", "precise_location", "read", "valid"),
    }
    assert all(c.decision.allowed and c.decision.row is not None and c.decision.row.line == line for c in counter)
    (diag,) = breach_report.diagnostics()
    assert (diag.check, diag.file, diag.line) == ("invariant-violated", str(pack / "policy.csv"), line)
    assert (
        "counterexample facet=access sub=foreign_staff obj=precise_location act=read ctx=valid is allowed by "
        f"policy.csv:{line} (C1); 1 more counterexample(s)" in diag.message
    )


def test_cli_prints_the_counterexample_and_exits_1(
    breach: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    pack, line = breach
    assert main(["policy", "prove", str(pack), "--format", "json"]) == EXIT_VIOLATIONS
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["ok"] is False
    (c2,) = [i for i in doc["invariants"] if i["id"] == "foreign-staff-never-see-sensitive-data"]
    assert c2["counterexamples"][0]["request"] == {
        "facet": "access",
        "sub": "foreign_staff",
        "obj": "precise_location",
        "act": "read",
        "ctx": "valid",
    }
    assert c2["counterexamples"][0]["decision"]["row"]["line"] == line


def test_storage_breach_fails_c3(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    replace(
        pack / "policy.csv",
        "p, 399, storage, *, *, *, *, deny, C3, store-outside-oci-us",
        "p, 399, storage, *, *, *, *, allow, C3, -",
    )
    report = prove(pack)
    failing = {r.spec.invariant.id for r in report.results if not r.holds}
    assert failing == {"no-storage-outside-oci-us"}


def test_foreign_access_without_approval_fails_c1(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    replace(
        pack / "policy.csv",
        "p, 240, access, foreign_staff, *, *, none, deny, C1, foreign-access-without-approval",
        "p, 240, access, foreign_staff, non_sensitive, *, none, allow, C1, -",
    )
    report = prove(pack)
    (result,) = [r for r in report.results if not r.holds]
    assert result.spec.invariant.id == "foreign-access-needs-us-security-approval"
    assert {c.request[4] for c in result.counterexamples} == {"none"}


def test_domain_gap_and_vacuous_invariant(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    gap = insert_before(pack / "policy.csv", "g2, unclassified, sensitive", "g2, shoe_size, non_sensitive")
    invariants = pack / "invariants.yaml"
    text = invariants.read_text().replace(
        "sub: [us_staff], obj: {in: foreign_actors}", "sub: [us_stafff], obj: {in: foreign_actors}"
    )
    invariants.write_text(text)
    report = prove(pack)
    assert not report.ok
    checks = [(d.check, Path(d.file or "").name, d.line) for d in report.diagnostics()]
    assert ("domain-gap", "policy.csv", gap) in checks
    vacuous = line_of(invariants, "id: no-proxy-access-for-foreign-colleagues")
    assert ("invariant-violated", "invariants.yaml", vacuous) in checks


def test_invalid_invariants_file_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = copy_pack(tmp_path)
    invariants = pack / "invariants.yaml"
    line = replace(invariants, "    expect: deny\n".strip(), "expect: maybe")
    assert main(["policy", "prove", str(pack)]) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {invariants}:{line}:") and "\n" not in err
    (pack / "invariants.yaml").unlink()
    assert main(["policy", "prove", str(pack)]) == EXIT_INPUT
    assert "no invariants.yaml" in capsys.readouterr().err
