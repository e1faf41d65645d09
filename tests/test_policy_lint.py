"""``policy lint``: every problem at its file:line:column with a stable check id, on packs and casbin examples."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_VIOLATIONS
from audit.policy.diagnostics import CHECKS, Diagnostic
from audit.policy.lint import LintReport, lint_pack, lint_paths, pair_files, regex_problem
from audit.policy.parse import split_row
from audit.replay.rules import rule_commitments
from audit.replay.rules import template_scope as replay_scope
from audit.residency.rules import template_scope as residency_scope
from tests.conftest import POLICIES, REPO
from tests.policy_breaks import append, copy_pack, grant_foreign_precise_location, insert_before, line_of, replace
from tests.test_policy_pack import CSV_BREAKS, MODEL_BREAKS

RULES = rule_commitments()
CASBIN_EXAMPLES = Path(
    os.environ.get("CASBIN_EXAMPLES", Path(__file__).resolve().parents[2] / "shared" / "corpora" / "casbin-examples")
)


def _at(report: LintReport, check: str) -> list[tuple[str, int | None, int | None]]:
    return [(Path(d.file or "").name, d.line, d.column) for d in report.diagnostics if d.check == check]


@pytest.fixture(scope="module")
def shipped() -> LintReport:
    return lint_pack(POLICIES, RULES)


def test_shipped_pack_lints_clean(shipped: LintReport) -> None:
    assert shipped.diagnostics == ()
    assert {Path(f).name for f in shipped.files} == {
        "model.conf",
        "policy.csv",
        "pack.yaml",
        "commitments.yaml",
        "invariants.yaml",
        "rules.yaml",
    }


def test_every_reported_check_is_catalogued() -> None:
    for check in CHECKS.values():
        assert check.severity in ("error", "warning", "note")
        assert check.id == check.id.lower() and " " not in check.id


# ---------------------------------------------------------------- the broken copy of the Done-when


def test_broken_copy_reports_every_problem_at_its_line(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    csv = pack / "policy.csv"
    grant_foreign_precise_location(pack)
    undefined = append(csv, "p3, 700, access, us_staff, *, *, *, allow, C1, -")
    short = replace(
        csv,
        "p, 400, proxy, us_staff, foreign_staff, data_access, *, deny, C8, proxy-access",
        "p, 400, proxy, us_staff, foreign_staff, *, deny, C8, proxy-access",
    )
    report = lint_pack(pack, RULES)
    assert _at(report, "undefined-ptype") == [("policy.csv", undefined, 1)]
    assert _at(report, "field-count") == [("policy.csv", short, 1)]
    (field_count,) = [d for d in report.diagnostics if d.check == "field-count"]
    assert field_count.severity == "error"
    assert (
        "p row has 8 fields, model.conf defines 9 (priority, facet, sub, obj, act, ctx, eft, commitment, rule)"
        in field_count.message
    )
    assert "pycasbin would silently drop this row" in report.diagnostics[-1].message


@pytest.mark.parametrize(("label", "breaker", "reason"), CSV_BREAKS, ids=[label for label, _, _ in CSV_BREAKS])
def test_lint_finds_every_break_the_loader_refuses(
    tmp_path: Path, label: str, breaker: Callable[[Path], int], reason: str
) -> None:
    pack = copy_pack(tmp_path)
    line = breaker(pack / "policy.csv")
    errors = [d for d in lint_pack(pack, RULES).diagnostics if d.severity == "error"]
    assert any(d.file == str(pack / "policy.csv") and d.line == line for d in errors), errors


@pytest.mark.parametrize(("label", "old", "new", "reason"), MODEL_BREAKS, ids=[label for label, *_ in MODEL_BREAKS])
def test_lint_finds_every_model_break_the_loader_refuses(
    tmp_path: Path, label: str, old: str, new: str, reason: str
) -> None:
    pack = copy_pack(tmp_path)
    line = replace(pack / "model.conf", old, new)
    errors = [d for d in lint_pack(pack, RULES).diagnostics if d.severity == "error"]
    assert any(d.file == str(pack / "model.conf") and d.line in (line, None) for d in errors), errors


def test_lint_reports_all_problems_not_just_the_first(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    csv = pack / "policy.csv"
    lines = [
        append(csv, "g4, read, reads"),
        replace(csv, "deny, C8, proxy-access", "deny, C10, proxy-access"),
        replace(csv, "p, 499, proxy", "p, 400, proxy"),
        replace(csv, "p, 101, location, *, *, *, *, allow, C1, -", "p, 101, location, *, *, *, *, allow, -, -"),
    ]
    report = lint_pack(pack, RULES)
    assert {(d.check, d.line) for d in report.diagnostics} >= {
        ("undefined-ptype", lines[0]),
        ("commitment-unknown", lines[1]),
        ("priority-invalid", lines[2]),
        ("commitment-missing", lines[3]),
    }


# ---------------------------------------------------------------- semantic checks on a pack


def test_shadowed_unreachable_and_undeclared_values(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    csv = pack / "policy.csv"
    category = insert_before(csv, "g2, unclassified, sensitive", "g2, shoe_size, sensitive")
    shadowing = "p, 260, access, foreign_staff, sensitive, read, valid, deny, C2, foreign-sensitive-access"
    shadowed = insert_before(csv, "p, 299, access", shadowing)
    unreachable = insert_before(
        csv, "p, 299, access", "p, 261, access, foreign_staff, *, *, on_hold, deny, C1, approval-unknown"
    )
    robot = insert_before(csv, "p, 299, access", "p, 262, access, robot, *, *, *, deny, C1, policy-default-deny")
    report = lint_pack(pack, RULES)
    assert _at(report, "row-shadowed") == [("policy.csv", shadowed, 1)]
    (shadow,) = [d for d in report.diagnostics if d.check == "row-shadowed"]
    assert "decided first by an earlier row (line" in shadow.message
    assert ("policy.csv", unreachable, 1) in _at(report, "row-unreachable")
    assert _at(report, "unknown-value") == [("policy.csv", unreachable, 38)]
    assert _at(report, "unknown-role") == [("policy.csv", robot, 17)]
    assert _at(report, "unknown-category") == [("policy.csv", category, 5)]


def test_storage_domain_must_be_the_store_classes_pack_yaml_derives(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    invariants = pack / "invariants.yaml"
    text = invariants.read_text()
    assert "own_dc_expired]" in text
    invariants.write_text(text.replace("own_dc_expired]", "oci_eu]"))
    report = lint_pack(pack, RULES)
    messages = sorted(d.message for d in report.diagnostics if d.check == "store-class-mismatch")
    assert messages == [
        "store class 'oci_eu' is in the storage domain but pack.yaml never derives it",
        "store class 'own_dc_expired' (pack.yaml) is not in the storage domain: prove never checks it",
    ]


def test_role_cycle_reported_once_at_the_closing_row(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    line = insert_before(pack / "policy.csv", "g, law_enforcement, authority", "g, third_party, vendor")
    report = lint_pack(pack, RULES)
    vendor = line_of(pack / "policy.csv", "g, vendor, third_party")
    assert _at(report, "role-cycle") in ([("policy.csv", line, 16)], [("policy.csv", vendor, 12)])
    assert (
        "vendor -> third_party -> vendor" in report.diagnostics[0].message
        or "third_party -> vendor -> third_party" in report.diagnostics[0].message
    )


def test_unknown_rule_and_rule_of_another_commitment(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    csv = pack / "policy.csv"
    unknown = replace(csv, "deny, C8, proxy-access", "deny, C8, proxy-acces")
    report = lint_pack(pack, RULES)
    column = (csv.read_text().splitlines()[unknown - 1]).index("proxy-acces") + 1
    assert _at(report, "rule-unknown") == [("policy.csv", unknown, column)]
    other = replace(csv, "deny, C8, proxy-acces", "deny, C8, store-outside-oci-us")
    assert "but rule store-outside-oci-us implements C3" in next(
        d.message for d in lint_pack(pack, RULES).diagnostics if d.check == "rule-unknown" and d.line == other
    )


def test_matcher_eval_time_match_and_regex(tmp_path: Path) -> None:
    model = tmp_path / "m.conf"
    model.write_text(
        "[request_definition]\nr = sub, obj, act, time\n\n[policy_definition]\np = sub_rule, obj, act\n\n"
        "[policy_effect]\ne = some(where (p.eft == allow))\n\n[matchers]\n"
        'm = eval(p.sub_rule) && regexMatch(r.obj, p.obj) && regexMatch(r.act, "(read") && '
        'timeMatch("2024-01-01 00:00:00", "_")\n'
    )
    policy = tmp_path / "p.csv"
    policy.write_text("p, r.sub.age > 18, ^/data/[0-9]+$, read\np, r.sub.age < 60, /data, write\n")
    report = lint_paths([model, policy], RULES)
    got = {(d.check, Path(d.file or "").name, d.line, d.column) for d in report.diagnostics}
    assert got == {
        ("matcher-eval", "m.conf", 11, 5),
        ("regex-invalid", "m.conf", 11, 53),
        ("matcher-time-match", "m.conf", 11, 83),
        ("matcher-eval", "p.csv", 1, 4),
        ("matcher-eval", "p.csv", 2, 4),
        ("regex-unanchored", "p.csv", 2, 20),
    }


def test_unknown_effect_and_syntax(tmp_path: Path) -> None:
    model = tmp_path / "m.conf"
    model.write_text(
        "[request_definition]\nr = sub, obj\n[policy_definition\np = sub, obj\n[policy_effect]\n"
        "e = most(where (p.eft == allow))\n[matcher]\nm = r.sub == p.sub\n"
    )
    report = lint_paths([model], RULES)
    assert {(d.check, d.line) for d in report.diagnostics} >= {
        ("model-syntax", 3),
        ("unknown-effect", 6),
        ("model-unknown-section", 7),
    }


def test_regex_problem_anchoring() -> None:
    assert regex_problem("^/a/[0-9]+$") is None
    assert regex_problem("^a\\Z") is None
    assert regex_problem("GET") is not None and regex_problem("GET")[0] == "regex-unanchored"  # type: ignore[index]
    assert regex_problem("^a\\$") is not None
    assert regex_problem("(") is not None and regex_problem("(")[0] == "regex-invalid"  # type: ignore[index]


def test_split_row_columns_and_nesting() -> None:
    assert split_row("p, keyMatch(a, b), c") == ([("p", 1), ("keyMatch(a, b)", 4), ("c", 20)], None)
    assert split_row("p, (a, b")[1] == "unclosed '('"


def test_pair_files_by_name(tmp_path: Path) -> None:
    names = [
        "rbac_model.conf",
        "rbac_with_domains_model.conf",
        "rbac_policy.csv",
        "rbac_with_domains_policy2.csv",
        "priority_model_explicit.conf",
        "priority_policy_explicit.csv",
        "orphan_policy.csv",
    ]
    pairs = {(m.name if m else None): sorted(p.name for p in ps) for m, ps in pair_files(tmp_path / n for n in names)}
    assert pairs == {
        "rbac_model.conf": ["rbac_policy.csv"],
        "rbac_with_domains_model.conf": ["rbac_with_domains_policy2.csv"],
        "priority_model_explicit.conf": ["priority_policy_explicit.csv"],
        None: ["orphan_policy.csv"],
    }


# ---------------------------------------------------------------- casbin examples


@pytest.mark.skipif(not CASBIN_EXAMPLES.is_dir(), reason=f"casbin examples not found at {CASBIN_EXAMPLES}")
def test_every_casbin_example_lints_without_a_crash() -> None:
    directories = sorted({p.parent for p in CASBIN_EXAMPLES.rglob("*") if p.suffix in (".conf", ".csv")})
    files = sorted(p for d in directories for p in d.iterdir() if p.suffix in (".conf", ".csv"))
    assert len(files) > 50
    for model, policies in pair_files(files):
        report = lint_paths([*([model] if model else []), *policies], RULES)
        for diag in report.diagnostics:
            assert diag.check in CHECKS
            assert diag.line is None or diag.line >= 1
    for path in files:  # every file alone, too
        lint_paths([path], RULES)
    error_model = CASBIN_EXAMPLES / "error" / "error_model.conf"
    report = lint_paths([error_model], RULES)
    assert ("model-syntax", 4) in {(d.check, d.line) for d in report.diagnostics}
    abac = lint_paths([CASBIN_EXAMPLES / "abac_rule_model.conf", CASBIN_EXAMPLES / "abac_rule_policy.csv"], RULES)
    assert {(Path(d.file or "").name, d.line) for d in abac.diagnostics if d.check == "matcher-eval"} == {
        ("abac_rule_model.conf", 11),
        ("abac_rule_policy.csv", 1),
        ("abac_rule_policy.csv", 2),
    }


# ---------------------------------------------------------------- CLI


def test_cli_lint_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = copy_pack(tmp_path)
    line = append(pack / "policy.csv", "g4, read, reads")
    assert main(["policy", "lint", str(pack), "--format", "json"]) == EXIT_VIOLATIONS
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["error"] == 1
    assert doc["diagnostics"][0] | {"message": ""} == {
        "check": "undefined-ptype",
        "severity": "error",
        "message": "",
        "file": str(pack / "policy.csv"),
        "line": line,
        "column": 1,
    }
    assert main(["policy", "lint", str(pack)]) == EXIT_VIOLATIONS
    text = capsys.readouterr().out
    assert f"{pack / 'policy.csv'}:{line}:1: error [undefined-ptype]" in text
    assert main(["policy", "lint", str(tmp_path / "missing")]) == EXIT_INPUT
    assert "no such file or directory" in capsys.readouterr().err


def test_cli_lint_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.csv"
    policy.write_text("p, a, b\np, a, b\n")
    assert main(["policy", "lint", str(policy), "--fail-on", "error"]) == EXIT_CLEAN
    assert main(["policy", "lint", str(policy)]) == EXIT_VIOLATIONS
    assert "duplicate of the row on line 1" in capsys.readouterr().out


def test_diagnostic_where() -> None:
    assert Diagnostic("x", "note", "m", "f", 3, 4).where() == "f:3:4"
    assert Diagnostic("x", "note", "m", "f").where() == "f"
    assert Diagnostic("x", "note", "m").where() == "-"


def test_the_fail_on_choices_are_exactly_the_diagnostic_levels() -> None:
    from typing import get_args

    from audit.policy.diagnostics import LEVEL_RANK, Level, LevelChoice

    assert {c.value for c in LevelChoice} == set(get_args(Level)) == set(LEVEL_RANK)


SCOPES = {"replay": replay_scope(), "residency": residency_scope()}


def test_shipped_packs_words_lint_clean() -> None:
    for pack in (POLICIES, REPO / "packs" / "eu-personal-data"):
        assert lint_pack(pack, RULES, scopes=SCOPES).diagnostics == ()


def test_rules_yaml_words_are_checked_as_the_binders_check_them(tmp_path: Path) -> None:
    """Regression: ``policy lint`` passed a ``rules.yaml`` whose templates or kinds replay
    and residency then refused (or, for a template that fills to blank text, stopped
    replay with exit 4). Each is now a ``pack-file`` error at its line, all reported."""
    pack = copy_pack(tmp_path)
    rules = pack / "rules.yaml"
    blank = replace(rules, '"$who $what; location $location is not proof of US presence"', '"$approval"')
    dollar = replace(rules, '"$who $what; store class $detail is outside OCI US"', '"$who pays $5"')
    kind = replace(rules, "kind: proxy-access", "kind: proxy-acces")
    copy = replace(rules, "($target) on $as_of", "($target) on $asof")
    report = lint_pack(pack, RULES, scopes=SCOPES)
    found = {(d.line, d.message.split(": ", 2)[-1][:30]) for d in report.diagnostics if d.check == "pack-file"}
    assert {line for line, _ in found} == {blank, dollar, kind, copy}
    reasons = {d.line: d.message for d in report.diagnostics}
    assert "can fill to blank text (it says $approval)" in reasons[blank]
    assert "a $ must start $name" in reasons[dollar]
    assert "kind 'proxy-acces' is not a replay engine rule (known: " in reasons[kind]
    assert "copy_message: unknown placeholder $asof" in reasons[copy]
    assert all(d.file == str(rules) for d in report.diagnostics if d.check == "pack-file")
    assert lint_pack(pack, RULES).diagnostics == ()  # without the binders' scopes: not checked


def test_policy_lint_cli_checks_the_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = copy_pack(tmp_path)
    line = replace(pack / "rules.yaml", '"$who $what; location $location is not proof of US presence"', '"$related"')
    assert main(["policy", "lint", str(pack)]) == EXIT_VIOLATIONS
    assert f"rules.yaml:{line}" in capsys.readouterr().out
