"""Stable finding ids, cases, and what the report states (period, scope, signer, verdict per commitment).

Expectations are derived from the replay's own output, never from today's counts.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import orjson
import pytest

from audit.errors import InputError
from audit.models import AccessEvent, Finding, finding_id
from audit.pipeline import ReplayOutcome, store_rule_ids
from audit.policy import load_policy
from audit.report.cases import CASE_GAP, build_cases, iter_cases, subject_of
from audit.report.findings import iter_findings
from audit.report.publish import CASES_FILE, FINDINGS_FILE, MARKDOWN_FILE
from tests.conftest import FIXTURES, POLICIES
from tests.report_helpers import fixture_report


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> ReplayOutcome:
    return fixture_report(tmp_path_factory.mktemp("cases") / "report")


def _finding(event: str, when: datetime, actor: str = "a", rule: str = "proxy-access", **over: str) -> Finding:
    return Finding(
        rule_id=rule,
        commitment="C1",
        severity="high",
        title="t",
        message="m",
        remediation="r",
        event_ids=(event,),
        time=when,
        actor_id=actor,
        store=over.get("store", "s1"),
        waiver=over.get("waiver"),
    )


def test_finding_id_is_the_documented_formula() -> None:
    data = orjson.dumps(["proxy-access", "C1", ["evt-1"]])
    assert finding_id("proxy-access", "C1", ("evt-1",)) == "F-" + hashlib.sha256(data).hexdigest()[:20]
    f = _finding("evt-1", datetime(2021, 1, 1, tzinfo=UTC))
    assert f.id == finding_id("proxy-access", "C1", ("evt-1",))


def test_a_stated_id_that_does_not_match_is_refused(tmp_path: Path) -> None:
    f = _finding("evt-1", datetime(2021, 1, 1, tzinfo=UTC))
    doc = f.model_dump(mode="json") | {"id": "F-00000000000000000000"}
    path = tmp_path / "findings.jsonl"
    path.write_bytes(orjson.dumps(doc) + b"\n")
    with pytest.raises(InputError, match="finding id"):
        list(iter_findings(path))


def test_findings_jsonl_carries_unique_stable_ids(outcome: ReplayOutcome, tmp_path: Path) -> None:
    raw = [orjson.loads(line) for line in (outcome.outdir / FINDINGS_FILE).read_bytes().splitlines()]
    ids = [doc["id"] for doc in raw]
    assert ids and len(set(ids)) == len(ids)
    assert ids == [finding_id(d["rule_id"], d["commitment"], tuple(d["event_ids"])) for d in raw]
    again = fixture_report(tmp_path / "again", now=datetime(2022, 7, 1, tzinfo=UTC))
    assert (again.outdir / FINDINGS_FILE).read_bytes() == (outcome.outdir / FINDINGS_FILE).read_bytes()
    assert (again.outdir / CASES_FILE).read_bytes() == (outcome.outdir / CASES_FILE).read_bytes()


def test_cases_partition_the_findings(outcome: ReplayOutcome) -> None:
    findings = {f.id: f for f in outcome.findings}
    store_rules = store_rule_ids(load_policy(POLICIES))
    assert store_rules >= {"store-outside-oci-us", "singapore-backup-after-deadline", "own-dc-after-phase-out"}
    cases = list(iter_cases(outcome.outdir / CASES_FILE))
    assert sum(c.findings for c in cases) == len(findings)
    listed = [fid for c in cases for fid in c.finding_ids]
    assert sorted(listed) == sorted(findings)
    assert outcome.statement.predicate.summary.cases == len(cases)
    for case in cases:
        members = [findings[fid] for fid in case.finding_ids]
        assert {(f.rule_id, f.commitment) for f in members} == {(case.rule_id, case.commitment)}
        assert {subject_of(f, store_rules) for f in members} == {(case.subject_kind, case.subject)}
        times = sorted(f.time for f in members)
        assert (case.first_seen, case.last_seen) == (times[0], times[-1])
        assert all(b - a <= CASE_GAP for a, b in pairwise(times))
        assert case.events == len({f.event_ids for f in members})
        assert set(case.actors) == {f.actor_id for f in members}


def test_a_gap_splits_a_case_and_storage_rules_group_by_store() -> None:
    t0 = datetime(2021, 1, 1, tzinfo=UTC)
    findings = [
        _finding("e1", t0, actor="a"),
        _finding("e2", t0 + timedelta(days=1), actor="a"),
        _finding("e3", t0 + CASE_GAP + timedelta(days=2), actor="a"),
        _finding("e4", t0, actor="a", rule="store-outside-oci-us"),
        _finding("e5", t0 + timedelta(hours=1), actor="b", rule="store-outside-oci-us"),
    ]
    cases = build_cases(findings, frozenset({"store-outside-oci-us"}))
    by_rule = sorted((c.rule_id, c.findings, c.subject) for c in cases)
    assert by_rule == [("proxy-access", 1, "a"), ("proxy-access", 2, "a"), ("store-outside-oci-us", 2, "s1")]
    store_case = next(c for c in cases if c.rule_id == "store-outside-oci-us")
    assert store_case.actors == ("a", "b") and store_case.subject_kind == "store"


def test_report_states_period_scope_signer_and_a_verdict_per_commitment(outcome: ReplayOutcome) -> None:
    pred = outcome.statement.predicate
    lines = (FIXTURES / "events.jsonl").read_bytes().splitlines()
    times = [AccessEvent.model_validate_json(line).time for line in lines]
    assert pred.period is not None
    assert (pred.period.first_event, pred.period.last_event) == (min(times), max(times))
    assert pred.signer is not None and pred.signer.key_id
    findings = outcome.findings
    assert [v.id for v in pred.verdicts] == list(pred.commitments)
    for verdict in pred.verdicts:
        mine = [f for f in findings if f.commitment == verdict.id]
        assert verdict.findings == len(mine)
        assert verdict.events == len({f.event_ids for f in mine})
        assert verdict.verdict == ("broken" if mine else "kept")
        assert sum(verdict.severity.values()) == len(mine)
        assert verdict.sources and all(s.file.startswith("seeds/") for s in verdict.sources)
        for source in verdict.sources:
            line = (FIXTURES.parent / source.file).read_text().splitlines()[source.line - 1]
            assert source.quote in line
    text = (outcome.outdir / MARKDOWN_FILE).read_text()
    assert pred.period.first_event is not None
    assert f"**Audit period:** {pred.period.first_event.isoformat()}" in text
    assert f"(key `{pred.signer.key_id}`)" in text
    assert "## Verdict per commitment" in text and "signature-verified sealed log" in text
    assert "\\(" not in text and "\\#" not in text  # only what Markdown needs is escaped
