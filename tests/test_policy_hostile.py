"""Policy CI on untrusted pull requests: hostile pack files end in exit 2 or a diagnostic, never leak or hang.

One regression test per attack of issue 14 item 5: symlinks out of the pack,
secrets or terminal escapes quoted in diagnostics, matchers that compute forever,
catastrophic regular expressions, huge domains and unbounded evaluation, and bad
matchers that once ended as "internal error".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_INPUT, PolicyError
from audit.policy import load_pack
from audit.policy.budget import Budget, BudgetExceeded
from audit.policy.diagnostics import MAX_QUOTE, quote
from audit.policy.files import symlinks_allowed
from audit.policy.lint import lint_paths, regex_problem
from audit.policy.matcher import SAFE_FUNCTIONS
from audit.policy.prove import prove
from audit.replay.rules import rule_commitments
from tests.conftest import POLICIES

SECRET = "hunter2-ci-secret-do-not-leak"
MATCHER = re.compile(r"^m = .*$", re.MULTILINE)


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(POLICIES, target)
    return target


def _matcher(pack: Path, extra: str) -> None:
    model = pack / "model.conf"
    text = model.read_text()
    line = MATCHER.search(text)
    assert line is not None
    model.write_text(text.replace(line.group(), f"{line.group()} && {extra}"))


def _everything(capsys: pytest.CaptureFixture[str], *files: Path) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err + "".join(f.read_text() for f in files if f.exists())


def test_symlink_to_proc_environ_is_refused_and_never_quoted(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESIDENCY_AUDIT_KEY_PASSPHRASE", SECRET)
    (pack / "policy.csv").unlink()
    (pack / "policy.csv").symlink_to("/proc/self/environ")
    sarif = tmp_path / "lint.sarif"
    for extra in ([], ["--allow-symlinks"]):
        code = main(["policy", "lint", str(pack), "--format", "sarif", "--output", str(sarif), *extra])
        assert code == EXIT_INPUT
        assert not sarif.exists()
        err = _everything(capsys, sarif)
        assert SECRET not in err and len(err.strip().splitlines()) == 1 and "policy.csv" in err
    for command in ("test", "prove"):
        assert main(["policy", command, str(pack)]) == EXIT_INPUT
        err = capsys.readouterr().err
        assert SECRET not in err and len(err.strip().splitlines()) == 1 and "policy.csv" in err
    with pytest.raises(PolicyError, match="symlink"):
        load_pack(pack)
    with symlinks_allowed(), pytest.raises(PolicyError, match="outside the pack directory"):
        load_pack(pack)


def test_symlink_inside_the_pack_needs_allow_symlinks(pack: Path) -> None:
    (pack / "real.csv").write_bytes((pack / "policy.csv").read_bytes())
    (pack / "policy.csv").unlink()
    (pack / "policy.csv").symlink_to("real.csv")
    with pytest.raises(PolicyError, match="symlink"):
        load_pack(pack)
    with symlinks_allowed():
        assert load_pack(pack).rows


def test_symlinked_invariants_and_case_files_are_refused(pack: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.yaml"
    outside.write_text(f"{SECRET}: 1\n")
    (pack / "invariants.yaml").unlink()
    (pack / "invariants.yaml").symlink_to(outside)
    with pytest.raises(PolicyError) as info:
        prove(pack)
    assert SECRET not in str(info.value)
    shutil.rmtree(pack / "tests")
    (pack / "tests").symlink_to(tmp_path)
    assert main(["policy", "test", str(pack), "--allow-symlinks"]) == EXIT_INPUT


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_revision_with_symlink_out_of_the_pack_is_refused(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = pack.parent
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    (pack / "policy.csv").rename(repo / "policy.csv")
    (pack / "policy.csv").symlink_to("../policy.csv")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)
    assert main(["policy", "diff", "HEAD:pack", str(POLICIES), "--repo", str(repo)]) == EXIT_INPUT
    assert "policy.csv" in capsys.readouterr().err


def test_control_characters_and_long_values_are_escaped_and_cut(tmp_path: Path) -> None:
    policy = tmp_path / "p.csv"
    policy.write_text("p\x1b]8;;evil\x07, " + "x" * 5000 + "\u202e, a\n")
    report = lint_paths([policy], rule_commitments())
    for diag in report.diagnostics:
        assert "\x1b" not in diag.message and "\x07" not in diag.message and "\u202e" not in diag.message
        assert "\n" not in diag.message and len(diag.message) <= 600
    assert quote("a\nsecond line") == "'a'\u2026"
    assert len(quote("y" * 10_000)) <= MAX_QUOTE + 3


def test_power_operator_in_matcher_is_refused_before_evaluation(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _matcher(pack, "9**3999999 > 1")
    start = time.monotonic()
    with pytest.raises(PolicyError, match=r"\*\*"):
        load_pack(pack)
    report = lint_paths([pack], rule_commitments())
    found = [d for d in report.diagnostics if d.check == "matcher-disallowed"]
    assert found and found[0].file == str(pack / "model.conf") and found[0].line and found[0].column
    assert main(["policy", "prove", str(pack)]) == EXIT_INPUT
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(
    "extra",
    [
        "r.sub.__class__ == 1",
        "[x for x in r.sub] == 1",
        "(lambda: 1)() == 1",
        "r.sub[0] == 'a'",
        "f'{r.sub}' == 'a'",
        "open('x') == 1",
        "eval(p.rule)",
        "1000000000000 > 1",
        "r.sub == '" + "a" * 300 + "'",
        "keyMatch(r.sub) == 1",
    ],
)
def test_matcher_outside_the_allow_list_is_a_diagnostic_never_evaluated(pack: Path, extra: str) -> None:
    _matcher(pack, extra)
    with pytest.raises(PolicyError):
        load_pack(pack)
    checks = {d.check for d in lint_paths([pack], rule_commitments()).diagnostics}
    assert "matcher-disallowed" in checks


def test_catastrophic_regex_runs_on_a_linear_time_engine() -> None:
    regex_match = SAFE_FUNCTIONS["regexMatch"]
    start = time.monotonic()
    assert not regex_match("a" * 4000 + "!", "^(a+)+$")
    assert not SAFE_FUNCTIONS["keyMatch2"]("/" + "a" * 3000 + "!", "/" + ".*" * 100 + "b")
    assert time.monotonic() - start < 2
    problem = regex_problem("^(a)\\1$")
    assert problem is not None and problem[0] == "regex-invalid"


def test_catastrophic_regex_in_a_pack_matcher_decides_quickly(pack: Path) -> None:
    _matcher(pack, '!regexMatch(r.act, "^(a|a)*$")')
    loaded = load_pack(pack)
    start = time.monotonic()
    loaded.decide_uncached(("access", "us_staff", "contact", "a" * 3000 + "!", "valid"))
    assert time.monotonic() - start < 2


def test_bad_regex_in_a_row_is_a_diagnostic_with_file_and_line(pack: Path) -> None:
    _matcher(pack, "regexMatch(r.act, p.act)")  # p.act holds '*', which no regex engine accepts
    loaded = load_pack(pack)  # the probe request matches no facet: regexMatch is never reached
    with pytest.raises(PolicyError) as info:
        loaded.decide_uncached(("access", "us_staff", "contact", "read", "valid"))
    assert info.value.path == str(pack / "model.conf") and info.value.line
    report = lint_paths([pack], rule_commitments())
    assert any(d.check == "regex-invalid" and d.file and d.line for d in report.diagnostics)
    assert main(["policy", "prove", str(pack)]) == EXIT_INPUT


def test_huge_invariant_domain_is_refused_before_enumeration(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    many = ", ".join(f"v{i}" for i in range(300))
    text = (pack / "invariants.yaml").read_text()
    actions = r"actions: \{kind: action, values: \[[^\]]*\]\}"
    text = re.sub(actions, f"actions: {{kind: action, values: [{many}]}}", text)
    text = re.sub(r"(  categories:\n    kind: category\n    values: )\[[^\]]*\]", rf"\g<1>[{many}]", text)
    (pack / "invariants.yaml").write_text(text)
    start = time.monotonic()
    assert main(["policy", "prove", str(pack)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "invariants.yaml:" in err and "limit" in err
    assert main(["policy", "lint", str(pack)]) == EXIT_INPUT
    assert time.monotonic() - start < 20


def test_evaluation_over_its_time_budget_exits_2(pack: Path) -> None:
    with pytest.raises(BudgetExceeded, match="exceeded its budget"):
        prove(pack, budget=Budget(0.0))
    with pytest.raises(BudgetExceeded):
        lint_paths([pack], rule_commitments(), budget=Budget(0.0))
