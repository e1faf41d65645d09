"""Parallel and dask replay find exactly what a single process finds."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import threading
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import audit.replay.parallel as parallel
from audit.canonical import canonical_bytes
from audit.errors import InputError, IntegrityError
from audit.logs.approvals import load_approvals
from audit.logs.record_types import ACCESS_RECORD_TYPE
from audit.logs.verify import LogVerifier
from audit.logs.writer import seal
from audit.models import AccessEvent
from audit.pipeline import replay
from audit.policy import load_policy
from audit.replay.engine import ReplayEngine
from audit.replay.fast import FastReplay
from audit.replay.options import Engine, Execution
from audit.replay.parallel import SegmentJob, SegmentResult, _pipelined, judge_segment, start_method
from audit.replay.rules import load_rules
from audit.report.publish import FINDINGS_FILE
from audit.signing.keys import Keyring, SigningKey, load_private_key
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, KEYS, POLICIES, flip_byte

NOW = datetime(2022, 6, 30, tzinfo=UTC)


def _findings(tmp: Path, log: Path, keyring: Keyring, key: SigningKey, name: str, **kw: object) -> list[str]:
    outcome = replay(log, keyring, APPROVALS_LOG, POLICIES, key, tmp / name, now=NOW, **kw)  # type: ignore[arg-type]
    return [f.model_dump_json() for f in outcome.findings]


def _fixture_jobs(keyring: Keyring) -> list[SegmentJob]:
    """A worker's job for each segment of the fixture access log, in log order."""
    verified = LogVerifier(ACCESS_LOG, keyring, defer_content=True).segments()
    return [SegmentJob(s.name, ACCESS_LOG / s.name, s.body.segment) for s in verified]


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_find_exactly_what_one_process_finds(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, workers: int
) -> None:
    single = _findings(tmp_path, ACCESS_LOG, keyring, auditor_key, "one")
    assert len(single) == 70  # 61 + the C3 finding of each expired Singapore backup and own-DC read (ADR 0007)
    assert _findings(tmp_path, ACCESS_LOG, keyring, auditor_key, "many", execution=Execution(workers=workers)) == single


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_forked_and_spawned_children_find_exactly_what_one_process_finds(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """A forked child judges with the modules and state it inherited; a spawned one loads its own (ADR 0017)."""
    started: list[str] = []
    real = multiprocessing.get_context

    def recorded(name: str) -> Any:
        started.append(name)
        return real(name)

    monkeypatch.setattr("audit.pipeline.start_method", lambda: method)
    monkeypatch.setattr(parallel, "get_context", recorded)
    single = _findings(tmp_path, ACCESS_LOG, keyring, auditor_key, "one")
    assert _findings(tmp_path, ACCESS_LOG, keyring, auditor_key, "two", execution=Execution(workers=2)) == single
    assert started == [method]  # the pool's children were started so


def test_children_are_forked_only_on_linux_with_no_other_thread_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "_only_thread", lambda: True)
    monkeypatch.setattr(sys, "platform", "linux")
    assert start_method() == "fork"
    monkeypatch.setattr(parallel, "_only_thread", lambda: False)  # a progress bar's refresh thread, say
    assert start_method() == "spawn"
    monkeypatch.setattr(parallel, "_only_thread", lambda: True)
    monkeypatch.setattr(sys, "platform", "darwin")  # fork is unsafe with macOS system frameworks
    assert start_method() == "spawn"


def test_another_thread_python_or_native_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not parallel._only_thread()  # a real Python thread
    finally:
        stop.set()
        thread.join()
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(os, "listdir", lambda path: ["1", "2"])  # a native thread Python does not count
    assert not parallel._only_thread()
    monkeypatch.setattr(os, "listdir", lambda path: ["1"])
    assert parallel._only_thread()


def test_workers_state_the_same_period_counts_and_verdicts(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    """The period is noted where events are judged (each worker's share, merged), not by re-reading the log."""
    one = replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, tmp_path / "one", now=NOW)
    two = replay(
        ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, tmp_path / "two", now=NOW,
        execution=Execution(workers=2),
    )  # fmt: skip
    single, many = one.statement.predicate, two.statement.predicate
    assert single.period is not None and single.period.first_event is not None
    assert (many.period, many.summary, many.verdicts) == (single.period, single.summary, single.verdicts)


