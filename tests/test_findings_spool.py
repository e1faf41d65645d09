"""Findings stream to disk in sorted runs and merge into one sorted, hashed findings.jsonl."""

from __future__ import annotations

import hashlib
import heapq
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from audit.models import Finding
from audit.pipeline import replay
from audit.report import findings as findings_module
from audit.report.findings import FindingsSpool, iter_findings
from audit.report.markdown import render_markdown
from audit.report.publish import FINDINGS_FILE, REPORT_FILE
from audit.report.statement import Predicate
from audit.report.verify import verify_report
from audit.signing.keys import Keyring, SigningKey
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, POLICIES

T0 = datetime(2021, 9, 1, tzinfo=UTC)


def _finding(i: int) -> Finding:
    # Same instant written in different offsets, shared event ids and rules: the sort key matters.
    when = (T0 + timedelta(minutes=i % 7)).astimezone(timezone(timedelta(hours=i % 3)))
    return Finding(
        rule_id=f"rule-{i % 4}",
        commitment="C1",
        severity="high",
        title="t",
        message=f"m{i}",
        remediation="r",
        event_ids=(f"e{i % 5}", f"x{i}"),
        time=when,
        actor_id=f"a{i}",
    )


def _written(tmp: Path, findings: list[Finding], run_size: int) -> tuple[bytes, str, int]:
    tmp.mkdir()
    with FindingsSpool(tmp, run_size=run_size) as spool:
        for finding in findings:
            spool.add(finding)
        for _ in spool.writing(tmp / "findings.jsonl"):
            pass
        written = spool.written
    assert written is not None
    assert [p.name for p in tmp.iterdir()] == ["findings.jsonl"], "sorted runs left behind"
    return (tmp / "findings.jsonl").read_bytes(), written.sha256, written.count


def test_spilled_runs_merge_to_the_same_bytes_as_one_in_memory_sort(tmp_path: Path) -> None:
    findings = [_finding(i) for i in range(101)]
    random.Random(7).shuffle(findings)
    one, digest_one, count = _written(tmp_path / "one", findings, run_size=1_000)
    many, digest_many, _ = _written(tmp_path / "many", findings, run_size=3)
    assert many == one and count == 101
    assert digest_one == digest_many == hashlib.sha256(one).hexdigest()
    back = list(iter_findings(tmp_path / "one" / "findings.jsonl"))
    keys = [(f.time, f.event_ids, f.rule_id) for f in back]
    assert keys == sorted((f.time, f.event_ids, f.rule_id) for f in findings)


def test_runs_and_the_file_longer_than_a_write_batch_keep_every_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs and findings.jsonl are written 256 lines at a time: runs of 700 (two whole batches and a part),
    merged in passes of three, give the bytes of one in-memory sort."""
    findings = [_finding(i) for i in range(2_100)]
    random.Random(11).shuffle(findings)
    one, digest_one, _ = _written(tmp_path / "one", findings, run_size=10_000)
    monkeypatch.setattr(findings_module, "MERGE_WIDTH", 2)
    many, digest_many, count = _written(tmp_path / "many", findings, run_size=700)
    assert many == one and count == 2_100 and one.count(b"\n") == 2_100
    assert digest_one == digest_many == hashlib.sha256(one).hexdigest()


def _sorted_by_key(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.time, f.event_ids, f.rule_id))


def test_runs_already_in_order_are_copied_one_after_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log in time order spills runs that follow one another: they are copied, not merged, to the same bytes."""
    ordered = _sorted_by_key([_finding(i) for i in range(1_000)])  # runs of 7 meet at equal keys too
    one, digest_one, _ = _written(tmp_path / "one", ordered, run_size=10_000)

    def no_merge(*streams: Any, **kw: Any) -> Any:
        raise AssertionError("runs in order were merged")

    monkeypatch.setattr(heapq, "merge", no_merge)
    many, digest_many, count = _written(tmp_path / "many", ordered, run_size=7)
    assert many == one and count == 1_000 and digest_many == digest_one


@pytest.mark.parametrize("disorder", ["first run", "last run", "buffer"])
def test_runs_out_of_order_anywhere_are_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disorder: str) -> None:
    """One run (or the in-memory tail) out of place is enough to take the merge: same bytes as one sort."""
    ordered = _sorted_by_key([_finding(i) for i in range(60)])
    findings = {  # runs of 10
        "first run": ordered[10:20] + ordered[:10] + ordered[20:],
        "last run": ordered[:40] + ordered[50:] + ordered[40:50],
        "buffer": ordered[5:55] + ordered[:5],  # five runs in order, then a tail of the earliest five
    }[disorder]
    one, _, _ = _written(tmp_path / "one", findings, run_size=1_000)
    merges = []
    merge = heapq.merge

    def counted(*streams: Any, **kw: Any) -> Any:
        merges.append(len(streams))
        return merge(*streams, **kw)

    monkeypatch.setattr(heapq, "merge", counted)
    many, _, count = _written(tmp_path / "many", findings, run_size=10)
    assert merges and many == one and count == len(findings)
    back = [(f.time, f.event_ids, f.rule_id) for f in iter_findings(tmp_path / "many" / "findings.jsonl")]
    assert back == [(f.time, f.event_ids, f.rule_id) for f in _sorted_by_key(findings)]


def test_merge_is_stable_and_bounded_in_open_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Equal keys (same time, events, rule) keep arrival order, across runs, the
    # in-memory tail, and the extra merge passes a small merge width forces.
    twins = [_finding(0).model_copy(update={"message": f"arrival {i}"}) for i in range(23)]
    monkeypatch.setattr(findings_module, "MERGE_WIDTH", 3)
    data, _, count = _written(tmp_path / "twins", twins, run_size=2)
    back = [f.message for f in iter_findings(tmp_path / "twins" / "findings.jsonl")]
    assert count == 23 and back == [f"arrival {i}" for i in range(23)]
    assert data.count(b"\n") == 23


def test_sort_key_pads_early_years(tmp_path: Path) -> None:
    early = _finding(1).model_copy(update={"time": datetime(999, 1, 1, tzinfo=UTC)})
    late = _finding(1).model_copy(update={"time": datetime(2021, 1, 1, tzinfo=UTC)})
    _written(tmp_path / "years", [late, early], run_size=1)
    assert [f.time.year for f in iter_findings(tmp_path / "years" / "findings.jsonl")] == [999, 2021]


def test_empty_spool_writes_an_empty_file(tmp_path: Path) -> None:
    data, digest, count = _written(tmp_path / "none", [], run_size=2)
    assert (data, count) == (b"", 0) and digest == hashlib.sha256(b"").hexdigest()


def test_markdown_lists_at_most_the_limit_and_counts_the_rest(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    outcome = replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, tmp_path / "r")
    pred: Predicate = verify_report(tmp_path / "r" / REPORT_FILE, keyring).statement.predicate
    findings = iter_findings(outcome.outdir / FINDINGS_FILE)
    text = render_markdown(pred, findings, limit=5)
    assert text.count("\n### ") == 5
    assert f"... and {pred.summary.findings - 5} more finding(s), all listed in findings.jsonl." in text
    assert "more finding(s)" not in render_markdown(pred, iter_findings(outcome.outdir / FINDINGS_FILE))
