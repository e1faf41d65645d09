"""Replay verified segments on several processes, or on a dask.distributed cluster.

The parent verifies the log and streams verified segments out (a bounded number in
flight, so memory stays flat). Each worker decodes and judges its segment's events
with its own engine - judging one event needs only the policy, the approvals and the
event - and returns the findings plus the cross-event state: who was where and when,
the proxy events that need it, and counts. The parent merges that state and judges
the proxy events at the end, so the findings equal a single-process run whatever
the segment boundaries. Workers reload the policy from disk and refuse to run if its
files differ from what the parent loaded (and will sign). This module does not
verify logs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from audit.errors import IntegrityError
from audit.logs.verify import LogVerifier
from audit.models import Finding
from audit.policy import PolicyHistory, load_policy
from audit.records import sha256_file
from audit.replay.approvals import ApprovalSet
from audit.replay.engine import Partial, ReplayEngine
from audit.replay.fast import FastReplay
from audit.replay.rules import load_rules
from audit.replay.tuning import fewer_collections


@dataclass(frozen=True)
class WorkerContext:
    """What every worker needs, sent once per worker or task (picklable)."""

    policy_dir: Path
    policy_digests: tuple[tuple[str, str], ...]  # (file path, sha256) as the parent loaded them
    approvals: ApprovalSet


@dataclass(frozen=True)
class SegmentJob:
    """One verified segment's lines."""

    name: str
    path: Path
    lines: list[bytes]


@dataclass(frozen=True)
class SegmentResult:
    """A worker's answer for one segment."""

    findings: list[Finding]
    partial: Partial


def policy_digests(policy: PolicyHistory) -> tuple[tuple[str, str], ...]:
    """(path, sha256) of every file of every pack, sorted."""
    return tuple(sorted((str(p), sha256_file(p)) for pack in policy.packs for p in pack.files))


_WORKER_CACHE: dict[tuple[Path, tuple[tuple[str, str], ...], str], FastReplay] = {}


def _fast_replay(ctx: WorkerContext) -> FastReplay:
    key = (ctx.policy_dir, ctx.policy_digests, ctx.approvals.digest)
    fast = _WORKER_CACHE.get(key)
    if fast is None:
        policy = load_policy(ctx.policy_dir)
        if policy_digests(policy) != ctx.policy_digests:
            raise IntegrityError("policy files changed while the replay was running", path=ctx.policy_dir)
        fast = FastReplay(ReplayEngine(policy, ctx.approvals, load_rules()), policy, ctx.approvals)
        _WORKER_CACHE[key] = fast
    return fast


def run_segment(ctx: WorkerContext, job: SegmentJob) -> SegmentResult:
    """Judge one segment's events in a worker; cross-event state goes back to the parent."""
    fast = _fast_replay(ctx)
    with fewer_collections():
        findings = fast.evaluate_segment(job.lines, job.name, job.path)
    return SegmentResult(findings, fast.engine.drain())


class _Submit(Protocol):
    def __call__(self, job: SegmentJob) -> Future[SegmentResult]: ...


def _pipelined(
    logdir: Path,
    verifier: LogVerifier,
    parent: ReplayEngine,
    submit: _Submit,
    window: int,
    on_segment: Callable[[int], None] | None,
) -> Iterator[Finding]:
    in_flight: deque[tuple[Future[SegmentResult], int]] = deque()

    def collect() -> list[Finding]:
        future, count = in_flight.popleft()
        result = future.result()
        parent.absorb(result.partial)
        if on_segment is not None:
            on_segment(count)
        return result.findings

    for segment in verifier.segments():
        in_flight.append((submit(SegmentJob(segment.name, logdir / segment.name, segment.lines)), len(segment.lines)))
        if len(in_flight) >= window:
            yield from collect()
    while in_flight:
        yield from collect()
    yield from parent.finish()


def replay_with_processes(
    logdir: Path,
    verifier: LogVerifier,
    parent: ReplayEngine,
    ctx: WorkerContext,
    workers: int,
    on_segment: Callable[[int], None] | None = None,
) -> Iterator[Finding]:
    """Findings of every verified segment, judged on ``workers`` processes."""
    executor: Executor
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as executor:
        yield from _pipelined(
            logdir, verifier, parent, lambda job: executor.submit(run_segment, ctx, job), 2 * workers, on_segment
        )


def replay_with_dask(
    logdir: Path,
    verifier: LogVerifier,
    parent: ReplayEngine,
    ctx: WorkerContext,
    scheduler: str | None,
    on_segment: Callable[[int], None] | None = None,
) -> Iterator[Finding]:
    """Findings of every verified segment, judged on a dask.distributed cluster.

    ``scheduler`` is the address of a running scheduler; ``None`` starts a local
    cluster for the duration of the replay.
    """
    from dask.distributed import Client, LocalCluster  # imported only when asked for

    cluster: Any = None
    if scheduler is None:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]  # dask ships partial types
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        scheduler = cluster.scheduler_address
    try:
        with Client(scheduler) as client:  # type: ignore[no-untyped-call]
            shared = client.scatter(ctx, broadcast=True)
            window = 2 * max(1, len(client.scheduler_info().get("workers", {})))
            yield from _pipelined(
                logdir, verifier, parent, lambda job: client.submit(run_segment, shared, job, pure=False), window,
                on_segment,
            )
    finally:
        if cluster is not None:
            cluster.close()
