"""One finding's ``findings.csv`` row and ``findings.ocsf.jsonl`` line, without the general encoders' per-cell work.

What it does: :class:`CsvLines` writes a finding's CSV row as the ``csv`` module
(excel dialect, minimal quoting, ``\\r\\n``) writes the formula-safe row of
:func:`audit.report.exports.findings_csv`, remembering the cells of values that
repeat (titles, rules, actors, stores) and the last time it formatted;
:class:`OcsfLines` writes the canonical bytes of
:func:`audit.report.exports.ocsf_finding` by putting orjson's dump of each value
between the fixed pieces of the object in sorted-key order (the way the CloudTrail
fast path writes events, ADR 0011). Tests hold both equal to the general
encoders on the fixture reports and on generated findings (odd Unicode, quotes,
commas, line breaks, formula starts, every optional field absent or present).

What it relies on: a :class:`~audit.models.Finding`'s id (``F-`` and hex digits),
commitment (``C`` and digits), severity (a ``Literal``) and time (an ISO form) need
neither quoting nor a formula guard. It does not write files (the sinks of
:class:`audit.report.exports.FindingExports` do).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

import orjson

from audit import __version__
from audit.models import FindingView

FORMULA_START = frozenset("=+-@\t\r")
"""First characters a spreadsheet would run as a formula: such a cell gets a leading ``'``."""
SEVERITY_IDS = {"low": 2, "medium": 3, "high": 4, "critical": 5}
OCSF_VERSION = "1.2.0"
OCSF_PROFILES = ("host",)
"""Declared in ``metadata.profiles``: the host profile adds ``actor`` (who accessed the data)."""
_NEEDS_QUOTES = re.compile('[,"\r\n]').search
"""What makes the ``csv`` module quote a field (delimiter, quote character, line breaks)."""
T = TypeVar("T")
_CELLS_KEPT = 16_384
"""Cells (or dumped strings) remembered by :class:`CsvLines` (:class:`OcsfLines`) before it starts again."""


def csv_cell(value: str) -> str:
    """``value`` as a formula-safe CSV field, quoted as the ``csv`` module quotes it."""
    if value and value[0] in FORMULA_START:
        value = "'" + value
    if _NEEDS_QUOTES(value) is None:
        return value
    return '"' + value.replace('"', '""') + '"'


class _Memo(dict[str, T]):
    """``make`` of each string asked for, remembered (at most :data:`_CELLS_KEPT`, then it starts again)."""

    def __init__(self, make: Callable[[str], T]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, value: str) -> T:
        if len(self) >= _CELLS_KEPT:
            self.clear()
        made = self[value] = self._make(value)
        return made


class _LastTime(Generic[T]):
    """``make`` of a time, remembered for the next finding.

    ``findings.jsonl`` is in time order, so the findings of one event, and of events in
    the same second, come one after another; formatting an aware time costs about 20
    times what comparing two does. Only a time with the very same fields, ``fold`` and
    ``tzinfo`` object reuses what was made (equal instants in other zones would not
    format alike).
    """

    def __init__(self, make: Callable[[datetime], T]) -> None:
        self._make = make
        self._last: tuple[datetime, T] | None = None

    def __call__(self, time: datetime) -> T:
        last = self._last
        if last is not None:
            before, made = last
            if time == before and time.tzinfo is before.tzinfo and time.fold == before.fold:
                return made
        made = self._make(time)
        self._last = (time, made)
        return made


class CsvLines:
    """``findings.csv`` rows, one finding at a time (the memo of repeated cells lives as long as this)."""

    def __init__(self) -> None:
        self._cells = _Memo(csv_cell)
        self._time = _LastTime(datetime.isoformat)

    def line(self, f: FindingView) -> str:
        """The row of ``f`` with its ``\\r\\n``: the bytes ``findings_csv`` writes for it, decoded."""
        cells = self._cells
        position, row = f.position, f.policy_row
        return (
            ",".join(
                (
                    f.id,
                    self._time(f.time),
                    f.severity,
                    f.commitment,
                    cells[f.rule_id],
                    cells[f.title],
                    cells[f.actor_id],
                    cells[f.actor_country or ""],
                    cells[f.store or ""],
                    cells[f.region or ""],
                    csv_cell(" ".join(f.event_ids)),
                    cells[" ".join(f.approval_ids)],
                    csv_cell(f"{position.segment}:{position.line}") if position else "",
                    cells[f"{row.file}:{row.line}" if row else "default deny"],
                    cells[f.waiver or ""],
                    cells[f.message],
                    cells[f.remediation],
                )
            )
            + "\r\n"
        )


