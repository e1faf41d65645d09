"""The event-id index of a log: which leaf holds which record id, in SQLite — derived data, never trusted.

What it does: :class:`IdIndex` maps each record's ``event_id`` (or ``approval_id``)
to its leaf, segment and line, in a SQLite database (stdlib ``sqlite3``): the file
``LOGDIR/event-ids.sqlite`` when kept, or an anonymous temporary database on disk
for one run. ``log seal`` and ``log append`` use it to refuse duplicate ids (within
the input and against every id already in the log) without holding the ids in
memory; ``log prove inclusion --event`` uses it to find a record without parsing
the whole log.

The index is not part of the log: nothing signs it and ``log verify`` ignores it. It
records the ``tree_size`` and ``root`` of the log it describes. :class:`IndexSync`
checks it while the log is being verified: rows for leaves the index already had are
hashed and compared with the ids of the verified records at that size (and the
signed root with the recorded one), rows beyond are added. If anything differs
(stale, from another log, edited), :func:`rebuild_index` rebuilds it from the
verified segments. A lookup that finds a record is always confirmed against the
verified record bytes by the caller.

What it does not do: it does not verify logs (:mod:`audit.logs.verify` does), hold
locks (the caller holds the log's lock while writing), or store records.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from audit.errors import InputError, IntegrityError
from audit.logs.checkpoint import segment_name
from audit.logs.verify import LogVerifier, VerificationReport, VerifiedSegment, describe_problems
from audit.signing.keys import Keyring

INDEX_FILE = "event-ids.sqlite"
"""The kept index, directly in the log directory (ignored by ``log verify``)."""
INDEX_FORMAT = "residency-audit/event-id-index/v1"
ID_FIELDS = ("event_id", "approval_id")
"""Record members that identify a record (the first string one present counts)."""

_ID_INDEX = "CREATE INDEX IF NOT EXISTS ids_by_id ON ids (id)"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ids (leaf INTEGER PRIMARY KEY, id TEXT NOT NULL, segment INTEGER NOT NULL, "
    "line INTEGER NOT NULL)",
    _ID_INDEX,
)


def record_id(line: bytes) -> str | None:
    """The ``event_id`` (or ``approval_id``) of a record's bytes, None if it has none."""
    if not any(f'"{name}":'.encode() in line for name in ID_FIELDS):
        return None
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    for name in ID_FIELDS:
        found = value.get(name)
        if isinstance(found, str):
            return found
    return None


@dataclass(frozen=True)
class IdLocation:
    """Where a record id is: its leaf, and the segment index and 1-based line holding it."""

    leaf: int
    segment: int
    line: int

    def describe(self) -> str:
        return f"{segment_name(self.segment)}:{self.line}"


Row = tuple[int, str, int, int]
"""``(leaf, id, segment, line)``."""


def _row_bytes(row: Row) -> bytes:
    return orjson.dumps(row) + b"\n"


