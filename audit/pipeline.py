"""The audit pipeline: verify a sealed log, replay it, write and verify a signed report.

This is the library entry point the CLI calls for ``replay`` and ``report verify``.
It fails closed: if the access log (or a sealed approvals log) does not verify, it
raises :class:`~audit.errors.IntegrityError` and writes nothing, so an unverifiable
log is never reported as clean. It does not print; progress is a callback.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

from audit import __version__
from audit.canonical import canonical_bytes
from audit.errors import InputError, IntegrityError
from audit.fsio import atomic_write
from audit.logs.trusted import SignedCheckpoint
from audit.logs.verify import Completeness, LogVerifier, VerificationReport, describe_problems, verify_log
from audit.models import AccessEvent, Approval, Finding, RecordType
from audit.policy import PolicyHistory, load_policy
from audit.records import iter_jsonl
from audit.replay.approvals import ApprovalSet, load_approvals
from audit.replay.engine import ReplayEngine
from audit.replay.fast import FastReplay
from audit.replay.parallel import WorkerContext, policy_digests, replay_with_dask, replay_with_processes
from audit.replay.rules import load_rules
from audit.replay.tuning import fewer_collections, quick_thread_handoff
from audit.report.findings import EncodedFinding, FindingsSpool, encode_finding, iter_findings
from audit.report.markdown import render_markdown
from audit.report.statement import (
    RESIDENCY_SUBJECT,
    ApprovalsSummary,
    LogSummary,
    PolicySummary,
    Predicate,
    ReportVerification,
    Statement,
    Subject,
    SubjectCheck,
    Summary,
    build_statement,
    check_file_subjects,
    file_subject,
    load_signed_statement,
    log_subject,
    sign_statement,
    subject_digests,
)
from audit.residency.models import ScanResult
from audit.residency.render import residency_markdown
from audit.residency.scanner import inventory_document, residency_section
from audit.signing.dsse import envelope_bytes
from audit.signing.keys import KeyPurpose, Keyring, SigningKey, require_signing_key_valid

ACCESS_RECORD_TYPE: str = RecordType.access_event.value
REPORT_FILE = "report.intoto.json"
FINDINGS_FILE = "findings.jsonl"
MARKDOWN_FILE = "report.md"
EngineKind = Literal["local", "dask"]
T = TypeVar("T")
REPORT_FILES = frozenset({REPORT_FILE, FINDINGS_FILE, MARKDOWN_FILE, RESIDENCY_SUBJECT})


def sealable_records(path: Path, record_type: str) -> Iterator[bytes]:
    """Validate a JSON Lines file record by record and yield each one's canonical bytes."""
    model: type[AccessEvent] | type[Approval] = AccessEvent if record_type == ACCESS_RECORD_TYPE else Approval
    for _, record in iter_jsonl(path, model):
        yield canonical_bytes(record)


def integrity_failure(what: str, path: Path, report: VerificationReport) -> IntegrityError:
    """One-line error for a log that did not verify, naming its first problem."""
    return IntegrityError(f"{what} failed verification ({describe_problems(report.problems)})", path=path)


def _git(directory: Path, *args: str) -> str:
    # Fixed argv, no shell; fsmonitor disabled so a hostile .git/config cannot run a program.
    argv = ["git", "-c", "core.fsmonitor=false", "-C", str(directory), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True)  # noqa: S603
    return done.stdout.strip()


