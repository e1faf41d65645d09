"""Replay verified segments on several processes, or on a dask.distributed cluster.

The parent verifies the log's checkpoints, signed leaves and roots (deferring the
segment files) and hands verified segments out, a bounded number in flight, so
memory stays flat. Each worker reads its segment file, checks it against the
signed digests (:func:`~audit.logs.verify.segment_lines`), then decodes and judges
its events with its own engine - judging one event needs only the policy, the
approvals and the event - and returns the findings plus the cross-event state: who
was where and when, the proxy events that need it, and counts. A file that does not
match is reported back and fails the verification. With local processes the parent
judges segments too whenever every worker is busy; a local worker is handed the
context once, when it starts, and leaves Ctrl-C to the parent (which stops the
pool). The parent merges that state and judges the proxy events at the end, so
the findings equal a single-process run whatever the segment boundaries. Forked
workers judge with their copy of the parent's replay; spawned and dask workers
reload the policy from disk and refuse to run if its files differ from what the
parent loaded (and will sign). This module does not verify logs.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any, Protocol

from audit.errors import IntegrityError
from audit.interrupts import ignore_sigint, sigint_held
from audit.logs.approvals import ApprovalSet
from audit.logs.checkpoint import SegmentInfo
from audit.logs.verify import LogVerifier, VerifiedSegment, read_segment_file, segment_lines
from audit.policy import PolicyHistory, load_policy
from audit.records import sha256_file
from audit.replay.engine import Partial, ReplayEngine
from audit.replay.fast import FastReplay, NonCanonicalRecord
from audit.replay.tuning import fewer_collections
from audit.report.findings import EncodedFinding


@dataclass(frozen=True)
class WorkerContext:
    """What every worker needs, sent once per worker or task (picklable)."""

    policy_dir: Path
    policy_digests: tuple[tuple[str, str], ...]  # (file path, sha256) as the parent loaded them
    approvals: ApprovalSet


@dataclass(frozen=True)
class SegmentJob:
    """One segment for a worker: where it is and what it must hash to.

    ``raw`` carries the file's bytes when the worker may not see the log directory
    (a remote cluster); otherwise the worker reads ``path`` itself.
    """

    name: str
    path: Path
    info: SegmentInfo
    raw: bytes | None = None


@dataclass(frozen=True)
class SegmentResult:
    """A worker's answer for one segment; ``partial`` is None if the file was not the sealed one.

    Findings come encoded (:func:`~audit.report.findings.encode_finding`): the worker
    pays for serialising them, and the parent only stores bytes.
    """

    findings: list[EncodedFinding]
    partial: Partial | None
    events: int


def policy_digests(policy: PolicyHistory) -> tuple[tuple[str, str], ...]:
    """(path, sha256) of every file of every pack, sorted."""
    return tuple(sorted((str(p), sha256_file(p)) for pack in policy.packs for p in pack.files))


class _ReplaysOfThisThread(threading.local):
    """One cached replay per (policy, approvals) and thread: a replay's state is not
    shared, and a dask worker may run several segments at once in threads."""

    def __init__(self) -> None:
        self.replays: dict[tuple[Path, tuple[tuple[str, str], ...], str], FastReplay] = {}


_WORKER_CACHE = _ReplaysOfThisThread()


def _replay_key(ctx: WorkerContext) -> tuple[Path, tuple[tuple[str, str], ...], str]:
    return ctx.policy_dir, ctx.policy_digests, ctx.approvals.digest


def _fast_replay(ctx: WorkerContext) -> FastReplay:
    key = _replay_key(ctx)
    fast = _WORKER_CACHE.replays.get(key)
    if fast is None:
        policy = load_policy(ctx.policy_dir)
        if policy_digests(policy) != ctx.policy_digests:
            raise IntegrityError("policy files changed while the replay was running", path=ctx.policy_dir)
        fast = FastReplay.for_policy(policy, ctx.approvals)
        _WORKER_CACHE.replays[key] = fast
    return fast


def judge_segment(fast: FastReplay, job: SegmentJob) -> SegmentResult:
    """Check the segment file against its signed digests, then judge its events, checking each record's
    canonical form as it is decoded (a record that is not flags the segment, as a changed file does)."""
    raw = job.raw if job.raw is not None else read_segment_file(job.path, job.info)  # bounded, never a FIFO
    lines = segment_lines(raw, job.info, canonical=False) if raw is not None else None
    if lines is None:
        return SegmentResult([], None, 0)
    try:
        findings = fast.encoded_segment(lines, job.name, job.path, check_canonical=True)
    except NonCanonicalRecord:
        fast.engine.drain()
        return SegmentResult([], None, 0)  # flagged like a changed file: the parent re-verifies the log
    except BaseException:
        fast.engine.drain()  # a reused worker must not carry a half-judged segment into its next job
        raise
    return SegmentResult(findings, fast.engine.drain(), len(lines))


def run_segment(ctx: WorkerContext, job: SegmentJob) -> SegmentResult:
    """Worker entry point (a dask task; a local pool's through :func:`run_pooled_segment`):
    :func:`judge_segment` with this process's cached replay."""
    fast = _fast_replay(ctx)
    with fewer_collections():
        return judge_segment(fast, job)


_POOL_CONTEXT: list[WorkerContext] = []
"""In a local pool's child: the context :func:`_start_pooled` was given (one entry)."""


def _start_pooled(ctx: WorkerContext, inherited: FastReplay | None) -> None:
    """A local pool child's initializer: keep ``ctx`` for every segment; ignore Ctrl-C.

    ``inherited`` (forked children only: it is never pickled) is the parent's replay
    for ``ctx`` as it stood at the fork, the policy and approvals the parent loaded
    and will sign: the child judges with its copy instead of loading them again.

    Ctrl-C reaches the whole process group; the parent handles it (and stops the
    pool), so a child must not print a ``KeyboardInterrupt`` traceback of its own.
    The child starts with SIGINT blocked (:func:`submit_segment`): one pressed while
    it started is discarded here.
    """
    ignore_sigint()
    _POOL_CONTEXT[:] = [ctx]
    if inherited is not None:
        _WORKER_CACHE.replays[_replay_key(ctx)] = inherited


def run_pooled_segment(job: SegmentJob) -> SegmentResult:
    """A local pool child's entry point: :func:`run_segment` with the context it started with."""
    return run_segment(_POOL_CONTEXT[0], job)


class _Submit(Protocol):
    def __call__(self, job: SegmentJob) -> Future[SegmentResult]: ...


def _judged_here(local: Callable[[SegmentJob], SegmentResult], job: SegmentJob) -> Future[SegmentResult]:
    """``local(job)`` as a finished future: its error is raised when the segment's turn
    comes, so the first error reported is the first in log order, as in one process."""
    future: Future[SegmentResult] = Future()
    try:
        future.set_result(local(job))
    except Exception as exc:  # raised again by future.result() in collect()
        future.set_exception(exc)
    return future


def _pipelined(
    logdir: Path,
    verifier: LogVerifier,
    parent: ReplayEngine,
    submit: _Submit,
    window: int,
    on_segment: Callable[[int], None] | None,
    *,
    local: Callable[[SegmentJob], SegmentResult] | None = None,
    ship_bytes: bool = False,
) -> Iterator[EncodedFinding]:
    """Hand verified segments out, at most ``window`` unfinished at a time; merge in log order.

    With ``local``, a segment that finds every worker busy is judged right here, so
    this process works too instead of waiting (and while workers start). Near the end
    of the log the workers are kept to fewer segments (:func:`_tail_window`), so that
    they finish about when this process does. Once the log is read, it takes back
    segments not yet handed to a worker, the last first and one at a time, so it works
    through the tail alongside the workers instead of waiting.
    """
    in_flight: deque[tuple[Future[SegmentResult], SegmentJob]] = deque()
    bound = window if local is None else 4 * window  # local results may wait behind a slow segment

    def collect() -> list[EncodedFinding]:
        return _collect(in_flight.popleft(), verifier, parent, on_segment)

    for segment in verifier.segments():
        job = _segment_job(logdir, segment, ship_bytes)
        busy = sum(1 for future, _ in in_flight if not future.done())
        left = verifier.index_end - 1 - segment.index
        future = _judged_here(local, job) if local is not None and busy >= _tail_window(window, left) else submit(job)
        in_flight.append((future, job))
        while in_flight and in_flight[0][0].done():
            yield from collect()
        while len(in_flight) >= bound:
            yield from collect()

    yield from _drain(in_flight, local, collect)
    yield from parent.finish_encoded()


def _tail_window(window: int, left: int) -> int:
    """How many unfinished segments the workers may hold when ``left`` more are still to come.

    ``window`` is :data:`QUEUED_PER_CHILD` per child. A segment a child's process
    already took cannot be taken back, so at the end of the log this process would
    wait for all a child holds (three segments: about 0.1 s at 1M events). Near the
    end each child holds at most the segment it is judging, one queued behind it,
    and its even share of the ``left`` still to come, ``left / (children + 1)``; far
    from the end this is ``window``. Measured on 1M events with 2 workers: the wait
    at the end went from 0.05-0.15 s to 0-0.08 s (holding a child to the one segment
    it judges left it idle at the end instead, and was no faster).
    """
    children = max(1, window // QUEUED_PER_CHILD)
    return max(1, min(window, 2 * children + left * children // (children + 1)))


def _drain(
    in_flight: deque[tuple[Future[SegmentResult], SegmentJob]],
    local: Callable[[SegmentJob], SegmentResult] | None,
    collect: Callable[[], list[EncodedFinding]],
) -> Iterator[EncodedFinding]:
    """The tail: take back unstarted segments one at a time (with ``local``), then collect the rest in order."""
    while local is not None and in_flight and _take_back(in_flight, local):
        while in_flight and in_flight[0][0].done():
            yield from collect()
    while in_flight:
        yield from collect()


def _collect(
    done: tuple[Future[SegmentResult], SegmentJob],
    verifier: LogVerifier,
    parent: ReplayEngine,
    on_segment: Callable[[int], None] | None,
) -> list[EncodedFinding]:
    """A finished segment's findings; its proxy state joins ``parent``; a bad file is flagged, not judged."""
    future, job = done
    result = future.result()
    if result.partial is None:
        verifier.content_mismatch(job.name)
        return []
    parent.absorb(result.partial)
    if on_segment is not None:
        on_segment(result.events)
    return result.findings


def _segment_job(logdir: Path, segment: VerifiedSegment, ship_bytes: bool) -> SegmentJob:
    """The job for one verified segment; with ``ship_bytes`` it carries the file's bytes."""
    raw = None
    if ship_bytes:  # unreadable or oversized: empty bytes fail the digest check, so the log is re-verified
        raw = read_segment_file(logdir / segment.name, segment.body.segment) or b""
    return SegmentJob(segment.name, logdir / segment.name, segment.body.segment, raw)


def _take_back(
    in_flight: deque[tuple[Future[SegmentResult], SegmentJob]], local: Callable[[SegmentJob], SegmentResult]
) -> bool:
    """Judge here the last segment no worker was handed yet; False if there is none."""
    for i in range(len(in_flight) - 1, -1, -1):
        future, job = in_flight[i]
        if future.done():
            continue
        if not future.cancel():  # handed to a worker: so were the ones before it
            return False
        in_flight[i] = (_judged_here(local, job), job)
        return True
    return False


QUEUED_PER_CHILD = 3
"""Segments given to the pool per child process before this one judges a segment itself:
a child that finishes one finds the next waiting, even while this process is busy."""


def start_method() -> str:
    """``fork`` on Linux while this process runs no other thread, else ``spawn``.

    A forked child starts in milliseconds with the modules, policy and approvals the
    parent already loaded; a spawned one imports and loads them again (about 0.7 s of
    a CPU). Forking is unsafe only while another thread may hold a lock the child
    then finds held (a progress bar's refresh thread, a library's pool), so any other
    live thread (Python's or native, as ``/proc/self/task`` lists them) means
    ``spawn``, as does any other platform (ADR 0017). The pool starts its own threads
    after it has forked its children.
    """
    if sys.platform == "linux" and "fork" in get_all_start_methods() and _only_thread():
        return "fork"
    return "spawn"


def _only_thread() -> bool:
    """Whether this process runs one thread: Python's count, and the kernel's (native threads too)."""
    if threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:  # no /proc: Python's count is all there is
        return True


def local_pool(ctx: WorkerContext, children: int, method: str, replay: FastReplay | None = None) -> ProcessPoolExecutor:
    """``children`` processes started by ``method``, each handed ``ctx`` once; fed by :func:`submit_segment`.

    Forked children judge with their copy of ``replay`` (this process's, for ``ctx``)
    if one is given; spawned ones, and forked ones without it, load their own.
    """
    inherited = replay if method == "fork" else None
    return ProcessPoolExecutor(
        max_workers=children, mp_context=get_context(method), initializer=_start_pooled, initargs=(ctx, inherited)
    )


def submit_segment(pool: ProcessPoolExecutor, job: SegmentJob) -> Future[SegmentResult]:
    """``job`` for one of ``pool``'s children; SIGINT is held meanwhile, as the submit may start a child."""
    with sigint_held():
        return pool.submit(run_pooled_segment, job)


def replay_with_processes(
    logdir: Path,
    verifier: LogVerifier,
    parent: ReplayEngine,
    ctx: WorkerContext,
    workers: int,
    here: FastReplay,
    on_segment: Callable[[int], None] | None = None,
    method: str | None = None,
) -> Generator[EncodedFinding, None, None]:
    """Encoded findings of every verified segment, judged by ``workers`` processes: this one and ``workers - 1`` more.

    ``verifier`` should defer content (each process checks the segment files it reads);
    ``here`` judges this process's share (a replay of its own, drained per segment
    like a worker's, never ``parent``). ``method`` starts the children (default:
    :func:`start_method`).
    """
    children = max(1, workers - 1)
    executor = local_pool(ctx, children, method or start_method(), here)
    try:
        yield from _pipelined(
            logdir,
            verifier,
            parent,
            lambda job: submit_segment(executor, job),
            QUEUED_PER_CHILD * children,
            on_segment,
            local=lambda job: judge_segment(here, job),
        )
    except BaseException:
        stop_pool(executor)  # a failed or interrupted run does not wait for queued segments, nor for long
        raise
    finally:
        executor.shutdown()


STOP_GRACE = 2.0
"""Seconds a stopped pool's children get to finish the segment they judge before they are killed."""


def stop_pool(pool: ProcessPoolExecutor, grace: float = STOP_GRACE) -> None:
    """Stop ``pool`` after a failure or Ctrl-C: queued segments cancelled, its children given ``grace``, then killed.

    The children ignore Ctrl-C (:func:`_start_pooled`), so a stuck one (a segment
    file on a hung network share) would otherwise keep the replay waiting for ever,
    and a second Ctrl-C only kills them at once. Python 3.14's ``kill_workers`` would
    do the last step; before it, the pool's processes are only reachable through its
    ``_processes`` (3.11-3.13), read before the shutdown clears it.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    try:
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()


def replay_with_dask(
    logdir: Path,
    verifier: LogVerifier,
    parent: ReplayEngine,
    ctx: WorkerContext,
    scheduler: str | None,
    on_segment: Callable[[int], None] | None = None,
) -> Generator[EncodedFinding, None, None]:
    """Encoded findings of every verified segment, judged on a dask.distributed cluster.

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
                logdir,
                verifier,
                parent,
                lambda job: client.submit(run_segment, shared, job, pure=False),
                window,
                on_segment,
                ship_bytes=True,
            )
    finally:
        if cluster is not None:
            cluster.close()
