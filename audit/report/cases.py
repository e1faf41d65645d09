"""Cases: findings grouped into the incidents an auditor reads, written as ``cases.jsonl``.

A case is the findings of one rule breaking one commitment for one subject - the
actor, or the store for storage rules (``store_rules``, the caller's: which rules are
about where data sits is the policy pack's to say) - contiguous in time: a
finding more than :data:`CASE_GAP` after the case's last one starts a new case. A case
carries its first and last seen time, finding and event counts, the actors and stores
involved, severity, and the ids of its findings. Every finding is in exactly one case.
:class:`CaseBook` builds them in memory that grows with cases, not findings: the
finding ids wait in sorted runs (scratch files beyond :data:`CASE_IDS_IN_MEMORY`)
until :meth:`CaseBook.lines` streams ``cases.jsonl``. :class:`Case` is what the
report states of a case; :class:`CaseRecord`, a line of ``cases.jsonl``, adds the ids.

What it does not do: judge events (replay does) or sign anything; ``cases.jsonl`` is
a subject of the signed report like ``findings.jsonl``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict

from audit.canonical import canonical_bytes
from audit.models import CommitmentId, FindingView, Severity, UtcDatetime
from audit.records import iter_jsonl
from audit.report.runs import SortedRuns

CASE_GAP = timedelta(days=7)
"""Findings of one rule, commitment and subject more than this apart belong to different cases."""
CASE_IDS_IN_MEMORY = 50_000
"""Finding ids a :class:`CaseBook` holds in memory before it spills a sorted run (about 7 MB)."""
SEVERITY_ORDER: tuple[Severity, ...] = ("critical", "high", "medium", "low")

SubjectKind = Literal["actor", "store"]


class Case(BaseModel):
    """What a report states of one case: its counts, times, actors and stores (its finding ids: :class:`CaseRecord`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    rule_id: str
    commitment: CommitmentId
    severity: Severity
    title: str
    subject_kind: SubjectKind
    subject: str
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    findings: int
    events: int
    waived: int = 0
    actors: tuple[str, ...]
    stores: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies a case across reports: rule, commitment, subject kind and subject."""
        return self.rule_id, self.commitment, self.subject_kind, self.subject


class CaseRecord(Case):
    """One case: contiguous findings of a rule and commitment about one actor or store."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Case")

    finding_ids: tuple[str, ...]


def subject_of(finding: FindingView, store_rules: frozenset[str]) -> tuple[SubjectKind, str]:
    """Whom a finding's case is about: its store for ``store_rules`` (rules about where data sits), else its actor."""
    if finding.rule_id in store_rules and finding.store:
        return "store", finding.store
    return "actor", finding.actor_id


def case_id(rule_id: str, commitment: str, kind: str, subject: str, first_finding: str) -> str:
    """``K-`` and 16 hex digits of SHA-256 over ``[rule, commitment, kind, subject, first finding id]``."""
    data = orjson.dumps([rule_id, commitment, kind, subject, first_finding])
    return "K-" + hashlib.sha256(data).hexdigest()[:16]


_CaseOrder = tuple[datetime, str, str, str, str]
_Id = tuple[int, str]
"""A finding id as the book keeps it: its case's number (in order opened) and the id."""


@dataclass
class _Open:
    """A case being built: counts and sets; its finding ids are in the book's runs."""

    number: int
    first: FindingView
    kind: SubjectKind
    subject: str
    last_seen: datetime
    findings: int = 0
    actors: set[str] = field(default_factory=set)
    stores: set[str] = field(default_factory=set)
    waived: int = 0

    @property
    def order(self) -> _CaseOrder:
        """Where the case sits in ``cases.jsonl``: first seen, rule, commitment, subject (final once opened)."""
        f = self.first
        return f.time, f.rule_id, f.commitment, self.kind, self.subject

    def add(self, finding: FindingView) -> None:
        self.findings += 1
        self.actors.add(finding.actor_id)
        if finding.store:
            self.stores.add(finding.store)
        self.waived += finding.waiver is not None
        self.last_seen = max(self.last_seen, finding.time)

    def close(self, events: int) -> Case:
        f = self.first
        return Case(
            id=case_id(f.rule_id, f.commitment, self.kind, self.subject, f.id),
            rule_id=f.rule_id,
            commitment=f.commitment,
            severity=f.severity,
            title=f.title,
            subject_kind=self.kind,
            subject=self.subject,
            first_seen=f.time,
            last_seen=self.last_seen,
            findings=self.findings,
            events=events,
            waived=self.waived,
            actors=tuple(sorted(self.actors)),
            stores=tuple(sorted(self.stores)),
        )


def _encode_id(item: _Id) -> bytes:
    return b"%d %s" % (item[0], item[1].encode())


def _decode_id(line: bytes) -> _Id:
    number, _, fid = line.partition(b" ")
    return int(number), fid.decode()


