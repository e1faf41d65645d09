"""Process-wide CLI settings (quiet mode) and structlog configuration.

Diagnostic logs go to stderr (JSON with ``--log-format json``); results go to
stdout. Nothing here ever logs key material.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

import structlog


@dataclass
class CliState:
    """Options the root callback sets at every invocation."""

    quiet: bool = False
    debug: bool = False


STATE = CliState()


def configure_logging(*, json: bool, quiet: bool) -> None:
    """Route structlog to stderr as JSON or console lines; warnings only when quiet."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING if quiet else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
