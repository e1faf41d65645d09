"""Options of a replay, as small frozen values the caller builds once (the CLI, the demo, tests).

:class:`Execution` says where segments are judged: in this process, on ``workers``
local processes, or on a dask.distributed cluster (:class:`Engine`).
:class:`CompletenessPin` says what the log is pinned to (a trusted checkpoint, an
expected size) and whether an unproven log is refused. Each checks its own
consistency when built and raises :class:`~audit.errors.InputError`; nothing here
runs a replay (see :func:`audit.pipeline.replay`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from audit.errors import InputError

if TYPE_CHECKING:  # only an annotation: the CLI imports Engine at start-up, without the log machinery
    from audit.logs.trusted import SignedCheckpoint


class Engine(StrEnum):
    """Where replay work runs."""

    local = "local"
    dask = "dask"


@dataclass(frozen=True)
class Execution:
    """How a replay runs: ``workers`` local processes, or a dask cluster (``scheduler``, or a local one).

    Every choice yields the same findings; only the speed differs.
    """

    workers: int = 1
    engine: Engine = Engine.local
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.scheduler is not None and self.engine is not Engine.dask:
            raise InputError("--scheduler needs --engine dask")

    @property
    def in_process(self) -> bool:
        """True when this process judges every segment itself (local engine, at most one worker)."""
        return self.engine is Engine.local and self.workers <= 1


@dataclass(frozen=True)
class CompletenessPin:
    """What proves the log complete: a checkpoint kept from earlier and/or a size it must reach.

    Without either, completeness is unproven and the report says so;
    ``require_complete`` refuses such a log instead.
    """

    trusted_checkpoint: SignedCheckpoint | None = None
    expected_size: int | None = None
    require_complete: bool = False

    def __post_init__(self) -> None:
        if self.expected_size is not None and self.expected_size < 1:
            raise InputError(f"expected size must be at least 1, got {self.expected_size}")