class CaseBook:
    """Cases of a pass over findings, in memory bounded by the number of cases, not of findings.

    Each case keeps counts, times, actors and stores; the finding ids go to sorted
    runs (:class:`~audit.report.runs.SortedRuns`: at most ``ids_in_memory`` held,
    default :data:`CASE_IDS_IN_MEMORY`, the rest in unnamed files under ``scratch``),
    ordered as ``cases.jsonl`` lists them.
    :meth:`build` returns the cases (their ``events``, distinct finding ids, counted
    from the runs); :meth:`lines` streams ``cases.jsonl`` with the ids read back. Use
    as a context manager: the runs are gone on exit.
    """

    def __init__(
        self,
        store_rules: frozenset[str],
        gap: timedelta = CASE_GAP,
        *,
        scratch: Path | None = None,
        ids_in_memory: int | None = None,
    ) -> None:
        self._store_rules, self._gap = store_rules, gap
        self._scratch = scratch
        self._ids_in_memory = ids_in_memory = ids_in_memory or CASE_IDS_IN_MEMORY
        self._cases: list[_Open] = []  # by number
        self._open: dict[tuple[str, str, str, str], _Open] = {}
        orders: list[_CaseOrder] = []
        self._orders = orders
        self._ids: SortedRuns[_Id] = SortedRuns(
            lambda item: orders[item[0]], _encode_id, _decode_id, run_size=ids_in_memory, scratch=scratch
        )
        self.cases: list[Case] = []
        """The cases, sorted by first seen, rule and subject (set by :meth:`build`)."""
        self._numbers: list[int] = []

    def __enter__(self) -> CaseBook:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._ids.close()

    @property
    def ids_in_memory(self) -> int:
        """Finding ids held in memory now."""
        return self._ids.in_memory

    def build(self, findings: Iterable[FindingView]) -> list[Case]:
        """Cases of ``findings`` (in ``findings.jsonl`` order: by time), sorted by first seen, rule and subject.

        Findings of the store rules (rules about where data sits) group by store, the others by actor.
        """
        for finding in findings:
            self._add(finding)
        ordered = sorted(self._cases, key=lambda c: c.order)
        events = self._distinct_ids()
        self.cases = [case.close(events[case.number]) for case in ordered]
        self._numbers = [case.number for case in ordered]
        return self.cases

    def _add(self, finding: FindingView) -> None:
        kind, subject = subject_of(finding, self._store_rules)
        key = (finding.rule_id, finding.commitment, kind, subject)
        current = self._open.get(key)
        if current is None or finding.time - current.last_seen > self._gap:
            current = self._open[key] = _Open(len(self._cases), finding, kind, subject, finding.time)
            self._cases.append(current)
            self._orders.append(current.order)
        current.add(finding)
        self._ids.add((current.number, finding.id))

    def _distinct_ids(self) -> list[int]:
        """Distinct finding ids of each case (one rule and commitment: an id names its events), by number."""
        events = [0] * len(self._cases)
        for number, ids in groupby(self._ids.merged(), key=itemgetter(0)):
            events[number] = _count_distinct((fid for _, fid in ids), self._ids_in_memory, self._scratch)
        return events

    def lines(self) -> Iterator[bytes]:
        """``cases.jsonl``: one canonical JSON case per line, its finding ids streamed from the runs."""
        groups = groupby(self._ids.merged(), key=itemgetter(0))
        for case, number, (grouped, ids) in zip(self.cases, self._numbers, groups, strict=True):
            assert grouped == number, "the runs list the cases in cases.jsonl order"
            head, tail = _split_line(case)
            yield head
            sep, batch = b"", []
            for _, fid in ids:
                batch.append(b'"%s"' % fid.encode())  # F- and hex digits: nothing to escape
                if len(batch) == _IDS_PER_CHUNK:
                    yield sep + b",".join(batch)
                    sep, batch = b",", []
            yield sep + b",".join(batch) + tail


_IDS_PER_CHUNK = 1_024
_IDS_SLOT = b'"finding_ids":[]'


def _split_line(case: Case) -> tuple[bytes, bytes]:
    """The canonical line of ``case`` with no finding ids, cut where they go: (up to ``[``, from ``]`` with newline)."""
    line = canonical_bytes(CaseRecord(**dict(case), finding_ids=()))
    # Only the key can hold these bytes unescaped: in a JSON string every quote is escaped.
    head, slot, tail = line.partition(_IDS_SLOT)
    assert slot and _IDS_SLOT not in tail, "one finding_ids member"
    return head + _IDS_SLOT[:-1], _IDS_SLOT[-1:] + tail + b"\n"


def _count_distinct(ids: Iterator[str], limit: int, scratch: Path | None) -> int:
    """How many distinct ``ids``: a set of up to ``limit`` of them, else sorted runs counted in order."""
    seen: set[str] = set()
    for fid in ids:
        seen.add(fid)
        if len(seen) > limit:
            break
    else:
        return len(seen)
    with SortedRuns[str](str, str.encode, bytes.decode, run_size=limit, scratch=scratch) as runs:
        runs.extend(seen)
        seen.clear()
        runs.extend(ids)
        return sum(1 for _ in groupby(runs.merged()))


def build_cases(findings: Iterable[FindingView], store_rules: frozenset[str], gap: timedelta = CASE_GAP) -> list[Case]:
    """Cases of ``findings`` (in ``findings.jsonl`` order: by time), sorted by first seen, rule and subject.

    Findings of ``store_rules`` (rules about where data sits) group by store, the others by actor.
    """
    with CaseBook(store_rules, gap) as book:
        return book.build(findings)


def iter_cases(path: Path) -> Iterator[CaseRecord]:
    """Cases of a ``cases.jsonl`` file, one line at a time (InputError on a bad line)."""
    for _, case in iter_jsonl(path, CaseRecord):
        yield case