def policy_git_revision(directory: Path) -> str | None:
    """``git rev-parse HEAD`` of the repository holding the policy, ``-dirty`` if changed."""
    try:
        head = _git(directory, "rev-parse", "HEAD")
        dirty = _git(directory, "status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


def policy_subjects(policy: PolicyHistory, root: Path) -> dict[str, Path]:
    """Policy files by subject name (``policy/<path relative to the policy dir>``)."""
    files: dict[str, Path] = {}
    for pack in policy.packs:
        for path in pack.files:
            files[f"policy/{path.resolve().relative_to(root.resolve()).as_posix()}"] = path
    return files


def replay_log(
    logdir: Path, verifier: LogVerifier, engine: FastReplay, on_segment: Callable[[int], None] | None = None
) -> Iterator[Finding]:
    """Findings of every event in the log's verified segments, then the cross-event ones.

    Only segments the verifier proved are replayed; the caller must still check
    ``verifier.report()`` before trusting the result.
    """
    for segment in verifier.segments():
        yield from engine.evaluate_segment(segment.records, segment.name, logdir / segment.name)
        if on_segment is not None:
            on_segment(len(segment.records))
    yield from engine.engine.finish()


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay produced."""

    statement: Statement
    outdir: Path

    @property
    def findings(self) -> tuple[Finding, ...]:
        """All findings, read back from ``findings.jsonl`` (use :func:`iter_findings` for large reports)."""
        return tuple(iter_findings(self.outdir / FINDINGS_FILE))


def _approvals_subject(approvals: ApprovalSet) -> Subject:
    if approvals.signature_verified:
        return Subject(
            name=f"approvals-log:{approvals.origin or 'unnamed'}@{approvals.tree_size}",
            digest={"sha256": approvals.digest},
        )
    return Subject(name=f"approvals/{approvals.source.name}", digest={"sha256": approvals.digest})


def replay(
    logdir: Path,
    keyring: Keyring,
    approvals_path: Path,
    policy_dir: Path,
    report_key: SigningKey,
    outdir: Path,
    *,
    on_segment: Callable[[int], None] | None = None,
    now: datetime | None = None,
    workers: int = 1,
    engine_kind: EngineKind = "local",
    scheduler: str | None = None,
    trusted_checkpoint: SignedCheckpoint | None = None,
    expected_size: int | None = None,
    require_complete: bool = False,
) -> ReplayOutcome:
    """Verify, replay, and write ``report.intoto.json``, ``findings.jsonl``, ``report.md``.

    ``workers`` > 1 judges segments on that many processes; ``engine_kind="dask"``
    on a dask.distributed cluster (``scheduler`` address, or a local one). Every
    mode yields the same findings. ``trusted_checkpoint``/``expected_size`` pin the
    log so truncation, rollback and equivocation fail verification; without a pin
    the report says completeness is unproven (``require_complete`` refuses that).
    """
    if not logdir.is_dir():
        raise InputError("no such log directory", path=logdir)
    generated_at = now or datetime.now(UTC)
    require_signing_key_valid(keyring, report_key, generated_at, KeyPurpose.report)
    policy = load_policy(policy_dir)
    approvals = load_approvals(approvals_path, keyring)
    engine = ReplayEngine(policy, approvals, load_rules())
    single = engine_kind == "local" and workers <= 1
    verifier = LogVerifier(logdir, keyring, record_type=ACCESS_RECORD_TYPE, trusted_checkpoint=trusted_checkpoint,
                           expected_size=expected_size, defer_content=not single)
    stream: Generator[EncodedFinding, None, None]
    if single:
        stream = (encode_finding(f) for f in replay_log(logdir, verifier, FastReplay(engine, policy, approvals),
                                                          on_segment))
    else:
        ctx = WorkerContext(policy_dir, policy_digests(policy), approvals)
        stream = (
            replay_with_dask(logdir, verifier, engine, ctx, scheduler, on_segment)
            if engine_kind == "dask"
            else replay_with_processes(logdir, verifier, engine, ctx, workers,
                                       FastReplay.for_policy(policy, approvals), on_segment)
        )
    with report_staging(outdir) as staging, FindingsSpool(staging) as spool:
        # closing(): a failure here also stops the workers now, not when the generator is collected.
        with closing(stream), fewer_collections(), nullcontext() if single else quick_thread_handoff():
            for item in stream:
                spool.add_encoded(item)
        report = verifier.report()
        if not report.ok or report.root is None:
            raise integrity_failure("access log", logdir, report)
        if require_complete and report.completeness is not Completeness.proven:
            raise IntegrityError(f"access log completeness is unproven: {report.completeness_detail}", path=logdir)
        findings_path = staging / FINDINGS_FILE
        written = _guard_write(lambda: spool.write(findings_path), outdir)
        stats = engine.stats
        summary = Summary(
            events=stats.events,
            findings=written.count,
            by_commitment=dict(sorted(stats.by_commitment.items())),
            by_rule=dict(sorted(stats.by_rule.items())),
        )
        predicate = _predicate(generated_at, report, approvals_path, approvals, policy_dir, policy, summary)
        subjects = [log_subject(report.origin, report.tree_size, report.root)]
        subjects += [file_subject(name, path) for name, path in sorted(policy_subjects(policy, policy_dir).items())]
        subjects.append(_approvals_subject(approvals))
        subjects.append(Subject(name=FINDINGS_FILE, digest={"sha256": written.sha256}))
        markdown = render_markdown(predicate, iter_findings(findings_path)).encode()
        subjects.append(Subject(name=MARKDOWN_FILE, digest={"sha256": hashlib.sha256(markdown).hexdigest()}))
        statement = build_statement(subjects, predicate)
        envelope = sign_statement(statement, report_key)
        _write_files(staging, {MARKDOWN_FILE: markdown, REPORT_FILE: envelope_bytes(envelope)}, outdir)
    return ReplayOutcome(statement, outdir)


def _predicate(
    generated_at: datetime,
    report: VerificationReport,
    approvals_path: Path,
    approvals: ApprovalSet,
    policy_dir: Path,
    policy: PolicyHistory,
    summary: Summary,
) -> Predicate:
    assert report.root is not None
    commitments = {cid: c.text for pack in policy.packs for cid, c in pack.commitments.items()}
    return Predicate(
        tool={"name": "residency-audit", "version": __version__},
        generated_at=generated_at,
        log=LogSummary(
            origin=report.origin, record_type=report.record_type, tree_size=report.tree_size,
            root=report.root, segments=report.segments, completeness=report.completeness.value,
            completeness_detail=report.completeness_detail,
            last_checkpoint_sha256=report.last_checkpoint_sha256,
        ),
        approvals=ApprovalsSummary(
            source=str(approvals_path), kind="sealed-log" if approvals.signature_verified else "jsonl",
            signature_verified=approvals.signature_verified, count=len(approvals.by_id),
            digest=approvals.digest,
        ),
        policy=PolicySummary(
            directory=str(policy_dir),
            versions=tuple(p.config.name for p in policy.packs),
            git_revision=policy_git_revision(policy_dir),
        ),
        summary=summary,
        commitments=dict(sorted(commitments.items(), key=lambda kv: int(kv[0][1:]))),
    )


def _guard_write(write: Callable[[], T], outdir: Path) -> T:
    try:
        return write()
    except OSError as exc:
        raise InputError(f"cannot write report: {exc.strerror or exc}", path=outdir) from None


def _write_files(staging: Path, files: dict[str, bytes], outdir: Path) -> None:
    for name, data in files.items():
        _guard_write(partial(atomic_write, staging / name, data), outdir)


@contextmanager
def report_staging(outdir: Path) -> Iterator[Path]:
    """A fresh directory beside ``outdir`` to build a report in, published whole on success.

    An existing ``outdir`` is replaced only if it holds nothing but report files
    (a previous run); anything else there is refused, never overwritten. If the
    body raises, the staging directory is removed and ``outdir`` is untouched. The
    check runs before the body and again just before publishing (a replay can take
    hours).
    """
    _refuse_foreign(outdir)
    staging = _guard_write(lambda: _make_staging(outdir), outdir)
    try:
        yield staging
        _guard_write(lambda: _publish(staging, outdir), outdir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _refuse_foreign(outdir: Path) -> None:
    if outdir.exists():
        if not outdir.is_dir():
            raise InputError("report output path exists and is not a directory", path=outdir)
        foreign = sorted(p.name for p in outdir.iterdir() if p.name not in REPORT_FILES)
        if foreign:
            raise InputError(f"refusing to replace a directory holding other files ({foreign[0]}, ...)", path=outdir)


def _make_staging(outdir: Path) -> Path:
    outdir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))


def _publish(staging: Path, outdir: Path) -> None:
    _refuse_foreign(outdir)
    staging.chmod(0o755)
    if outdir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old.", dir=outdir.parent))
        outdir.replace(retired / outdir.name)
        staging.replace(outdir)
        shutil.rmtree(retired)
    else:
        staging.replace(outdir)


def write_report_dir(outdir: Path, files: dict[str, bytes]) -> None:
    """Publish a report directory holding exactly ``files``, all at once (see :func:`report_staging`)."""
    with report_staging(outdir) as staging:
        _write_files(staging, files, outdir)


def add_residency_to_report(
    outdir: Path, keyring: Keyring, report_key: SigningKey, result: ScanResult, *, now: datetime | None = None
) -> Statement:
    """Fold a residency scan into the signed report in ``outdir`` and re-sign it.

    The existing report must verify against ``keyring`` first. The scanned stores
    are written to ``residency-inventory.json`` and pinned as a subject; the
    predicate gains (or replaces) its ``residency`` section; ``report.md`` gains a
    Residency section. The directory is republished all at once.
    """
    report_path = outdir / REPORT_FILE
    statement, _ = load_signed_statement(report_path, keyring)
    inventory = inventory_document(result)
    section = residency_section(result)
    generated_at = now or datetime.now(UTC)
    require_signing_key_valid(keyring, report_key, generated_at, KeyPurpose.report)
    predicate = statement.predicate.model_copy(update={"residency": section, "generated_at": generated_at})
    with report_staging(outdir) as staging:
        original, findings = outdir / FINDINGS_FILE, staging / FINDINGS_FILE
        if original.is_file():  # copied first, then checked and read from the copy
            _guard_write(partial(shutil.copyfile, original, findings), outdir)
        check = _check_report_file(statement, FINDINGS_FILE, findings)
        if not check.ok:
            raise IntegrityError(f"{FINDINGS_FILE} of the report does not verify: {check.detail}", path=original)
        markdown = (render_markdown(predicate, iter_findings(findings)) + residency_markdown(section)).encode()
        replaced = {RESIDENCY_SUBJECT: inventory, MARKDOWN_FILE: markdown}
        subjects = [s for s in statement.subject if s.name not in replaced]
        subjects += [Subject(name=n, digest={"sha256": hashlib.sha256(b).hexdigest()}) for n, b in replaced.items()]
        signed = build_statement(subjects, predicate)
        _write_files(staging, replaced | {REPORT_FILE: envelope_bytes(sign_statement(signed, report_key))}, outdir)
    return signed


def verify_report(
    report_path: Path,
    keyring: Keyring,
    *,
    log: Path | None = None,
    policy: Path | None = None,
    approvals: Path | None = None,
) -> ReportVerification:
    """Check the report's signature, then each subject that local material is given for.

    The report's own files beside it (``findings.jsonl``, ``report.md``) are always
    checked: a missing or changed one fails.
    """
    statement, key_id = load_signed_statement(report_path, keyring)
    digests = subject_digests(statement)
    checks: list[SubjectCheck] = []
    residency = (RESIDENCY_SUBJECT,) if statement.predicate.residency is not None else ()
    checks += [_check_report_file(statement, name, report_path.parent / name)
               for name in (FINDINGS_FILE, MARKDOWN_FILE, *residency)]
    if log is not None:
        checks.append(_check_log(statement, digests, log, keyring))
    if policy is not None:
        local = policy_subjects(load_policy(policy), policy)
        checks += check_file_subjects(statement, local)
        extra = sorted(n for n in digests if n.startswith("policy/") and n not in local)
        checks += [SubjectCheck(n, False, "policy file in the report is missing locally") for n in extra]
    if approvals is not None:
        checks.append(_check_approvals(statement, approvals, keyring))
    return ReportVerification(key_id, statement, tuple(checks))


def _check_report_file(statement: Statement, name: str, path: Path) -> SubjectCheck:
    """One of the report's own files against its subject: absent subject, missing or changed file fails."""
    if name not in subject_digests(statement):
        return SubjectCheck(name, False, "not a subject of the report")
    if not path.is_file():
        return SubjectCheck(name, False, f"missing: {path}")
    return check_file_subjects(statement, {name: path})[0]


def _check_log(statement: Statement, digests: dict[str, str], logdir: Path, keyring: Keyring) -> SubjectCheck:
    report = verify_log(logdir, keyring, record_type=ACCESS_RECORD_TYPE)
    name = next((n for n in digests if n.startswith("log:")), "log")
    if not report.ok or report.root is None:
        return SubjectCheck(name, False, f"log does not verify: {describe_problems(report.problems)}")
    expected = log_subject(report.origin, report.tree_size, report.root)
    if digests.get(expected.name) != report.root:
        return SubjectCheck(name, False, f"log root {report.root} at size {report.tree_size} is not the reported one")
    return SubjectCheck(name, True, "log verifies and its root matches")


def _check_approvals(statement: Statement, path: Path, keyring: Keyring) -> SubjectCheck:
    local = _approvals_subject(load_approvals(path, keyring))
    reported = next((s for s in statement.subject if s.name.startswith("approvals")), None)
    if reported is None:
        return SubjectCheck(local.name, False, "report has no approvals subject")
    ok = reported.name == local.name and reported.digest == local.digest
    detail = "digest matches" if ok else f"{local.name} {local.digest['sha256']} != {reported.name}"
    return SubjectCheck(local.name, ok, detail)
