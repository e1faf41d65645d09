"""Signed report files: every file is authenticated, output is published whole, Markdown is inert."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.errors import InputError
from audit.models import Finding
from audit.pipeline import replay
from audit.report.findings import iter_findings
from audit.report.markdown import render_markdown
from audit.report.publish import FINDINGS_FILE, MARKDOWN_FILE, REPORT_FILE, report_staging
from audit.report.verify import verify_report
from audit.signing.keys import Keyring, SigningKey
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, POLICIES

NOW = datetime(2022, 6, 30, tzinfo=UTC)


@pytest.fixture
def report_dir(tmp_path: Path, keyring: Keyring, auditor_key: SigningKey) -> Path:
    out = tmp_path / "report"
    replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=NOW)
    return out


def _failed(out: Path, keyring: Keyring) -> list[str]:
    result = verify_report(out / REPORT_FILE, keyring)
    return [c.name for c in result.checks if not c.ok]


def test_untouched_report_verifies(report_dir: Path, keyring: Keyring) -> None:
    assert _failed(report_dir, keyring) == []


def test_replaced_markdown_summary_is_detected(report_dir: Path, keyring: Keyring) -> None:
    (report_dir / MARKDOWN_FILE).write_text("# Residency audit report\n\nNo violations found.\n")
    assert _failed(report_dir, keyring) == [MARKDOWN_FILE]


@pytest.mark.parametrize("name", [FINDINGS_FILE, MARKDOWN_FILE])
def test_deleted_report_file_is_detected(report_dir: Path, keyring: Keyring, name: str) -> None:
    (report_dir / name).unlink()
    assert _failed(report_dir, keyring) == [name]


def test_rerun_replaces_a_previous_report(report_dir: Path, keyring: Keyring, auditor_key: SigningKey) -> None:
    before = (report_dir / REPORT_FILE).read_bytes()
    outcome = replay(
        ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, report_dir, now=datetime(2022, 7, 1, tzinfo=UTC)
    )
    assert (report_dir / REPORT_FILE).read_bytes() != before
    own = {s.name for s in outcome.statement.subject if "/" not in s.name and ":" not in s.name}
    assert {FINDINGS_FILE, MARKDOWN_FILE} <= own
    assert sorted(p.name for p in report_dir.iterdir()) == sorted([*own, REPORT_FILE])
    assert _failed(report_dir, keyring) == []


def test_output_directory_with_other_files_is_refused(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="refusing to replace"):
        replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=NOW)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_output_path_that_is_a_file_is_an_input_error(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, out, now=NOW)


def test_markdown_escapes_log_content(report_dir: Path, keyring: Keyring) -> None:
    result = verify_report(report_dir / REPORT_FILE, keyring)
    pred = result.statement.predicate
    evil = next(iter_findings(report_dir / FINDINGS_FILE)).model_copy(
        update={"actor_id": "cn-q`\n\n## Findings\n\nNo violations found.\n\n<!--", "event_ids": ("e[1](x)",)}
    )
    assert isinstance(evil, Finding)
    text = render_markdown(pred, [evil])
    assert "\n## Findings\n\nNo violations found." not in text
    assert "<!--" not in text and "\\<\\!--" in text
    assert "\\[1\\](x)" in text


def test_markdown_drops_control_and_bidi_characters(report_dir: Path, keyring: Keyring) -> None:
    pred = verify_report(report_dir / REPORT_FILE, keyring).statement.predicate
    finding = next(iter_findings(report_dir / FINDINGS_FILE))
    evil = finding.model_copy(update={"actor_id": "cn\x1b[31m-eng\u202e-01_x"})
    text = render_markdown(pred, [evil])
    assert "\x1b" not in text and "\u202e" not in text
    assert "cn [31m-eng -01\\_x" in text.replace("\\[", "[")
    plain = render_markdown(pred, [finding.model_copy(update={"actor_id": "us-eng_01"})])
    assert "us-eng\\_01" in plain


def test_report_of_a_policy_outside_git_verifies(tmp_path: Path, keyring: Keyring, auditor_key: SigningKey) -> None:
    import shutil

    policy = tmp_path / "not-a-repo" / "policies"
    shutil.copytree(POLICIES, policy)
    out = tmp_path / "report"
    outcome = replay(ACCESS_LOG, keyring, APPROVALS_LOG, policy, auditor_key, out, now=NOW)
    assert outcome.statement.predicate.policy.git_revision is None
    result = verify_report(out / REPORT_FILE, keyring, policy=policy)
    assert result.ok and result.statement.predicate.policy.git_revision is None


def test_file_added_to_the_output_during_a_run_is_never_deleted(report_dir: Path) -> None:
    before = sorted(p.name for p in report_dir.iterdir())
    with pytest.raises(InputError, match="refusing to replace"), report_staging(report_dir) as staging:
        (staging / REPORT_FILE).write_text("new")
        (report_dir / "notes.txt").write_text("written while the replay ran")
    assert sorted(p.name for p in report_dir.iterdir()) == sorted([*before, "notes.txt"])
    assert not [p for p in report_dir.parent.iterdir() if p.name.startswith(f".{report_dir.name}.")]
