"""Shared CLI plumbing: consoles, progress bars, showing a rendering, and key loading.

Only the CLI layer imports this module; library code never prints.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from rich.console import Console

from audit.cli.state import STATE
from audit.enums import KeyPurpose
from audit.fsio import atomic_write

if TYPE_CHECKING:  # the modules below load when a command first needs them, not at start-up
    from rich.progress import Progress

    from audit.report.formats.interface import Rendering
    from audit.signing.keys import SigningKey


class _Console(Console):
    """A console that goes quiet when its reader is gone (``| head``, a closed stdout).

    rich's default exits 1 on a broken pipe; here the command carries on and keeps
    its own exit code (a closed stdout never turns exit 3 into anything else).
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _silence(self.file)


def _silence(stream: IO[str]) -> None:
    """Point ``stream``'s descriptor at /dev/null so no later write or flush fails (best effort)."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a real file (tests capture output): nothing is flushed at exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def finish_stdout(code: int) -> int:
    """Flush stdout now, so a reader that went away cannot change ``code`` at interpreter exit; return ``code``."""
    if sys.stdout is None:  # started with stdout closed: there is nothing to flush
        return code
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):  # reader gone, or stdout closed
        _silence(sys.stdout)
    return code


_FILE_WIDTH = 120
"""Text reports written with ``--output`` are wrapped at this width."""

out = _Console(highlight=False, soft_wrap=True)
err = _Console(stderr=True, highlight=False, soft_wrap=True)


def show(rendering: Rendering, output: Path | None = None, summary: str = "") -> None:
    """Print a format's lines or its document; with ``output``, write either atomically there and print ``summary``."""
    if not isinstance(rendering, bytes) and output is not None:
        text = Console(file=io.StringIO(), width=_FILE_WIDTH, no_color=True, highlight=False, soft_wrap=True)
        for line in rendering:
            text.print(line, markup=False)
        rendering = cast(io.StringIO, text.file).getvalue().encode("utf-8")
    if not isinstance(rendering, bytes):
        for line in rendering:
            out.print(line, markup=False)
    elif output is None:
        out.print(rendering.decode("utf-8").rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    else:
        atomic_write(output, rendering)
        out.print(f"{summary}; report written to {output}", markup=False)


def purposes(values: list[KeyPurpose]) -> tuple[KeyPurpose, ...]:
    """Distinct purposes in the order given (``--purpose``, repeatable)."""
    return tuple(dict.fromkeys(values))


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Progress]:
    """A progress bar with a rate on stderr, silent when not a TTY or with --quiet."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class _RateColumn(ProgressColumn):
        """Items per second, as rich estimates it."""

        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:,.0f}/s" if task.speed else "")

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=STATE.quiet or not err.is_terminal,
        transient=True,
    )
    with bar:
        bar.add_task(label, total=total)
        yield bar


def signing_key(path: Path) -> SigningKey:
    """Load a private key with the passphrase from $RESIDENCY_AUDIT_KEY_PASSPHRASE; warn if its KDF is weak."""
    from audit.signing.keys import load_private_key, passphrase_from_env

    key = load_private_key(path, passphrase_from_env())
    if key.weak_encryption:
        err.print(
            f"WARNING: {path} is encrypted with a weak key derivation (PKCS#8, PBKDF2 with 2,048 iterations); "
            f"re-encrypt it: residency-audit keygen --reencrypt {path}",
            markup=False,
        )
    return key
