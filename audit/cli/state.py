"""Process-wide CLI settings (the global options) and structlog configuration.

Diagnostic logs go to stderr (JSON with ``--log-format json``); results go to
stdout. Info and progress messages appear only with ``--verbose``; warnings and
errors always (unless ``--quiet``, which keeps errors only). Nothing here ever logs
key material.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from audit.reading import DEFAULT_MAX_ERRORS, MAX_ERRORS

if TYPE_CHECKING:
    import structlog


@dataclass
class CliState:
    """The global options; the root callback resets them at every invocation."""

    quiet: bool = False
    debug: bool = False
    verbose: bool = False
    log_json: bool = False
    max_errors: int = DEFAULT_MAX_ERRORS
    logging_stale: bool = True
    """The options changed since structlog was last configured (it is configured on first use)."""


STATE = CliState()


def apply_global(name: str, value: object) -> None:
    """Set one global option (``log_format``, ``quiet``, ``verbose``, ``debug``, ``max_errors``) and apply it."""
    if name == "log_format":
        STATE.log_json = str(value) == "json"
    elif name == "max_errors":
        STATE.max_errors = int(str(value))
    elif name in ("quiet", "verbose", "debug"):
        setattr(STATE, name, bool(value))
    MAX_ERRORS.set(STATE.max_errors)
    STATE.logging_stale = True


def logger() -> structlog.typing.FilteringBoundLogger:
    """The CLI's structlog logger, configured from the global options as they are now.

    structlog is imported and configured here, on the first message of an invocation,
    not at start-up: ``--help`` and commands that log nothing never load it.
    """
    import structlog

    if STATE.logging_stale:
        configure_logging(json=STATE.log_json, quiet=STATE.quiet, verbose=STATE.verbose or STATE.debug)
        STATE.logging_stale = False
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("residency-audit")
    return logger


def configure_logging(*, json: bool, quiet: bool, verbose: bool = False) -> None:
    """Route structlog to stderr as JSON or console lines: info only when verbose, errors only when quiet."""
    import logging

    import structlog

    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    level = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
