"""Store providers: one module per source of data-store records.

Each provider lists the stores it can see as :class:`~audit.residency.models.DataStore`
records and, once the scan is done, says what it covered (:class:`ScanScope`). Cloud
SDKs are imported and clients built inside :meth:`StoreProvider.scan`, never at
import time. Providers raise :class:`~audit.errors.ScanError` for
authentication, permission and network failures, and
:class:`~audit.errors.InputError` for bad configuration or input files; they do not
judge stores (see :mod:`audit.residency.rules`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from audit.report.residency import ScanScope
from audit.residency.models import DataStore, ResidencySettings

__all__ = ["StoreProvider"]


class StoreProvider(Protocol):
    """Something that lists data stores."""

    def scan(self, settings: ResidencySettings) -> Iterator[DataStore]:
        """Yield every store visible to this provider."""
        ...

    def scope(self) -> ScanScope:
        """What the finished scan covered (account, regions)."""
        ...
