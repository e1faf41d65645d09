"""``policy diff``: requests decided differently between two versions; new access fails unless allowed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_VIOLATIONS
from audit.policy import load_pack
from audit.policy.diff import diff_packs
from audit.policy.domain import Condition, load_invariants
from tests.conftest import POLICIES
from tests.policy_breaks import copy_pack, grant_foreign_precise_location, replace

NEW_ACCESS = {
    ("access", "foreign_staff", "precise_location", "read", "valid"),
    ("access", "unlocated_staff", "precise_location", "read", "valid"),
}


def test_same_pack_has_no_changes() -> None:
    report = diff_packs(POLICIES, POLICIES, old_label="a", new_label="b")
    assert report.compared == 0  # no changed row: nothing can decide differently
    assert report.changes == ()


def test_candidates_agree_with_full_enumeration(tmp_path: Path) -> None:
    """The changed-row shortcut finds exactly what deciding the whole domain finds."""
    new = copy_pack(tmp_path, "new")
    grant_foreign_precise_location(new)
    replace(
        new / "policy.csv",
        "p, 321, storage, *, singapore_backup, *, *, allow, C4, -",
        "p, 321, storage, *, singapore_backup, read, *, allow, C4, -",
    )
    fast = diff_packs(POLICIES, new, old_label="old", new_label="new")
    old_pack, new_pack = load_pack(POLICIES), load_pack(new)
    domain = load_invariants(new / "invariants.yaml", new_pack.request_fields).domain
    facets = {"facet": Condition(in_=("access", "storage"))}  # the facets the changed rows are in
    slow = {
        r
        for r in domain.requests(facets)
        if old_pack.decide(r) != new_pack.decide(r)
        and (old_pack.decide(r).allowed, old_pack.decide(r).rule_id)
        != (new_pack.decide(r).allowed, new_pack.decide(r).rule_id)
    }
    assert {c.request for c in fast.changes} == slow
    assert fast.compared < 1000 and len(slow) == 2 + 5 * 8  # 8 non-delete actions, "unknown" included


def test_foreign_grant_is_new_access_at_its_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = copy_pack(tmp_path, "new")
    line = grant_foreign_precise_location(new)
    replace(
        new / "policy.csv",
        "p, 400, proxy, us_staff, foreign_staff, data_access, *, deny, C8, proxy-access",
        "p, 400, proxy, us_staff, foreign_staff, transfers, *, deny, C8, proxy-access",
    )
    report = diff_packs(POLICIES, new, old_label="old", new_label="new")
    assert {c.request for c in report.new_access} == NEW_ACCESS | {
        ("proxy", "us_staff", actor, act, "-")
        for actor in ("foreign_staff", "unlocated_staff")
        for act in ("read", "query", "download", "unknown")
    }  # "unknown" is data access but not a transfer
    assert all(c.old.rule_id == "foreign-sensitive-access" for c in report.new_access if c.request[0] == "access")
    kinds = {(d.check, d.line) for d in report.diagnostics()}
    assert ("new-access", line) in kinds
    assert main(["policy", "diff", str(POLICIES), str(new)]) == EXIT_VIOLATIONS
    text = capsys.readouterr().out
    assert (
        f"{new / 'policy.csv'}:{line}: error [new-access] facet=access sub=foreign_staff obj=precise_location "
        "act=read ctx=valid: was denied by policy.csv:" in text
    )
    assert "10 newly allowed" in text
    assert main(["policy", "diff", str(POLICIES), str(new), "--allow-new-access"]) == EXIT_CLEAN
    assert "warning [new-access]" in capsys.readouterr().out
    assert main(["policy", "diff", str(new), str(POLICIES), "--format", "json"]) == EXIT_CLEAN
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"] == {"access-removed": 10}
    assert {tuple(c["request"].values()) for c in doc["changes"]} >= NEW_ACCESS


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_revisions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    pack = copy_pack(repo, "policies")
    _git(repo, "add", "policies")
    _git(repo, "commit", "-q", "-m", "pack")
    line = grant_foreign_precise_location(pack)
    _git(repo, "commit", "-q", "-am", "grant")
    argv = ["policy", "diff", "HEAD~1:policies", "HEAD:policies", "--repo", str(repo), "--format", "sarif"]
    assert main(argv) == EXIT_VIOLATIONS
    sarif = json.loads(capsys.readouterr().out)
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == "new-access" and result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "HEAD:policies/policy.csv"
    assert location["region"]["startLine"] == line
    assert main(["policy", "diff", "HEAD~1:policies", str(pack), "--repo", str(repo)]) == EXIT_VIOLATIONS
    capsys.readouterr()
    assert main(["policy", "diff", "HEAD~5:policies", "HEAD:policies", "--repo", str(repo)]) == EXIT_INPUT
    assert "git archive HEAD~5 policies" in capsys.readouterr().err
    assert main(["policy", "diff", "--repo", str(repo), "--", "-x:policies", str(pack)]) == EXIT_INPUT
    assert "is not REV:PATH" in capsys.readouterr().err
    assert main(["policy", "diff", str(tmp_path / "nope"), str(pack)]) == EXIT_INPUT