def time_millis(f: FindingView) -> int:
    """The finding's time in milliseconds since the epoch, as OCSF states times."""
    return _millis(f.time)


def _millis(time: datetime) -> int:
    return int(time.timestamp() * 1000)


def _millis_text(time: datetime) -> bytes:
    """:func:`time_millis` of a finding at ``time``, as JSON."""
    return b"%d" % _millis(time)


_dumps = orjson.dumps
_SEVERITY = {name: (_dumps(name.capitalize()), b"%d" % number) for name, number in SEVERITY_IDS.items()}
_HEAD = b'{"activity_id":1,"activity_name":"Create","actor":{"user":{"uid":'
_INFO = (
    b'}},"category_name":"Findings","category_uid":2,"class_name":"Detection Finding","class_uid":2004,'
    b'"finding_info":{"analytic":{"name":'
)
_METADATA = (
    b'"metadata":{"product":{"name":"residency-audit","vendor_name":"residency-audit","version":'
    + _dumps(__version__)
    + b"},"
    + b'"profiles":'
    + _dumps(list(OCSF_PROFILES))
    + b',"uid":'
)
_METADATA_END = b',"version":' + _dumps(OCSF_VERSION) + b'},"remediation":{"desc":'
_NEW = b',"status":"New","status_id":1,"time":'
_SUPPRESSED = b',"status":"Suppressed","status_id":3,"time":'
_TAIL = b',"type_name":"Detection Finding: Create","type_uid":200401,"unmapped":{'


def _related(event_ids: tuple[str, ...]) -> bytes:
    """``_dumps([{"uid": event_id} for event_id in event_ids])``, without a dict and a list per finding."""
    if len(event_ids) == 1:
        return b'[{"uid":' + _dumps(event_ids[0]) + b"}]"
    return b"[" + b",".join([b'{"uid":' + _dumps(event_id) + b"}" for event_id in event_ids]) + b"]"


class OcsfLines:
    """``findings.ocsf.jsonl`` lines, one finding at a time (the memo of repeated values lives as long as this)."""

    def __init__(self) -> None:
        self._dumped: _Memo[bytes] = _Memo(_dumps)
        self._millis = _LastTime(_millis_text)

    def line(self, f: FindingView, commitment_text: str) -> bytes:
        """``plain_canonical_bytes(ocsf_finding(f, commitment_text)) + b"\\n"``, built piece by piece.

        Raises :class:`orjson.JSONEncodeError` for a string orjson cannot dump (a lone
        surrogate); the caller hands such a finding to the general encoder.
        """
        dumped = self._dumped
        millis = self._millis(f.time)
        uid, message, rule = _dumps(f.id), dumped[f.message], dumped[f.rule_id]
        severity_name, severity_id = _SEVERITY[f.severity]
        parts = [
            _HEAD, dumped[f.actor_id], _INFO, rule, b',"type":"Rule","type_id":1,"uid":', rule,
            b'},"desc":', message, b',"first_seen_time":', millis, b',"last_seen_time":', millis,
            b',"related_events":', _related(f.event_ids),
            b',"title":', dumped[f.title], b',"types":[', rule, b'],"uid":', uid, b'},"message":', message, b",",
            _METADATA, uid, _METADATA_END, dumped[f.remediation], b"}",
        ]  # fmt: skip
        if f.store:
            parts += (b',"resources":[{"type":"data store","uid":', dumped[f.store], b"}]")
        parts += (b',"severity":', severity_name, b',"severity_id":', severity_id, _SUPPRESSED if f.waiver else _NEW)
        parts += (millis, _TAIL)
        if f.actor_country:
            parts += (b'"actor_country":', dumped[f.actor_country], b",")
        if f.approval_ids:
            parts += (b'"approval_ids":', _dumps(f.approval_ids), b",")
        parts += (b'"commitment":', dumped[f.commitment], b',"commitment_text":', dumped[commitment_text])
        if f.position is not None:
            parts += (b',"log_position":', _dumps(f"{f.position.segment}:{f.position.line}"))
        if f.policy_row is not None:
            parts += (b',"policy_row":', dumped[f"{f.policy_row.file}:{f.policy_row.line}"])
        if f.region:
            parts += (b',"store_region":', dumped[f.region])
        if f.waiver:
            parts += (b',"waiver":', dumped[f.waiver])
        parts.append(b"}}\n")
        return b"".join(parts)


def ocsf_bytes(f: FindingView, commitment_text: str) -> bytes:
    """One finding's line by a fresh :class:`OcsfLines` (see :meth:`OcsfLines.line`)."""
    return OcsfLines().line(f, commitment_text)