def _event(eid: str, time: str, actor: str, country: str, **extra: object) -> bytes:
    body = {
        "event_id": eid,
        "time": time,
        "action": "read",
        "actor": {"id": actor, "office_country": country, "physical_country": country},
        "resource": {
            "id": "r",
            "dataset": "us-videos",
            "category": "public_video",
            "store": "oci-us",
            "provider": "oci",
            "region": "us-ashburn-1",
        },
        **extra,
    }
    return canonical_bytes(AccessEvent.model_validate(body))


def test_proxy_split_across_segments_is_found_by_workers(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    # One event per segment: the proxy event and the colleague's only sighting land in
    # different segments, and so on different workers.
    records = [
        _event("p1", "2021-10-02T00:00:00Z", "us-1", "US", on_behalf_of="cn-1"),
        _event("c1", "2021-10-01T00:00:00Z", "us-2", "US"),
        _event("c2", "2021-10-01T12:00:00Z", "cn-1", "CN", approval_ids=["A-cn-eng-01-202110"]),
    ]
    log = tmp_path / "log"
    producer = load_private_key(KEYS / "log-producer.key", b"residency-audit-fixtures-TEST-ONLY")
    seal(
        iter(records),
        out=log,
        key=producer,
        origin="split",
        record_type=ACCESS_RECORD_TYPE,
        segment_size=1,
        time=datetime(2022, 2, 1, tzinfo=UTC),
    )  # before NOW: a report cannot predate its log's newest checkpoint
    single = _findings(tmp_path, log, keyring, auditor_key, "one")
    assert any('"rule_id":"proxy-access"' in f and '"p1"' in f for f in single)
    assert _findings(tmp_path, log, keyring, auditor_key, "two", execution=Execution(workers=2)) == single


@pytest.mark.parametrize("kind", [Engine.dask])
def test_dask_local_cluster_finds_exactly_what_one_process_finds(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, kind: Engine
) -> None:
    pytest.importorskip("dask.distributed")
    single = _findings(tmp_path, ACCESS_LOG, keyring, auditor_key, "one")
    assert _findings(tmp_path, ACCESS_LOG, keyring, auditor_key, "dask", execution=Execution(engine=kind)) == single


@pytest.mark.parametrize("kind", [Engine.local, Engine.dask])
def test_workers_fail_closed_on_a_changed_segment_with_the_single_process_diagnosis(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey, kind: Engine
) -> None:
    if kind == "dask":
        pytest.importorskip("dask.distributed")
    log = tmp_path / "log"
    shutil.copytree(ACCESS_LOG, log)
    flip_byte(log / "segments" / "00000001.jsonl", 100)  # only workers read segment files
    errors = []
    for name, kw in (("one", {}), ("many", {"execution": Execution(workers=2, engine=kind)})):
        with pytest.raises(IntegrityError) as caught:
            replay(log, keyring, APPROVALS_LOG, POLICIES, auditor_key, tmp_path / name, now=NOW, **kw)  # type: ignore[arg-type]
        assert not (tmp_path / name).exists()
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert "event-modified at segments/00000001.jsonl" in errors[0]


def test_a_segment_that_fails_leaves_no_state_behind_in_a_reused_worker(tmp_path: Path, keyring: Keyring) -> None:
    bad = b'{"event_id":"bad","time":"2021-10-01T00:00:00Z"}'  # sealed as is, rejected on replay
    good = [_event("a", "2021-10-01T00:00:00Z", "us-1", "US"), _event("b", "2021-10-02T00:00:00Z", "us-2", "US")]
    records = [good[0], bad, good[1]]
    log = tmp_path / "log"
    producer = load_private_key(KEYS / "log-producer.key", b"residency-audit-fixtures-TEST-ONLY")
    seal(iter(records), out=log, key=producer, origin="fail", record_type=ACCESS_RECORD_TYPE, segment_size=2)
    verifier = LogVerifier(log, keyring, defer_content=True)
    first, second = list(verifier.segments())
    policy = load_policy(POLICIES)
    approvals = load_approvals(APPROVALS_LOG, keyring)
    worker = FastReplay.for_policy(policy, approvals)
    with pytest.raises(InputError, match=r"00000000.jsonl:2: actor: Field required"):
        judge_segment(worker, SegmentJob(first.name, log / first.name, first.body.segment))
    result = judge_segment(worker, SegmentJob(second.name, log / second.name, second.body.segment))
    assert result.partial is not None
    assert result.partial.stats.events == 1 and result.events == 1


def test_segments_no_worker_started_are_judged_here_at_the_end(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    # Workers that are never handed a job: every segment stays pending, so each must
    # be taken back and judged by this process once the whole log has been read.
    single = replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, tmp_path / "one", now=NOW)
    expected = (tmp_path / "one" / FINDINGS_FILE).read_bytes().splitlines(keepends=True)
    policy, approvals = load_policy(POLICIES), load_approvals(APPROVALS_LOG, keyring)
    here = FastReplay.for_policy(policy, approvals)
    never_started: list[Future[SegmentResult]] = []

    class NeverStarted(Future[SegmentResult]):
        def result(self, timeout: float | None = None) -> SegmentResult:
            raise AssertionError("waited for a segment no worker started")

    def submit(job: SegmentJob) -> Future[SegmentResult]:
        never_started.append(NeverStarted())
        return never_started[-1]

    verifier = LogVerifier(ACCESS_LOG, keyring, defer_content=True)
    parent = ReplayEngine(policy, approvals, load_rules())
    stream = _pipelined(ACCESS_LOG, verifier, parent, submit, 10_000, None, local=lambda job: judge_segment(here, job))
    lines = sorted(line for _, line in stream)
    assert len(never_started) == single.statement.predicate.log.segments
    assert all(future.cancelled() for future in never_started)
    assert verifier.report().ok
    assert lines == sorted(expected) and len(lines) == 70  # every broken commitment (ADR 0007)


def test_taking_back_stops_at_segments_a_worker_already_has(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    # One worker thread, held on its first segment until this process judges one:
    # that first segment must stay with the worker, the last must be taken back.
    from concurrent.futures import ThreadPoolExecutor
    from threading import Event

    replay(ACCESS_LOG, keyring, APPROVALS_LOG, POLICIES, auditor_key, tmp_path / "one", now=NOW)
    expected = (tmp_path / "one" / FINDINGS_FILE).read_bytes().splitlines(keepends=True)
    policy, approvals = load_policy(POLICIES), load_approvals(APPROVALS_LOG, keyring)
    here, there = FastReplay.for_policy(policy, approvals), FastReplay.for_policy(policy, approvals)
    released, handed = Event(), []

    def work(job: SegmentJob) -> SegmentResult:
        assert released.wait(10)
        return judge_segment(there, job)

    def local(job: SegmentJob) -> SegmentResult:
        released.set()
        return judge_segment(here, job)

    verifier = LogVerifier(ACCESS_LOG, keyring, defer_content=True)
    with ThreadPoolExecutor(max_workers=1) as pool:

        def submit(job: SegmentJob) -> Future[SegmentResult]:
            handed.append(pool.submit(work, job))
            return handed[-1]

        stream = _pipelined(
            ACCESS_LOG, verifier, ReplayEngine(policy, approvals, load_rules()), submit, 10_000, None, local=local
        )
        lines = sorted(line for _, line in stream)
    assert len(handed) >= 3
    assert not handed[0].cancelled() and handed[-1].cancelled()
    assert verifier.report().ok and lines == sorted(expected)


def test_a_worker_running_segments_in_threads_gives_each_its_own_replay(keyring: Keyring) -> None:
    # A dask worker with several threads runs segments at once: each thread needs its
    # own replay state, and pycasbin must not be entered by two threads at a time.
    from concurrent.futures import ThreadPoolExecutor

    from audit.replay.parallel import WorkerContext, policy_digests, run_segment

    policy, approvals = load_policy(POLICIES), load_approvals(APPROVALS_LOG, keyring)
    jobs = _fixture_jobs(keyring)
    alone = FastReplay.for_policy(policy, approvals)
    expected = [judge_segment(alone, job) for job in jobs]
    ctx = WorkerContext(POLICIES, policy_digests(policy), approvals)
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda job: run_segment(ctx, job), jobs * 2))
        for got, want in zip(results, expected * 2, strict=True):
            assert got.findings == want.findings
            assert got.partial is not None and want.partial is not None
            assert got.partial.stats.events == want.partial.stats.events == got.events