class IdIndex:
    """An open index; ``path`` None means a temporary database removed on :meth:`close`.

    Every SQLite failure becomes :class:`InputError` naming the file (disk full, read-only).
    A kept file that is not a usable index is replaced (it is derived data).
    """

    def __init__(self, path: Path | None = None, *, readonly: bool = False) -> None:
        self.path = path
        self._db = self._open_readonly() if readonly else self._connect()
        self._deferred = False
        """The id index is dropped while a new log's rows are loaded (:meth:`load_new`)."""

    def load_new(self) -> None:
        """Prepare an empty index for a new log's rows: the lookup index on ids is built when first
        needed (a lookup, a duplicate check or :meth:`commit`), sorted at once, instead of row by row
        (random ids make each insert a random B-tree update). ValueError if the index holds rows."""
        try:
            if self._db.execute("SELECT 1 FROM ids LIMIT 1").fetchone() is not None:
                raise ValueError("load_new needs an empty index")
            self._db.execute("DROP INDEX IF EXISTS ids_by_id")
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        self._deferred = True

    def _lookups(self) -> None:
        """Build the lookup index on ids if :meth:`load_new` deferred it."""
        if self._deferred:
            try:
                self._db.execute(_ID_INDEX)
            except sqlite3.Error as exc:
                raise self._fail(exc) from None
            self._deferred = False

    @classmethod
    def kept(cls, logdir: Path) -> IdIndex:
        """The index kept in ``logdir`` (created empty if absent)."""
        return cls(Path(logdir) / INDEX_FILE)

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "temporary event-id index"

    def _fail(self, exc: sqlite3.Error) -> InputError:
        return InputError(f"cannot write: {exc}", path=self._where())

    def _open_readonly(self) -> sqlite3.Connection:
        """Open a kept index for lookups only (never created, changed or replaced)."""
        if self.path is None:
            raise ValueError("a temporary index cannot be opened read-only")
        try:
            db = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            raise InputError(f"cannot read: {exc}", path=self.path) from None
        try:
            found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.Error as exc:
            db.close()
            raise InputError(f"not an event-id index: {exc}", path=self.path) from None
        if found is None or found[0] != INDEX_FORMAT:
            db.close()
            raise InputError(f"not a {INDEX_FORMAT} database", path=self.path)
        return db

    def _connect(self) -> sqlite3.Connection:
        for attempt in range(2):
            db: sqlite3.Connection | None = None
            try:
                db = sqlite3.connect(str(self.path) if self.path is not None else "", isolation_level=None)
                for statement in _SCHEMA:
                    db.execute(statement)
                found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
                if found is None:
                    db.execute("INSERT INTO meta VALUES ('format', ?)", (INDEX_FORMAT,))
                elif found[0] != INDEX_FORMAT:
                    raise sqlite3.DatabaseError(f"not a {INDEX_FORMAT} database")
                return db
            except sqlite3.DatabaseError as exc:
                if db is not None:
                    db.close()
                if self.path is None or attempt or isinstance(exc, sqlite3.OperationalError):
                    raise self._fail(exc) from None
                with contextlib.suppress(OSError):
                    self.path.unlink()  # not an index (or another format): derived data, start again
        raise AssertionError("unreachable")

    def state(self) -> tuple[int, str] | None:
        """``(tree_size, root)`` of the log the index describes, None if it describes none."""
        rows = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN ('tree_size', 'root')").fetchall())
        if "tree_size" not in rows or "root" not in rows:
            return None
        try:
            return int(rows["tree_size"]), str(rows["root"])
        except ValueError:
            return None

    def begin(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def commit(self, tree_size: int, root: str) -> None:
        """Record that the index now describes the log of ``tree_size`` leaves with ``root``, and commit."""
        self._lookups()
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", [("tree_size", str(tree_size)), ("root", root)]
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def forget(self, from_leaf: int = 0) -> None:
        """Drop the rows of leaves ``from_leaf`` and later (all by default) and the recorded state."""
        try:
            self._db.execute("DELETE FROM ids WHERE leaf >= ?", (from_leaf,))
            self._db.execute("DELETE FROM meta WHERE key IN ('tree_size', 'root')")
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def add(self, rows: Iterable[Row]) -> None:
        try:
            self._db.executemany("INSERT INTO ids (leaf, id, segment, line) VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def add_lines(self, first: int, segment: int, ids: list[str]) -> None:
        """Add the ids of lines 1, 2, ... of ``segment``, whose line 1 is leaf ``first`` (every line has an id).

        The same rows as :meth:`add`, passed to SQLite as one JSON array (``json_each``)
        instead of one bound row at a time. Only when no id needs a JSON escape (a quote,
        backslash or control character), so SQLite reads each id back exactly as written;
        otherwise row by row.
        """
        try:
            data = orjson.dumps(ids)
        except orjson.JSONEncodeError:
            data = b"\\"
        if b"\\" in data:
            self.add((first + number, found, segment, number + 1) for number, found in enumerate(ids))
            return
        try:
            self._db.execute(
                "INSERT INTO ids (leaf, id, segment, line) SELECT ? + key, value, ?, key + 1 FROM json_each(?)",
                (first, segment, data.decode()),
            )
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def find(self, record: str) -> list[IdLocation]:
        """Every location of id ``record``, in leaf order."""
        self._lookups()
        found = self._db.execute("SELECT leaf, segment, line FROM ids WHERE id = ? ORDER BY leaf", (record,))
        return [IdLocation(leaf, segment, line) for leaf, segment, line in found]

    def rows_digest(self, below: int) -> str:
        """SHA-256 over the rows of leaves below ``below``, in leaf order (compared by :class:`IndexSync`)."""
        digest = hashlib.sha256()
        for row in self._db.execute("SELECT leaf, id, segment, line FROM ids WHERE leaf < ? ORDER BY leaf", (below,)):
            digest.update(_row_bytes(row))
        return digest.hexdigest()

    def first_duplicate(self) -> tuple[str, IdLocation, IdLocation] | None:
        """The first record (in leaf order) whose id an earlier record has: ``(id, earlier, it)``."""
        self._lookups()
        if self._db.execute("SELECT 1 FROM ids GROUP BY id HAVING count(*) > 1 LIMIT 1").fetchone() is None:
            return None  # one pass over the sorted ids; the query below looks each id up
        found = self._db.execute(
            "SELECT b.id, a.leaf, a.segment, a.line, b.leaf, b.segment, b.line FROM ids b JOIN ids a "
            "ON a.id = b.id AND a.leaf < b.leaf ORDER BY b.leaf, a.leaf LIMIT 1"
        ).fetchone()
        if found is None:
            return None
        return found[0], IdLocation(*found[1:4]), IdLocation(*found[4:7])

    def clear_input(self) -> None:
        """Start staging the ids of an input to append, in a temporary table (:meth:`add_input`)."""
        try:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS input_ids (number INTEGER PRIMARY KEY, id TEXT NOT NULL)")
            self._db.execute("CREATE INDEX IF NOT EXISTS temp.input_by_id ON input_ids (id)")
            self._db.execute("DELETE FROM input_ids")
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def add_input(self, rows: Iterable[tuple[int, str]]) -> None:
        """Stage ``(record number, id)`` rows of the input."""
        try:
            self._db.executemany("INSERT INTO input_ids VALUES (?, ?)", rows)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def input_duplicate(self) -> tuple[str, int, int] | None:
        """The first staged input record whose id an earlier one has: ``(id, earlier number, its number)``."""
        found = self._db.execute(
            "SELECT b.id, a.number, b.number FROM input_ids b JOIN input_ids a ON a.id = b.id AND a.number < b.number "
            "ORDER BY b.number, a.number LIMIT 1"
        ).fetchone()
        return (found[0], found[1], found[2]) if found is not None else None

    def input_clash(self, *, resumed: int, start: int) -> tuple[str, int, IdLocation] | None:
        """The first staged input record whose id the log already holds: ``(id, number, where)``.

        The first ``resumed`` input records are allowed at leaves ``start``, ``start + 1``, ...
        (checkpointed by the interrupted run of the same input being resumed).
        """
        self._lookups()
        found = self._db.execute(
            "SELECT i.id, i.number, l.leaf, l.segment, l.line FROM input_ids i JOIN ids l ON l.id = i.id "
            "WHERE NOT (i.number <= ? AND l.leaf = ? + i.number - 1) ORDER BY i.number, l.leaf LIMIT 1",
            (resumed, start),
        ).fetchone()
        return (found[0], found[1], IdLocation(*found[2:5])) if found is not None else None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


def segment_rows(segment: VerifiedSegment) -> list[Row]:
    """The index rows of a verified segment's records that carry an id."""
    rows: list[Row] = []
    for number, raw in enumerate(segment.records, start=1):
        found = record_id(raw)
        if found is not None:
            rows.append((segment.first + number - 1, found, segment.index, number))
    return rows


class IndexSync:
    """Check an index against a log while it is verified, and add what the log has beyond it.

    Feed every verified segment, in order, to :meth:`feed`; then :attr:`matches` says
    whether the rows the index had are exactly the ids of the log's first records (and
    its recorded root the signed one at that size). The new rows are added inside a
    transaction the caller commits (:meth:`IdIndex.commit`) or rolls back.
    """

    def __init__(self, index: IdIndex) -> None:
        self.index = index
        state = index.state()
        self.base = state[0] if state is not None else 0
        self.base_root: str | None = state[1] if state is not None else None
        self.matches = state is None
        self._digest = hashlib.sha256()
        index.begin()
        index.forget(self.base)

    def feed(self, segment: VerifiedSegment) -> None:
        rows = segment_rows(segment)
        for row in rows:
            if row[0] < self.base:
                self._digest.update(_row_bytes(row))
        self.index.add(row for row in rows if row[0] >= self.base)
        if segment.body.tree_size == self.base:
            self.matches = segment.body.root == self.base_root and self._digest.hexdigest() == self.index.rows_digest(
                self.base
            )


def rebuild_index(index: IdIndex, logdir: Path, keyring: Keyring, *, tree_size: int, root: str) -> None:
    """Rebuild ``index`` from the verified segments of ``logdir``; it must still be the log of ``tree_size``/``root``.

    Leaves the rows inside an open transaction (commit with :meth:`IdIndex.commit`).
    IntegrityError if the log no longer verifies or changed since.
    """
    index.rollback()
    index.begin()
    index.forget()
    verifier = LogVerifier(logdir, keyring)
    for segment in verifier.segments():
        index.add(segment_rows(segment))
    report = verifier.report()
    if not report.ok and any(p.code != "append-interrupted" for p in report.problems):
        raise IntegrityError(f"the log does not verify ({describe_problems(report.problems)})", path=logdir)
    if (report.tree_size, report.root) != (tree_size, root):
        raise IntegrityError(
            f"the log changed while its event-id index was rebuilt (size {report.tree_size})", path=logdir
        )


class RowsDigest:
    """SHA-256 over the index rows of verified segments fed in order (what :meth:`IdIndex.rows_digest` holds)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def feed(self, segment: VerifiedSegment) -> None:
        for row in segment_rows(segment):
            self._digest.update(_row_bytes(row))

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def index_disagreement(logdir: Path, report: VerificationReport, rows: RowsDigest) -> str | None:
    """Why the index kept in ``logdir`` does not describe the verified log, or None if it does (or is absent).

    ``rows`` was fed every segment of the verification that made ``report`` (one
    pass over the log). The index is derived data, never trusted: its recorded size
    and root and every (leaf, id, segment, line) row are compared with the log. A
    disagreement is not a problem of the log itself (the next append rebuilds the
    index); ``log verify`` reports it so a tampered or stale index is seen.
    """
    path = Path(logdir) / INDEX_FILE
    if not path.is_file():
        return None
    try:
        index = IdIndex(path, readonly=True)
    except InputError as exc:
        return exc.reason
    try:
        state = index.state()
        if state != (report.tree_size, report.root):
            return f"describes {'no log' if state is None else f'a log of {state[0]} records'}, not this one"
        if rows.hexdigest() != index.rows_digest(report.tree_size):
            return "its rows are not the ids of the log's records"
        return None
    except sqlite3.Error as exc:
        return f"unreadable: {exc}"
    finally:
        index.close()
