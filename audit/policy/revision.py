"""Which git revision the policy directory is at, for the report's policy summary.

:func:`policy_git_revision` runs ``git`` with a fixed argument list (no shell, the
fsmonitor hook disabled) and returns ``None`` when the directory is not in a git
repository or git is missing. It does not read or judge policy files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


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
