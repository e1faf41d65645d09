"""Cases in memory bounded by cases, not findings: ``cases.jsonl`` streamed from spilled finding ids.

The bytes are held to a reference built the way cases were built before (every id in
memory), on the fixture report and on many findings that force spills, merges of runs
and the exact distinct count of a case's ids beyond memory. Memory is held by counts
of items and tracemalloc peaks for N against 4N findings, never by time.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import audit.report.cases as cases_module
import audit.report.runs as runs_module
from audit.canonical import canonical_bytes
from audit.models import Finding
from audit.pipeline import store_rule_ids
from audit.policy import load_policy
from audit.report.cases import CASE_GAP, CaseBook, CaseRecord, case_id, subject_of
from audit.report.findings import iter_findings
from audit.report.publish import FINDINGS_FILE
from audit.report.runs import SortedRuns
from tests.conftest import POLICIES
from tests.report_helpers import fixture_report
from tests.test_cases import _finding

T0 = datetime(2021, 1, 1, tzinfo=UTC)
STORE_RULES = frozenset({"store-outside-oci-us"})
DERIVED = ("cases.jsonl", "cases.csv", "report.md", "report.html", "findings.csv", "findings.ocsf.jsonl")


@dataclass
class _Reference:
    first: Finding
    kind: str
    subject: str
    last_seen: datetime
    ids: list[str] = field(default_factory=list)
    actors: set[str] = field(default_factory=set)
    stores: set[str] = field(default_factory=set)
    waived: int = 0


def reference_lines(findings: Iterable[Finding], store_rules: frozenset[str], gap: timedelta = CASE_GAP) -> bytes:
    """``cases.jsonl`` as cases were built before the book: every finding id of every case in memory."""
    open_cases: dict[tuple[str, str, str, str], _Reference] = {}
    done: list[_Reference] = []
    for f in findings:
        kind, subject = subject_of(f, store_rules)
        key = (f.rule_id, f.commitment, kind, subject)
        current = open_cases.get(key)
        if current is not None and f.time - current.last_seen > gap:
            done.append(current)
            current = None
        if current is None:
            current = open_cases[key] = _Reference(f, kind, subject, f.time)
        current.ids.append(f.id)
        current.actors.add(f.actor_id)
        current.stores |= {f.store} if f.store else set()
        current.waived += f.waiver is not None
        current.last_seen = max(current.last_seen, f.time)
    records = [
        CaseRecord(
            id=case_id(c.first.rule_id, c.first.commitment, c.kind, c.subject, c.first.id),
            rule_id=c.first.rule_id,
            commitment=c.first.commitment,
            severity=c.first.severity,
            title=c.first.title,
            subject_kind=c.kind,
            subject=c.subject,
            first_seen=c.first.time,
            last_seen=c.last_seen,
            findings=len(c.ids),
            events=len(set(c.ids)),
            waived=c.waived,
            actors=tuple(sorted(c.actors)),
            stores=tuple(sorted(c.stores)),
            finding_ids=tuple(c.ids),
        )
        for c in [*done, *open_cases.values()]
    ]
    records.sort(key=lambda c: (c.first_seen, c.rule_id, c.commitment, c.subject_kind, c.subject))
    return b"".join(canonical_bytes(r) + b"\n" for r in records)


def many_findings(n: int) -> Iterator[Finding]:
    """``n`` findings in time order: three actors and a store rule, gaps that split cases, repeated ids."""
    for i in range(n):
        when = T0 + timedelta(minutes=i) + (CASE_GAP * 2 if i > n // 2 else timedelta())
        actor = ("a", "b", "c")[i % 3]
        rule = "store-outside-oci-us" if i % 5 == 0 else "proxy-access"
        event = f"e{i // 2 if i % 7 == 0 else i}"  # some events found twice: a case's events < its findings
        yield _finding(event, when, actor, rule, store=f"s{i % 2}", **({"waiver": "W1"} if i % 11 == 0 else {}))


def book_lines(findings: Iterable[Finding], ids_in_memory: int) -> tuple[bytes, CaseBook]:
    with CaseBook(STORE_RULES, ids_in_memory=ids_in_memory) as book:
        book.build(findings)
        return b"".join(book.lines()), book


def test_reference_repeats_an_id_so_events_are_distinct_ids() -> None:
    ids = [f.id for f in many_findings(400)]
    assert len(set(ids)) < len(ids)  # the distinct count below is exercised, not trivially equal


@pytest.mark.parametrize("ids_in_memory", [1, 3, 64, 10_000])
def test_cases_jsonl_is_byte_identical_whether_ids_spill_or_not(
    ids_in_memory: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs_module, "MERGE_WIDTH", 3)  # many runs: the earliest are merged as they come
    findings = list(many_findings(1_500))
    lines, book = book_lines(findings, ids_in_memory=ids_in_memory)
    assert lines == reference_lines(findings, STORE_RULES)
    assert [c.events for c in book.cases] != [c.findings for c in book.cases]
    assert (book._ids.spilled > 0) == (ids_in_memory < len(findings))


def test_a_case_with_more_distinct_ids_than_memory_counts_them_from_sorted_runs() -> None:
    findings = [_finding(f"e{i % 300}", T0 + timedelta(seconds=i), "a") for i in range(1_000)]
    lines, book = book_lines(findings, ids_in_memory=50)
    assert lines == reference_lines(findings, STORE_RULES)
    assert [(c.findings, c.events) for c in book.cases] == [(1_000, 300)]


def test_findings_out_of_time_order_give_the_same_cases() -> None:
    findings = list(many_findings(600))[::-1]
    assert book_lines(findings, ids_in_memory=7)[0] == reference_lines(findings, STORE_RULES)


def test_fixture_cases_jsonl_is_the_reference(tmp_path: Path) -> None:
    outcome = fixture_report(tmp_path / "report")
    findings = list(iter_findings(outcome.outdir / FINDINGS_FILE))
    expected = reference_lines(findings, store_rule_ids(load_policy(POLICIES)))
    assert (outcome.outdir / "cases.jsonl").read_bytes() == expected
    with CaseBook(store_rule_ids(load_policy(POLICIES)), ids_in_memory=2) as book:
        book.build(findings)
        assert b"".join(book.lines()) == expected


def test_every_derived_file_is_the_same_when_the_report_spills_case_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = fixture_report(tmp_path / "whole").outdir
    monkeypatch.setattr(cases_module, "CASE_IDS_IN_MEMORY", 2)
    monkeypatch.setattr(runs_module, "MERGE_WIDTH", 2)
    spilled = fixture_report(tmp_path / "spilled").outdir
    for name in DERIVED:
        assert (spilled / name).read_bytes() == (whole / name).read_bytes(), name
    assert (spilled / "report.intoto.json").read_bytes() == (whole / "report.intoto.json").read_bytes()
    assert sorted(p.name for p in spilled.iterdir()) == sorted(p.name for p in whole.iterdir())  # no scratch left


def test_the_book_holds_at_most_ids_in_memory_finding_ids() -> None:
    held: list[int] = []

    def watched(findings: Iterable[Finding]) -> Iterator[Finding]:
        for f in findings:
            held.append(book.ids_in_memory)
            yield f

    with CaseBook(STORE_RULES, ids_in_memory=100) as book:
        book.build(watched(many_findings(3_000)))
        assert max(held) <= 100 and book._ids.spilled >= 29
        assert len(book._ids._runs) <= runs_module.MERGE_WIDTH


def _peak_bytes(n: int) -> int:
    """tracemalloc peak of building the cases of ``n`` findings and writing cases.jsonl (hashed, not kept)."""
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        with CaseBook(STORE_RULES, ids_in_memory=500) as book:
            book.build(many_findings(n))
            for chunk in book.lines():
                digest.update(chunk)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs_module, "MERGE_WIDTH", 4)  # as many runs open (and read buffers) at N as at 4N
    monkeypatch.setattr(cases_module, "_IDS_PER_CHUNK", 64)  # as long chunks of cases.jsonl at N as at 4N
    _peak_bytes(200)  # warm caches (pydantic, orjson) outside the measurement
    small, large = _peak_bytes(4_000), _peak_bytes(16_000)
    # Before the book, 4x the findings held 4x the ids (about 12 KB per 100 findings here).
    assert large < small * 1.25 + 64 * 1024, (small, large)


def test_sorted_runs_merge_stably_across_spills(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs_module, "MERGE_WIDTH", 2)
    items = [(i % 4, i) for i in range(40)]
    with SortedRuns[tuple[int, int]](
        lambda item: item[0],
        lambda item: b"%d %d" % item,
        lambda line: (int(line.split()[0]), int(line.split()[1])),
        run_size=3,
    ) as runs:
        runs.extend(items)
        assert list(runs.merged()) == sorted(items, key=lambda item: item[0])  # equal keys in the order added
        assert list(runs.merged()) == sorted(items, key=lambda item: item[0])  # and again
        assert runs.in_memory == 40 % 3 and len(runs._runs) <= 3
    with pytest.raises(ValueError, match="run_size"):
        SortedRuns[int](int, str.encode, int, run_size=0)  # type: ignore[arg-type]
