"""audit.locking: one writer per directory, a clear error for the second, staging that killed runs leave."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

import orjson
import pytest

from audit.errors import EXIT_INPUT, InputError, LockedError
from audit.locking import STAGING_MARKER, DirectoryLock, lock_path, make_staging, sweep_staging, unmark_staging


def test_lock_file_is_a_sibling_and_is_removed_on_release(tmp_path: Path) -> None:
    target = tmp_path / "log"  # need not exist
    lock = DirectoryLock(target)
    assert lock.path == lock_path(target) == tmp_path / ".log.lock"
    with lock:
        assert lock.held and lock.path.is_file()
        assert str(os.getpid()) in lock.path.read_text()
    assert not lock.held
    assert list(tmp_path.iterdir()) == []


def test_second_lock_is_refused_naming_pid_host_and_time(tmp_path: Path) -> None:
    target = tmp_path / "log"
    with DirectoryLock(target), pytest.raises(LockedError) as caught:
        DirectoryLock(target).acquire()
    error = caught.value
    assert isinstance(error, InputError) and error.exit_code == EXIT_INPUT
    assert str(error).startswith(f"{target} is locked by PID {os.getpid()} on {socket.gethostname()} since 20")
    assert DirectoryLock(target).acquire().held  # free again


def test_the_same_directory_by_another_name_is_the_same_lock(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with DirectoryLock(tmp_path / "real"), pytest.raises(LockedError):
        DirectoryLock(tmp_path / "alias" / ".." / "real").acquire()
    with DirectoryLock(tmp_path / "real"), pytest.raises(LockedError):
        DirectoryLock(tmp_path / "alias").acquire()


def test_lock_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / ".log.lock").symlink_to(victim)
    with pytest.raises(InputError, match="cannot create lock file"):
        DirectoryLock(tmp_path / "log").acquire()
    assert victim.read_text() == "keep"


def _hold(target: str, ready: Connection) -> None:
    DirectoryLock(Path(target)).acquire()
    ready.send(os.getpid())
    signal.pause()


def test_a_killed_holder_frees_the_lock_and_its_stale_file_is_taken_over(tmp_path: Path) -> None:
    target = tmp_path / "log"
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_hold, args=(str(target), child))
    process.start()
    try:
        pid = parent.recv()
        with pytest.raises(LockedError, match=f"locked by PID {pid} on "):
            DirectoryLock(target).acquire()
    finally:
        process.kill()
        process.join()
    assert lock_path(target).exists()  # left by the killed run, but no longer locked
    with DirectoryLock(target) as lock:
        assert str(os.getpid()) in lock.path.read_text()
    assert not lock_path(target).exists()


def _outlive_parent(held: bool, report: Connection, go: Connection) -> None:
    """A forked child of a lock holder: says whether it holds the inherited lock, then lives on."""
    report.send(held)
    go.recv()


def test_a_forked_child_lets_go_of_its_parents_lock_at_once(tmp_path: Path) -> None:
    """Regression for forked replay workers: a child that kept its copy of the descriptor kept the flock held
    after its parent released it (or was killed), so the next run was refused while the child lived."""
    target = tmp_path / "report"
    ctx = multiprocessing.get_context("fork")
    report_in, report_out = ctx.Pipe()
    go_in, go_out = ctx.Pipe()
    lock = DirectoryLock(target).acquire()
    process = ctx.Process(target=lambda: _outlive_parent(lock.held, report_out, go_in))
    process.start()
    try:
        assert report_in.recv() is False  # the child's copy of the lock is not held
        assert lock.held
        with pytest.raises(LockedError):
            DirectoryLock(target).acquire()  # the parent's lock stands while the child runs
        os.close(lock._fd or -1)  # the parent dies without releasing: the kernel drops its descriptor, not the file
        lock._fd = None
        with DirectoryLock(target):  # free although the child still runs: its copy was closed at the fork
            assert process.is_alive()
    finally:
        go_out.send(None)
        process.join()


def _as_if_killed(staging: Path) -> None:
    """Rewrite a staging marker as if its run had been killed: its pid names a process that has ended."""
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    marker = orjson.loads((staging / STAGING_MARKER).read_bytes())
    (staging / STAGING_MARKER).write_bytes(orjson.dumps({**marker, "pid": int(ended.stdout)}))


def test_sweep_removes_only_marked_staging_of_the_same_target(tmp_path: Path) -> None:
    target = tmp_path / "log"
    killed = make_staging(target, ".sealing")
    (killed / "segments").mkdir()
    _as_if_killed(killed)
    alive = make_staging(target, ".sealing")  # this process's own: alive, never swept
    other_target = make_staging(tmp_path / "log.old", ".sealing")  # ".log.old.*.sealing" also matches
    foreign = tmp_path / ".log.mine.sealing"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ours")
    unmarked = make_staging(target, ".sealing")
    unmark_staging(unmarked)
    assert (killed / STAGING_MARKER).is_file() and oct(killed.stat().st_mode & 0o777) == "0o755"
    with pytest.raises(RuntimeError):
        sweep_staging(DirectoryLock(target), ".sealing")  # only while holding the lock
    with DirectoryLock(target) as lock:
        assert sweep_staging(lock, ".sealing") == [killed]
    assert not killed.exists()
    assert other_target.exists() and foreign.exists() and unmarked.exists() and alive.exists()


def test_sweep_leaves_another_hosts_staging_alone(tmp_path: Path) -> None:
    """flock may not reach across machines (NFS): a staging directory of another host is never removed."""
    target = tmp_path / "log"
    elsewhere = make_staging(target, ".sealing")
    _as_if_killed(elsewhere)
    marker = orjson.loads((elsewhere / STAGING_MARKER).read_bytes())
    (elsewhere / STAGING_MARKER).write_bytes(orjson.dumps({**marker, "host": "another-host.example"}))
    with DirectoryLock(target) as lock:
        assert sweep_staging(lock, ".sealing") == []
    assert elsewhere.exists()


def test_a_fifo_marker_does_not_hang_the_sweep(tmp_path: Path) -> None:
    target = tmp_path / "log"
    planted = tmp_path / ".log.x.sealing"
    planted.mkdir()
    os.mkfifo(planted / STAGING_MARKER)
    with DirectoryLock(target) as lock:
        assert sweep_staging(lock, ".sealing") == []  # returns at once: the marker is not a regular file
    assert planted.exists()
