"""What a signed report claims beyond its counts: period, signer, and a verdict per commitment.

These models live in the report predicate (so they are signed); :func:`commitment_verdicts`
computes the per-commitment table from the findings and cases of a replay. A
commitment is *broken* when it has an unwaived finding, *waived* when every finding
it has was accepted by a waiver, *kept* when a policy version that states it was in
force for at least one replayed event and it has no finding, and *not exercised*
otherwise (no event was judged under a policy version that states it). Nothing here
reads files or signs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from audit.models import Commitment, FindingT, FindingView
from audit.report.cases import SEVERITY_ORDER, Case

Verdict = Literal["kept", "broken", "waived", "not exercised"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Strict):
    """The audit period: the times of the first and last replayed event (None for an empty log)."""

    first_event: datetime | None = None
    last_event: datetime | None = None


class Signer(_Strict):
    """Who signed the report: the key's id and its keyring label."""

    key_id: str
    label: str | None = None


class SourceQuote(_Strict):
    """Where a commitment is stated: seed file, 1-based line and the quoted phrase."""

    file: str
    line: int
    quote: str


class CommitmentVerdict(_Strict):
    """One row of the per-commitment table."""

    id: str
    title: str
    text: str
    sources: tuple[SourceQuote, ...]
    verdict: Verdict
    cases: int
    events: int
    findings: int
    waived: int = 0
    severity: dict[str, int]


@dataclass
class _Tally:
    findings: int = 0
    waived: int = 0
    events: int = 0
    last_event: tuple[str, ...] | None = None
    severity: Counter[str] = field(default_factory=Counter)


class FindingTallies:
    """Counts per commitment, fed findings in ``findings.jsonl`` order (those of one event are adjacent).

    :meth:`counting` lets another pass over the findings (building the cases) fill it,
    so one pass over the findings serves both.
    """

    def __init__(self) -> None:
        self.by_commitment: dict[str, _Tally] = {}

    def add(self, finding: FindingView) -> None:
        """Count one finding."""
        tally = self.by_commitment.get(finding.commitment)
        if tally is None:
            tally = self.by_commitment[finding.commitment] = _Tally()
        tally.findings += 1
        tally.waived += finding.waiver is not None
        tally.severity[finding.severity] += 1
        if finding.event_ids != tally.last_event:
            tally.events += 1
            tally.last_event = finding.event_ids

    def counting(self, findings: Iterable[FindingT]) -> Iterator[FindingT]:
        """``findings`` unchanged, each counted as it passes."""
        for finding in findings:
            self.add(finding)
            yield finding


def _tally(findings: Iterable[FindingView] | FindingTallies) -> dict[str, _Tally]:
    """Counts per commitment (already counted, or counted now)."""
    if isinstance(findings, FindingTallies):
        return findings.by_commitment
    tallies = FindingTallies()
    for finding in findings:
        tallies.add(finding)
    return tallies.by_commitment


def _verdict(tally: _Tally | None, exercised: bool) -> Verdict:
    if tally is not None and tally.findings > tally.waived:
        return "broken"
    if tally is not None:
        return "waived"
    return "kept" if exercised else "not exercised"


def commitment_verdicts(
    commitments: Mapping[str, Commitment],
    findings: Iterable[FindingView] | FindingTallies,
    cases: Sequence[Case],
    exercised: set[str],
) -> tuple[CommitmentVerdict, ...]:
    """The per-commitment table, in commitment order (C1, C2, ...).

    ``findings`` are the report's findings, or their :class:`FindingTallies` when a
    pass over them has already counted them.

    ``exercised`` holds the commitments stated by a policy version in force for some
    replayed event. Sources are cited as ``directory/file`` (``seeds/...`` for the US register).
    """
    tallies = _tally(findings)
    case_counts = Counter(case.commitment for case in cases)
    rows = []
    for cid in sorted(set(commitments) | set(tallies), key=lambda c: int(c[1:])):
        c = commitments.get(cid)
        tally = tallies.get(cid)
        rows.append(
            CommitmentVerdict(
                id=cid,
                title=c.title if c else cid,
                text=c.text if c else "(not in the policy's commitment register)",
                sources=tuple(SourceQuote(file=s.path, line=s.line, quote=s.quote) for s in c.sources) if c else (),
                verdict=_verdict(tally, cid in exercised),
                cases=case_counts.get(cid, 0),
                events=tally.events if tally else 0,
                findings=tally.findings if tally else 0,
                waived=tally.waived if tally else 0,
                severity={s: tally.severity[s] for s in SEVERITY_ORDER if tally and tally.severity[s]},
            )
        )
    return tuple(rows)