def test_workers_report_the_first_bad_event_in_log_order_like_one_process(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    # Two malformed events, in the second and the last segment: whichever process
    # judges them first, the error reported is the earlier one, as in one process.
    records = [
        _event("a", "2021-10-01T00:00:00Z", "us-1", "US"),
        b'{"event_id":"bad-1","time":"2021-10-01T00:00:00Z"}',
        *(_event(f"g{i}", "2021-10-02T00:00:00Z", "us-2", "US") for i in range(6)),
        b'{"action":"read","event_id":"bad-2","time":"2021-10-03T00:00:00Z"}',
    ]
    log = tmp_path / "log"
    producer = load_private_key(KEYS / "log-producer.key", b"residency-audit-fixtures-TEST-ONLY")
    seal(iter(records), out=log, key=producer, origin="bad", record_type=ACCESS_RECORD_TYPE, segment_size=1)
    errors = []
    for name, workers in (("one", 1), ("two", 2), ("four", 4)):
        with pytest.raises(InputError) as caught:
            replay(
                log,
                keyring,
                APPROVALS_LOG,
                POLICIES,
                auditor_key,
                tmp_path / name,
                now=NOW,
                execution=Execution(workers=workers),
            )
        errors.append(str(caught.value))
    assert "00000001.jsonl:1" in errors[0]
    assert errors[1] == errors[0] and errors[2] == errors[0]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_children_leave_ctrl_c_to_the_parent(
    keyring: Keyring, method: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C reaches the whole process group: a child, starting or idle, must neither die nor print a traceback.

    Regression: an idle child (waiting for its next segment) raised KeyboardInterrupt
    in the pool's loop and printed its traceback under the parent's one-line error.
    """
    import signal
    import time

    from audit.replay.parallel import WorkerContext, local_pool, policy_digests, submit_segment

    policy, approvals = load_policy(POLICIES), load_approvals(APPROVALS_LOG, keyring)
    jobs = _fixture_jobs(keyring)
    before = {p.pid for p in multiprocessing.active_children()}
    pool = local_pool(WorkerContext(POLICIES, policy_digests(policy), approvals), 1, method)
    try:
        first = submit_segment(pool, jobs[0])  # starts the child
        (child,) = [p for p in multiprocessing.active_children() if p.pid not in before]
        assert child.pid is not None
        os.kill(child.pid, signal.SIGINT)  # while it starts (a spawned child is still importing)
        assert first.result(timeout=120).partial is not None
        os.kill(child.pid, signal.SIGINT)  # while it waits for work
        time.sleep(0.3)
        second = submit_segment(pool, jobs[1])
        assert second.result(timeout=120).partial is not None
        assert child.is_alive()
    finally:
        pool.shutdown()
    assert "KeyboardInterrupt" not in capfd.readouterr().err


def test_near_the_end_children_hold_only_their_share_of_what_is_left(keyring: Keyring) -> None:
    """A segment a child took cannot be taken back: near the end each child holds the one it judges, one
    queued, and its share of those left, so this process does not wait for three segments at the end."""
    from audit.replay.parallel import QUEUED_PER_CHILD, _tail_window

    one, three = QUEUED_PER_CHILD, 3 * QUEUED_PER_CHILD  # the window of one child and of three
    assert [_tail_window(one, left) for left in (0, 1, 2, 3, 100)] == [2, 2, 3, 3, 3]
    assert [_tail_window(three, left) for left in (0, 1, 2, 4, 100)] == [6, 6, 7, 9, 9]
    verifier = LogVerifier(ACCESS_LOG, keyring, defer_content=True)
    assert verifier.index_end == 0  # nothing listed before the scan
    indexes = [segment.index for segment in verifier.segments()]
    assert verifier.index_end == indexes[-1] + 1 == len(list((ACCESS_LOG / "checkpoints").iterdir()))


def test_a_forked_child_judges_with_the_replay_it_inherited(keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forked children use their copy of the parent's replay (its policy and approvals as loaded); they load
    nothing again. Here loading fails in the child (the patch is inherited), so a reload would fail the job."""
    from audit.replay.parallel import WorkerContext, local_pool, policy_digests, submit_segment

    policy, approvals = load_policy(POLICIES), load_approvals(APPROVALS_LOG, keyring)
    here = FastReplay.for_policy(policy, approvals)
    job = _fixture_jobs(keyring)[0]
    expected = judge_segment(FastReplay.for_policy(policy, approvals), job)

    def no_reload(_: Path) -> None:
        raise AssertionError("a forked child loaded the policy again")

    monkeypatch.setattr(parallel, "load_policy", no_reload)
    ctx = WorkerContext(POLICIES, policy_digests(policy), approvals)
    for replay_given, works in ((here, True), (None, False)):
        pool = local_pool(ctx, 1, "fork", replay_given)
        try:
            future = submit_segment(pool, job)
            if works:
                assert future.result(timeout=120).findings == expected.findings
            else:
                with pytest.raises(AssertionError, match="loaded the policy again"):
                    future.result(timeout=120)
        finally:
            pool.shutdown()


def test_without_signal_masks_the_pool_still_runs(keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where threads have no signal mask (Windows), submitting and starting children skip the masking."""
    import signal

    from audit import interrupts
    from audit.replay.parallel import WorkerContext, local_pool, policy_digests, submit_segment

    monkeypatch.setattr(interrupts, "_CAN_MASK", False)
    monkeypatch.setattr(signal, "pthread_sigmask", None)  # any use would raise TypeError
    policy, approvals = load_policy(POLICIES), load_approvals(APPROVALS_LOG, keyring)
    job = _fixture_jobs(keyring)[0]
    pool = local_pool(WorkerContext(POLICIES, policy_digests(policy), approvals), 1, "fork")
    try:
        assert submit_segment(pool, job).result(timeout=120).partial is not None
    finally:
        pool.shutdown()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_stuck_child_is_killed_after_the_grace_not_waited_for(keyring: Keyring, method: str) -> None:
    """Children ignore Ctrl-C, so a stopped replay must not wait for ever on one stuck in a segment (a hung
    network share): after the grace it is killed, and the pool then shuts down at once."""
    import time

    from audit.replay.parallel import WorkerContext, local_pool, policy_digests, stop_pool

    policy, approvals = load_policy(POLICIES), load_approvals(APPROVALS_LOG, keyring)
    pool = local_pool(WorkerContext(POLICIES, policy_digests(policy), approvals), 1, method)
    before = {p.pid for p in multiprocessing.active_children()}
    stuck = pool.submit(time.sleep, 600)  # what a segment read blocked on a dead mount looks like
    (child,) = [p for p in multiprocessing.active_children() if p.pid not in before]
    queued = pool.submit(time.sleep, 600)
    time.sleep(0.5 if method == "fork" else 3)  # the child has started the first
    started = time.monotonic()
    stop_pool(pool, grace=0.5)
    pool.shutdown()
    assert time.monotonic() - started < 30
    assert not child.is_alive()
    assert not stuck.done() or stuck.exception() is not None  # never a result from a killed child
    assert queued.cancelled() or queued.exception() is not None


def test_the_replay_keeps_segments_back_from_the_workers_near_the_end(keyring: Keyring) -> None:
    """With two children (window 6) and none finishing, the fifth and sixth of six segments are judged here:
    by then the workers hold 4, their share of what is left. Without the tail window all six went to them."""
    policy, approvals = load_policy(POLICIES), load_approvals(APPROVALS_LOG, keyring)
    here = FastReplay.for_policy(policy, approvals)
    submitted: list[str] = []

    def submit(job: SegmentJob) -> Future[SegmentResult]:
        submitted.append(job.name)
        return Future()  # pending: no worker takes it, and it is taken back at the end

    verifier = LogVerifier(ACCESS_LOG, keyring, defer_content=True)
    stream = _pipelined(
        ACCESS_LOG,
        verifier,
        ReplayEngine(policy, approvals, load_rules()),
        submit,
        2 * parallel.QUEUED_PER_CHILD,
        None,
        local=lambda job: judge_segment(here, job),
    )
    assert len(list(stream)) == 70 and verifier.report().ok
    assert verifier.index_end == 6
    assert submitted == [f"segments/0000000{i}.jsonl" for i in range(4)]
