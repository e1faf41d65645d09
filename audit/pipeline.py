"""The audit pipeline: verify a sealed access log, replay it, write a signed report.

This is the library entry point the CLI calls for ``replay``. It fails closed: if
the access log (or a sealed approvals log) does not verify, it raises
:class:`~audit.errors.IntegrityError` and writes nothing, so an unverifiable log is
never reported as clean. It only orchestrates: publishing the report directory is
:mod:`audit.report.publish`, verifying a report is :mod:`audit.report.verify`, and
judging events is :mod:`audit.replay`. It does not print; progress is a callback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator
from contextlib import closing, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from audit import __version__
from audit.errors import InputError, IntegrityError
from audit.logs.approvals import ApprovalSet, load_approvals
from audit.logs.record_types import ACCESS_RECORD_TYPE
from audit.logs.verify import Completeness, LogVerifier, VerificationReport, describe_problems
from audit.models import Commitment, Finding
from audit.policy import PolicyHistory, load_policy
from audit.policy.revision import policy_git_revision
from audit.replay.engine import ReplayEngine
from audit.replay.fast import FastReplay, NonCanonicalRecord
from audit.replay.options import CompletenessPin, Engine, Execution
from audit.replay.parallel import (
    WorkerContext,
    policy_digests,
    replay_with_dask,
    replay_with_processes,
    start_method,
)
from audit.replay.rules import load_rules, rule_book
from audit.replay.tuning import fewer_collections, quick_thread_handoff
from audit.report.bundle import DerivedFiles, export_paths
from audit.report.cases import Case, CaseBook
from audit.report.claims import FindingTallies, Period, Signer, commitment_verdicts
from audit.report.exports_apart import ExportsApart
from audit.report.findings import EncodedFinding, FindingsSpool, iter_findings
from audit.report.publish import FINDINGS_FILE, REPORT_FILE, WAIVERS_FILE, report_staging, write_files
from audit.report.readback import findings_as_written
from audit.report.statement import (
    ApprovalsSummary,
    LogSummary,
    PolicySummary,
    Predicate,
    Statement,
    Subject,
    Summary,
    approvals_subject,
    build_statement,
    file_subject,
    log_subject,
    policy_subjects,
    sign_statement,
)
from audit.report.waivers import WaiverSet, load_waivers
from audit.signing.dsse import envelope_bytes
from audit.signing.keys import KeyPurpose, Keyring, SigningKey, require_signing_key_valid

STORE_ENGINE_RULES = frozenset({"store-not-approved", "store-after-deadline"})
"""Engine rules about where data sits: cases of the rules they report group by store."""


def store_rule_ids(policy: PolicyHistory) -> frozenset[str]:
    """Ids of every rule of the packs' rule books reported by a store engine rule (:data:`STORE_ENGINE_RULES`)."""
    engine = load_rules()
    return frozenset(
        rule.id
        for pack in policy.packs
        for rule in rule_book(pack, engine).values()
        if rule.engine_id in STORE_ENGINE_RULES
    )


def integrity_failure(what: str, path: Path, report: VerificationReport) -> IntegrityError:
    """One-line error for a log that did not verify, naming its first problem."""
    return IntegrityError(f"{what} failed verification ({describe_problems(report.problems)})", path=path)


def replay_log(
    logdir: Path,
    verifier: LogVerifier,
    engine: FastReplay,
    on_segment: Callable[[int], None] | None = None,
) -> Generator[EncodedFinding, None, None]:
    """Findings of every event in the log's verified segments, then the cross-event ones, as the spool takes them.

    Only segments the verifier proved are replayed; the caller must still check
    ``verifier.report()`` before trusting the result. If the verifier left the records'
    canonical form to the replay, a record that is not flags its segment, whose findings
    are dropped.
    """
    check = verifier.defers_canonical
    for segment in verifier.segments():
        try:
            found = engine.encoded_segment(segment.records, segment.name, logdir / segment.name, check_canonical=check)
        except NonCanonicalRecord:
            # The report becomes a full verification's, never ok. Later segments are judged as
            # workers judge them (a flagged segment's findings dropped), so an input error met
            # later is reported alike whatever the execution.
            verifier.content_mismatch(segment.name)
            continue
        yield from found
        if on_segment is not None:
            on_segment(len(segment.records))
    yield from engine.engine.finish_encoded()


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay produced."""

    statement: Statement
    outdir: Path

    @property
    def findings(self) -> tuple[Finding, ...]:
        """All findings, read back from ``findings.jsonl`` (use :func:`iter_findings` for large reports)."""
        return tuple(iter_findings(self.outdir / FINDINGS_FILE))


@dataclass(frozen=True)
class _Inputs:
    """What one replay judges with, loaded and checked before any segment is read."""

    logdir: Path
    policy_dir: Path
    policy: PolicyHistory
    approvals_path: Path
    approvals: ApprovalSet
    engine: ReplayEngine


def replay(
    logdir: Path,
    keyring: Keyring,
    approvals_path: Path,
    policy_dir: Path,
    report_key: SigningKey,
    outdir: Path,
    *,
    pin: CompletenessPin = CompletenessPin(),  # noqa: B008 - frozen, never mutated
    execution: Execution = Execution(),  # noqa: B008 - frozen, never mutated
    on_segment: Callable[[int], None] | None = None,
    now: datetime | None = None,
    require_signed_approvals: bool = False,
    waivers: Path | None = None,
) -> ReplayOutcome:
    """Verify, replay, and write ``report.intoto.json``, ``findings.jsonl``, ``report.md``.

    ``execution`` says where segments are judged (this process, ``workers``
    processes, or a dask.distributed cluster); every choice yields the same
    findings. ``pin`` (a trusted checkpoint, an expected size) lets truncation,
    rollback and equivocation fail verification; without one the report says
    completeness is unproven (``pin.require_complete`` refuses that).

    ``generated_at`` is ``now``, or the clock when the statement is signed (after
    the log verified); it is never earlier than the log's newest checkpoint.
    ``require_signed_approvals`` (or ``require_signed_approvals: true`` in a
    ``pack.yaml``) refuses a plain JSON Lines approvals file: only a sealed,
    signature-verified approvals log is accepted. ``waivers`` (a YAML file,
    :mod:`audit.report.waivers`) marks the findings it accepts as waived; it is copied
    into the report as ``waivers.yaml``, a signed subject.
    """
    if not logdir.is_dir():
        raise InputError("no such log directory", path=logdir)
    require_signing_key_valid(keyring, report_key, now or datetime.now(UTC), KeyPurpose.report)
    policy = load_policy(policy_dir)
    _refuse_unsigned_approvals(approvals_path, policy, require_signed_approvals)
    approvals = load_approvals(approvals_path, keyring)
    accepted, waivers_bytes = load_waivers(waivers) if waivers is not None else (None, b"")
    inputs = _Inputs(
        logdir,
        policy_dir,
        policy,
        approvals_path,
        approvals,
        ReplayEngine(policy, approvals, load_rules()),
    )
    verifier = LogVerifier(
        logdir,
        keyring,
        record_type=ACCESS_RECORD_TYPE,
        trusted_checkpoint=pin.trusted_checkpoint,
        expected_size=pin.expected_size,
        defer_content=not execution.in_process,
        defer_canonical=execution.in_process,  # checked as each record is decoded: one decode per line
    )
    forked = execution.engine is Engine.local and execution.workers > 1 and start_method() == "fork"
    stream = _finding_stream(inputs, verifier, execution, on_segment, "fork" if forked else "spawn")
    with report_staging(outdir) as staging, FindingsSpool(staging) as spool:
        # closing(): a failure here also stops the workers now, not when the generator is collected.
        with closing(stream), fewer_collections(), nullcontext() if execution.in_process else quick_thread_handoff():
            for item in stream:
                spool.add_encoded(item)
        report, root = _verified(verifier, logdir, pin)
        generated_at = _signing_time(now, report, logdir, keyring, report_key)
        findings_path = staging / FINDINGS_FILE
        waiver_set = WaiverSet(accepted or (), generated_at)
        tallies = FindingTallies()
        book = CaseBook(store_rule_ids(policy), scratch=staging)  # finding ids in runs: memory bounded by cases
        mark = waiver_set.apply_line if accepted is not None else None
        texts = _commitment_texts(policy)
        # With forked workers, a forked child writes the exports from the same lines, on the core they freed.
        with (
            (
                ExportsApart(spool, mark, findings_path, export_paths(staging), texts) if forked else nullcontext()
            ) as apart,
            DerivedFiles(staging, texts, outdir, apart=apart) as derived,
            book,
        ):
            # One pass over the lines of findings.jsonl as they are written and hashed (waivers mark theirs
            # first): cases, verdict tallies, the page and the exports (here, or apart).
            with closing(spool.writing(findings_path, mark)) as lines:  # a failed write names the file
                cases = book.build(tallies.counting(derived.feeding(findings_as_written(lines, findings_path))))
            written = spool.written
            assert written is not None, "the pass takes every line"
            predicate = _predicate(generated_at, report, inputs, _summary(inputs, written.count, cases))
            predicate = predicate.model_copy(
                update={
                    "signer": _signer(keyring, report_key),
                    "waivers": waiver_set.statuses(),
                    "summary": predicate.summary.model_copy(update={"waived": sum(waiver_set.counts.values())}),
                    "verdicts": commitment_verdicts(_commitments(policy), tallies, cases, _exercised(inputs)),
                }
            )
            subjects = [log_subject(report.origin, report.tree_size, root)]
            subjects += [file_subject(name, path) for name, path in sorted(policy_subjects(policy, policy_dir).items())]
            subjects.append(approvals_subject(approvals))
            subjects.append(Subject(name=FINDINGS_FILE, digest={"sha256": written.sha256}))
            subjects += derived.finish(predicate, book)
        if waivers is not None:
            write_files(staging, {WAIVERS_FILE: waivers_bytes}, outdir)
            subjects.append(Subject(name=WAIVERS_FILE, digest={"sha256": hashlib.sha256(waivers_bytes).hexdigest()}))
        statement = build_statement(subjects, predicate)
        envelope = sign_statement(statement, report_key)
        write_files(staging, {REPORT_FILE: envelope_bytes(envelope)}, outdir)
    return ReplayOutcome(statement, outdir)


def _finding_stream(
    inputs: _Inputs,
    verifier: LogVerifier,
    execution: Execution,
    on_segment: Callable[[int], None] | None,
    method: str,
) -> Generator[EncodedFinding, None, None]:
    """Encoded findings of the whole log, judged where ``execution`` says (local children started by ``method``)."""
    policy, approvals, engine = inputs.policy, inputs.approvals, inputs.engine
    if execution.in_process:
        fast = FastReplay(engine, policy, approvals)
        return replay_log(inputs.logdir, verifier, fast, on_segment)
    ctx = WorkerContext(inputs.policy_dir, policy_digests(policy), approvals)
    if execution.engine is Engine.dask:
        return replay_with_dask(inputs.logdir, verifier, engine, ctx, execution.scheduler, on_segment)
    return replay_with_processes(
        inputs.logdir,
        verifier,
        engine,
        ctx,
        execution.workers,
        FastReplay.for_policy(policy, approvals),
        on_segment,
        method,
    )


def _summary(inputs: _Inputs, findings: int, cases: list[Case]) -> Summary:
    stats = inputs.engine.stats
    return Summary(
        events=stats.events,
        findings=findings,
        cases=len(cases),
        by_commitment=dict(sorted(stats.by_commitment.items())),
        by_rule=dict(sorted(stats.by_rule.items())),
    )


def _commitments(policy: PolicyHistory) -> dict[str, Commitment]:
    return {cid: c for pack in policy.packs for cid, c in pack.commitments.items()}


def _exercised(inputs: _Inputs) -> set[str]:
    """Commitments stated by a policy version in force for at least one replayed event."""
    used = inputs.engine.stats.policy_versions
    return {cid for pack in inputs.policy.packs if pack.config.name in used for cid in pack.commitments}


def _signer(keyring: Keyring, key: SigningKey) -> Signer:
    entry = keyring.get(key.key_id)
    return Signer(key_id=key.key_id, label=entry.label if entry is not None else None)


def _period(engine: ReplayEngine) -> Period:
    """The times of the first and last event judged, in UTC (as every engine and worker noted them)."""
    stats = engine.stats
    return Period(
        first_event=stats.first_event.astimezone(UTC) if stats.first_event is not None else None,
        last_event=stats.last_event.astimezone(UTC) if stats.last_event is not None else None,
    )


def _refuse_unsigned_approvals(path: Path, policy: PolicyHistory, flag: bool) -> None:
    """InputError if signed approvals are required (flag or a pack's setting) and ``path`` is not a sealed log."""
    packs = [pack.config.name for pack in policy.packs if pack.config.require_signed_approvals]
    if not (flag or packs) or path.is_dir() or not path.exists():
        return
    why = "--require-signed-approvals" if flag else f"require_signed_approvals in pack.yaml of {packs[0]}"
    raise InputError(
        f"approvals are a plain JSON Lines file, not a sealed approvals log; {why} refuses unsigned approvals",
        path=path,
    )


def _signing_time(
    now: datetime | None, report: VerificationReport, logdir: Path, keyring: Keyring, key: SigningKey
) -> datetime:
    """The report's ``generated_at``: ``now`` or the clock, never before the log's newest checkpoint."""
    generated_at = now or datetime.now(UTC)
    newest = report.last_checkpoint_time
    if newest is not None and generated_at < newest:
        raise InputError(
            f"refusing to sign a report generated at {generated_at.isoformat()}, earlier than the log's newest "
            f"checkpoint ({newest.isoformat()}); check the clock",
            path=logdir,
        )
    require_signing_key_valid(keyring, key, generated_at, KeyPurpose.report)
    return generated_at


def _verified(verifier: LogVerifier, logdir: Path, pin: CompletenessPin) -> tuple[VerificationReport, str]:
    """The verifier's report and the log's root; raise unless the log verified (and is complete if asked)."""
    report = verifier.report()
    if not report.ok or report.root is None:
        raise integrity_failure("access log", logdir, report)
    if pin.require_complete and report.completeness is not Completeness.proven:
        raise IntegrityError(f"access log completeness is unproven: {report.completeness_detail}", path=logdir)
    return report, report.root


def _commitment_texts(policy: PolicyHistory) -> dict[str, str]:
    """Each commitment's text by id, as the predicate states them."""
    return {cid: c.text for pack in policy.packs for cid, c in pack.commitments.items()}


def _predicate(generated_at: datetime, report: VerificationReport, inputs: _Inputs, summary: Summary) -> Predicate:
    assert report.root is not None
    policy, approvals = inputs.policy, inputs.approvals
    commitments = _commitment_texts(policy)
    return Predicate(
        tool={"name": "residency-audit", "version": __version__},
        generated_at=generated_at,
        log=LogSummary(
            origin=report.origin,
            record_type=report.record_type,
            tree_size=report.tree_size,
            root=report.root,
            segments=report.segments,
            completeness=report.completeness.value,
            completeness_detail=report.completeness_detail,
            last_checkpoint_sha256=report.last_checkpoint_sha256,
        ),
        approvals=ApprovalsSummary(
            source=str(inputs.approvals_path),
            kind="sealed-log" if approvals.signature_verified else "jsonl",
            signature_verified=approvals.signature_verified,
            count=len(approvals.by_id),
            digest=approvals.digest,
        ),
        policy=PolicySummary(
            directory=str(inputs.policy_dir),
            versions=tuple(p.config.name for p in policy.packs),
            git_revision=policy_git_revision(inputs.policy_dir),
        ),
        summary=summary,
        commitments=dict(sorted(commitments.items(), key=lambda kv: int(kv[0][1:]))),
        period=_period(inputs.engine),
    )
