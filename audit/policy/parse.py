"""Parse ``model.conf`` and policy CSV files once, collecting every problem at file:line:column.

pycasbin is lenient where an audit tool must not be: it silently drops rows of an
undefined type, truncates grouping rows with extra fields, fails on a wrong field
count only when a request is enforced, keeps trailing comments as part of values,
and reports no line numbers. This module reads both files line by line as pycasbin
does and returns what it parsed together with every :class:`Problem` it found, in
the order the rules are applied. :func:`audit.policy.load.load_pack` refuses a pack
at the first problem (an ``InputError``); :mod:`audit.policy.lint` reports them all.

Two profiles: any Casbin model/policy pair (syntax, sections, key numbering, row
types, field counts, duplicate rows), and a residency-audit pack (``pack=True`` for
the model, ``conventions=True`` for the rows) adding the pack conventions: one
definition per section, field names, the priority effect, plain role definitions,
block headers citing registered commitments, priorities, effects and rule ids.

It does not build the enforcer or decide requests (:mod:`audit.policy.load`,
:mod:`audit.policy.pack`), and it leaves the checks only the linter makes (matcher
code, regular expressions, unknown effects, role cycles, rule files, the declared
domain) to :mod:`audit.policy.lint`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import casbin

from audit.errors import PolicyError
from audit.models import Commitment
from audit.policy.diagnostics import CHECKS, Diagnostic, Level, clean, quote
from audit.policy.files import read_pack_text
from audit.policy.matcher import disallowed, field_names, role_arity

MODEL_FILE = "model.conf"
POLICY_FILE = "policy.csv"
CONFIG_FILE = "pack.yaml"
COMMITMENTS_FILE = "commitments.yaml"
PACK_FILES = (MODEL_FILE, POLICY_FILE, CONFIG_FILE, COMMITMENTS_FILE)
RULES_FILE = "rules.yaml"
"""Optional: the pack's own rules (:class:`audit.policy.config.RulesFile`)."""

SECTIONS = {
    "request_definition": "r",
    "policy_definition": "p",
    "role_definition": "g",
    "policy_effect": "e",
    "matchers": "m",
}
"""The model.conf sections pycasbin reads, and the letter of their definitions."""

PRIORITY_EFFECT = "priority(p.eft) || deny"
REQUIRED_P_FIELDS = ("priority", "eft", "commitment", "rule")
NO_RULE = "-"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEADER_PATTERN = re.compile(r"#\s*(C[0-9]+(?:\s*,\s*C[0-9]+)*)\s*:")
FIELD_PATTERN = re.compile(r"[A-Za-z0-9_.*:@/-]+")
RULE_ID_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_DIGITS = "0123456789"


@dataclass(frozen=True)
class Problem:
    """One problem found while parsing, under a check id of :data:`~audit.policy.diagnostics.CHECKS`.

    ``message`` is the linter's wording; ``refusal`` is the loader's where it differs.
    """

    check: str
    message: str
    file: str
    line: int | None = None
    column: int | None = None
    refusal: str | None = None

    @property
    def level(self) -> Level:
        """The check's level (error, warning or note)."""
        return CHECKS[self.check].severity

    def diagnostic(self) -> Diagnostic:
        """The problem as ``policy lint`` reports it."""
        return Diagnostic(self.check, self.level, self.message, self.file, self.line, self.column)

    def error(self) -> PolicyError:
        """The problem as the loader refuses a pack for it."""
        reason = self.message if self.refusal is None else self.refusal
        return PolicyError(clean(reason), path=self.file, line=self.line)


def read_text(path: Path, root: Path | None = None) -> str:
    """A pack file's text (see :func:`audit.policy.files.read_pack_text`: no symlinks out of ``root``)."""
    return read_pack_text(path, root)


# ---------------------------------------------------------------- model.conf


@dataclass(frozen=True)
class Entry:
    """One ``key = value`` definition as pycasbin reads it, at its first line and column."""

    section: str
    key: str
    value: str
    line: int
    column: int


@dataclass
class ParsedModel:
    """A model file: the definitions pycasbin loads from it, and every problem found."""

    path: str
    text: str = ""
    entries: dict[str, Entry] = field(default_factory=dict)
    """Definitions pycasbin loads, by key (misnamed, repeated and skipped keys left out)."""
    row_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Field names per row type, in file order (``p``: its fields; ``g``: ``g.0``, ``g.1``, ...)."""
    problems: list[Problem] = field(default_factory=list)
    casbin_model: Any = None
    """The pycasbin ``Model`` read from the same text (``None`` when pycasbin rejects it)."""

    @property
    def request_fields(self) -> tuple[str, ...]:
        """The field names of ``r``."""
        entry = self.entries.get("r")
        return () if entry is None else tuple(part.strip() for part in entry.value.split(","))

    @property
    def definitions(self) -> dict[str, tuple[str, ...]]:
        """Field names per row type, ``p`` types first, each kind in pycasbin's order (``g``, ``g2``, ...)."""
        order = sorted(self.row_fields, key=lambda key: (key[0] != "p", int(key[1:] or "1")))
        return {key: self.row_fields[key] for key in order}

    def value_column(self, entry: Entry, offset: int) -> int | None:
        """1-based column of character ``offset`` of an entry's value, if it is on the entry's first line."""
        raw = self.text.splitlines()[entry.line - 1]
        rest = raw[raw.find("=") + 1 :]
        start = len(raw) - len(rest) + len(rest) - len(rest.lstrip())
        return start + offset + 1 if start + offset < len(raw.rstrip().rstrip("\\")) else None

    def add(
        self,
        check: str,
        message: str,
        entry: Entry | None = None,
        *,
        column: int | None = None,
        refusal: str | None = None,
    ) -> None:
        """Record a problem at an entry (its line; its first column unless ``column`` is given)."""
        line = None if entry is None else entry.line
        if entry is not None and column is None:
            column = entry.column
        self.problems.append(Problem(check, message, self.path, line, column, refusal))


class _Scanner:
    """``key = value`` entries as pycasbin's config reader finds them, with every syntax problem."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[Entry] = []
        self.problems: list[Problem] = []
        self.section: str | None = ""
        """The current section; ``None`` after an unreadable header (its lines are skipped)."""
        self.pending: list[str] = []
        self.start = (0, 0)

    def scan(self, text: str) -> list[Entry]:
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            column = len(raw) - len(raw.lstrip()) + 1
            if self.pending:
                self._continue(line)
            elif line and not line.startswith(("#", ";")):
                self._line(line, number, column)
        if self.pending:
            self._problem("model-syntax", "definition continued past the end of the file", *self.start)
        return self.entries

    def _problem(self, check: str, message: str, line: int, column: int, refusal: str | None = None) -> None:
        self.problems.append(Problem(check, message, self.path, line, column, refusal))

    def _continue(self, line: str) -> None:
        self.pending.append(line[:-1].strip() + " " if line.endswith("\\") else line)
        if not line.endswith("\\"):
            key, _, value = "".join(self.pending).partition("=")
            if self.section:
                self.entries.append(Entry(self.section, key.strip(), value.strip(), *self.start))
            self.pending = []

    def _line(self, line: str, number: int, column: int) -> None:
        if line.startswith("["):
            self._header(line, number, column)
        elif self.section is None:
            return
        elif not self.section:
            self._problem("model-syntax", "definition outside any [section]", number, column)
        elif "=" not in line:
            self._problem("model-syntax", "expected 'key = value'", number, column)
        elif line.endswith("\\"):
            self.pending = [line[:-1].strip() + " "]
            self.start = (number, column)
        else:
            key, _, value = line.partition("=")
            self.entries.append(Entry(self.section, key.strip(), value.strip(), number, column))

    def _header(self, line: str, number: int, column: int) -> None:
        if not line.endswith("]"):
            self._problem(
                "model-syntax",
                f"section header {quote(line)} is not closed with ']'",
                number,
                column,
                _unclosed_refusal(line, self.section),
            )
            self.section = None
            return
        name = line[1:-1]  # pycasbin does not strip section names
        if name in SECTIONS:
            self.section = name
            return
        self._problem(
            "model-unknown-section",
            f"unknown section [{name.strip()}] (pycasbin ignores it)",
            number,
            column,
            f"unknown section [{name}]",
        )
        self.section = None


def _unclosed_refusal(line: str, section: str | None) -> str:
    """What the loader says of a ``[header`` line without ``]``: it reads it as a definition."""
    if not section:
        return "definition outside any [section]"
    if "=" not in line:
        return "expected 'key = value'"
    return _misnamed(section, line.partition("=")[0].strip())


def _misnamed(section: str, key: str) -> str:
    letter = SECTIONS[section]
    return f"[{section}] defines {quote(key)}; expected {letter}, {letter}2, ..."


def _skipped(key: str, letter: str) -> tuple[str, str]:
    """(linter, loader) wording for a definition pycasbin skips because of its number."""
    numbered = f"{letter}, {letter}2, {letter}3, ... without gaps"
    return (
        f"{key} is ignored by pycasbin: number definitions {numbered}",
        f"{key} is ignored by pycasbin: definitions must be numbered {numbered}",
    )


def _accept(model: ParsedModel, scanned: Sequence[Entry]) -> list[Problem]:
    """Keep entries named as pycasbin loads them, once each; returns the problems to report with the gaps."""
    deferred: list[Problem] = []
    for entry in scanned:
        letter = SECTIONS[entry.section]
        if not re.fullmatch(letter + r"(?:[2-9]|[1-9][0-9]+)?", entry.key):
            problem = Problem(
                "model-unknown-key", _misnamed(entry.section, entry.key), model.path, entry.line, entry.column
            )
            if re.fullmatch(letter + r"[0-9]*", entry.key):  # r1, r0, ...: numbered, but never loaded
                deferred.append(replace(problem, refusal=_skipped(entry.key, letter)[1]))
            else:
                model.problems.append(problem)
        elif entry.key in model.entries:
            model.add(
                "model-duplicate-key", f"{entry.key} already defined on line {model.entries[entry.key].line}", entry
            )
        else:
            model.entries[entry.key] = entry
    return deferred


def _read_casbin(model: ParsedModel) -> None:
    try:
        casbin_model = casbin.Model()
        casbin_model.load_model_from_text(model.text)
    except Exception as exc:  # pycasbin raises bare exceptions without locations
        model.add("model-rejected", f"pycasbin cannot read the model: {clean(str(exc), 200)}")
    else:
        model.casbin_model = casbin_model


def _drop_gaps(model: ParsedModel, deferred: Sequence[Problem]) -> None:
    """pycasbin loads ``r``, ``r2``, ``r3``, ... up to the first missing number and skips the rest."""
    found = list(deferred)
    for letter in ("r", "p", "g", "e", "m"):
        keys = {key for key in model.entries if key.rstrip(_DIGITS) == letter}
        loaded = 0
        while (letter if loaded == 0 else f"{letter}{loaded + 1}") in keys:
            loaded += 1
        for key in sorted(key for key in keys if int(key[1:] or "1") > loaded):
            entry = model.entries.pop(key)
            message, refusal = _skipped(key, letter)
            found.append(Problem("model-unknown-key", message, model.path, entry.line, entry.column, refusal))
    model.problems.extend(sorted(found, key=lambda problem: problem.line or 0))


def _check_required(model: ParsedModel) -> None:
    for letter, what in (("r", "request"), ("p", "policy"), ("e", "policy effect"), ("m", "matcher")):
        if letter not in model.entries:
            model.add("model-missing-definition", f"no {what} definition '{letter} = ...'")


def _row_fields(entries: Mapping[str, Entry]) -> dict[str, tuple[str, ...]]:
    fields: dict[str, tuple[str, ...]] = {}
    for key, entry in entries.items():
        if entry.section == "policy_definition":
            fields[key] = tuple(part.strip() for part in entry.value.split(","))
        elif entry.section == "role_definition":
            fields[key] = tuple(f"{key}.{index}" for index in range(len(entry.value.split(","))))
    return fields


# ---------------------------------------------------------------- model.conf: pack conventions


def _one_definition_each(model: ParsedModel) -> None:
    for letter in ("r", "p", "e", "m"):
        for key in sorted(key for key in model.entries if key != letter and key.rstrip(_DIGITS) == letter):
            model.add(
                "pack-model",
                f"only one definition '{letter}' is supported in a pack",
                model.entries[key],
                refusal=f"only one definition '{letter}' is supported",
            )


def _field_names(model: ParsedModel) -> None:
    for key in ("r", "p"):
        definition = model.entries.get(key)
        if definition is None:
            continue
        names = [part.strip() for part in definition.value.split(",")]
        for name in names:
            if not IDENTIFIER.fullmatch(name):
                model.add(
                    "pack-model",
                    f"{quote(name)} is not a field name (put comments on their own line: pycasbin "
                    "keeps a trailing comment as part of the value)",
                    definition,
                    column=model.value_column(definition, definition.value.find(name)),
                )
        if len(set(names)) != len(names):
            model.add("pack-model", f"{key} names a field twice", definition)
        missing = [name for name in REQUIRED_P_FIELDS if name not in names]
        if key == "p" and missing:
            model.add("pack-model", f"p must define the fields {', '.join(missing)}", definition)


def _plain_roles(model: ParsedModel) -> None:
    roles = [entry for entry in model.entries.values() if entry.section == "role_definition"]
    for entry in sorted(roles, key=lambda entry: int(entry.key[1:] or "1")):
        parts = [part.strip() for part in entry.value.split(",")]
        if len(parts) < 2 or any(part != "_" for part in parts):
            model.add(
                "pack-model",
                f"{entry.key} must be a plain role definition like '_, _' (comments go on their own line)",
                entry,
            )


def _priority_effect(model: ParsedModel) -> None:
    effect = model.entries.get("e")
    if effect is not None and effect.value.split("#", 1)[0].strip() != PRIORITY_EFFECT:
        model.add(
            "pack-model",
            f"policy effect must be '{PRIORITY_EFFECT}' (the first matching row decides; no matching row denies)",
            effect,
        )


PACK_MODEL_CHECKS: tuple[Callable[[ParsedModel], None], ...] = (
    _one_definition_each,
    _field_names,
    _plain_roles,
    _priority_effect,
)
"""The pack conventions for ``model.conf``, in the order the loader applies them."""


def parse_model(path: str, text: str, *, pack: bool = False) -> ParsedModel:
    """Parse a model file's text; ``pack`` adds the residency-audit pack conventions."""
    model = ParsedModel(path, text)
    scanner = _Scanner(path)
    scanned = scanner.scan(text)
    model.problems.extend(scanner.problems)
    deferred = _accept(model, scanned)
    _read_casbin(model)
    _drop_gaps(model, deferred)
    _check_required(model)
    model.row_fields = _row_fields(model.entries)
    _check_matchers(model, pack)
    for check in PACK_MODEL_CHECKS if pack else ():
        check(model)
    return model


def _check_matchers(model: ParsedModel, pack: bool) -> None:
    """Matchers use only allowed syntax (:mod:`audit.policy.matcher`); packs may not call eval()."""
    requests = {key: entry.value for key, entry in model.entries.items() if entry.section == "request_definition"}
    definitions = {key: tuple(part.strip() for part in value.split(",")) for key, value in requests.items()}
    definitions.update({key: names for key, names in model.row_fields.items() if key.startswith("p")})
    names = field_names(definitions)
    for entry in [entry for entry in model.entries.values() if entry.section == "matchers"]:
        found = disallowed(entry.value, names=names, roles=role_arity(model.row_fields), allow_eval=not pack)
        if found is None:
            continue
        what, needle = found
        offset = entry.value.find(needle) if needle else 0
        if what.startswith("the name "):  # most likely a misspelt field: word it as pycasbin would fail
            message = f"{entry.key} uses {what}, which is no request or policy field"
            refusal: str | None = f"matcher does not evaluate: {message}"
        else:
            verb = "" if what.startswith("is ") else "uses "
            message, refusal = f"{entry.key} {verb}{what}, outside what matchers may use; nothing was evaluated", None
        column = model.value_column(entry, max(offset, 0))
        model.add("matcher-disallowed", message, entry, column=column, refusal=refusal)


# ---------------------------------------------------------------- policy rows


def policy_lines(text: str) -> Iterator[tuple[int, str, tuple[str, ...] | None]]:
    """``(line number, line, None)`` for each row of a policy CSV text, and
    ``(line number, line, cited commitment ids)`` for each block header; blank lines
    and other comments are skipped."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            yield number, raw, None
            continue
        match = HEADER_PATTERN.match(line)
        if match is not None:
            yield number, raw, tuple(part.strip() for part in match.group(1).split(","))


def split_row(raw: str) -> tuple[list[tuple[str, int]], str | None]:
    """Tokens of one CSV line as pycasbin splits them, each with its 1-based column.

    Commas inside brackets or parentheses do not split. Returns an error message
    when the brackets do not balance.
    """
    tokens: list[tuple[str, int]] = []
    stack: list[str] = []
    start = 0

    def take(end: int) -> None:
        segment = raw[start:end]
        tokens.append((segment.strip(), start + len(segment) - len(segment.lstrip()) + 1))

    for index, char in enumerate(raw):
        if char in "[(":
            stack.append(char)
        elif char in "])":
            if not stack:
                return tokens, f"unbalanced {quote(char)} at column {index + 1}"
            stack.pop()
        elif char == "," and not stack:
            take(index)
            start = index + 1
    take(len(raw))
    if stack:
        return tokens, f"unclosed {quote(stack[-1])}"
    return tokens, None


@dataclass(frozen=True)
class Header:
    """A block header ``# Cn[, Cm...]: ...``: the commitments it names, and its line."""

    commitments: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Row:
    """One policy row split as pycasbin splits it."""

    ptype: str
    fields: tuple[str, ...]
    columns: tuple[int, ...]
    """1-based column of the type and of each field."""
    line: int
    header: Header | None
    """The block header above the row."""

    def named(self, names: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Each field's value and column, by field name."""
        return {
            name: (value, self.columns[index + 1])
            for index, (name, value) in enumerate(zip(names, self.fields, strict=True))
        }


@dataclass
class ParsedPolicy:
    """A policy file: its rows, which of them fit the model and load, and every problem found."""

    path: str
    rows: list[Row] = field(default_factory=list)
    """Every row that could be split into fields."""
    fitting: list[Row] = field(default_factory=list)
    """Rows of a type the model defines, with its number of fields (every row without a model)."""
    kept: list[Row] = field(default_factory=list)
    """Fitting rows that do not repeat an earlier row: the rows to load."""
    headers: list[Header] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def add(
        self, check: str, message: str, line: int | None = None, column: int | None = None, refusal: str | None = None
    ) -> None:
        """Record a problem in this file."""
        self.problems.append(Problem(check, message, self.path, line, column, refusal))


def _split(policy: ParsedPolicy, number: int, raw: str, header: Header | None) -> Row | None:
    tokens, problem = split_row(raw)
    if problem is not None:
        policy.add("policy-syntax", f"row cannot be split into fields: {problem}", number)
        return None
    return Row(tokens[0][0], tuple(t for t, _ in tokens[1:]), tuple(c for _, c in tokens), number, header)


def _fits(policy: ParsedPolicy, row: Row, model: ParsedModel | None) -> bool:
    """Whether the model defines the row's type with its number of fields (reported if not)."""
    if model is None:
        return True
    name = Path(model.path).name
    names = model.row_fields.get(row.ptype)
    if names is None:
        drop = "pycasbin would silently drop this row"
        policy.add(
            "undefined-ptype",
            f"row type {quote(row.ptype)} is not defined in {name} (defined: "
            f"{', '.join(model.row_fields) or 'none'}); {drop}",
            row.line,
            row.columns[0],
            f"row type {quote(row.ptype)} is not defined in {name} (defined: {', '.join(model.definitions)}); {drop}",
        )
        return False
    if len(row.fields) == len(names):
        return True
    column = row.columns[len(names) + 1] if len(row.fields) > len(names) else row.columns[0]
    counted = f"{row.ptype} row has {len(row.fields)} fields, {name} defines {len(names)}"
    policy.add(
        "field-count",
        f"{counted} ({', '.join(names)})",
        row.line,
        column,
        f"{counted} ({', '.join(names)})" if row.ptype == "p" else counted,
    )
    return False


def parse_policy(
    path: str,
    text: str,
    model: ParsedModel | None,
    *,
    commitments: Mapping[str, Commitment] | None = None,
    conventions: bool = False,
) -> ParsedPolicy:
    """Parse a policy file's text written against ``model`` (``None``: no model to check types against).

    ``conventions`` adds the pack conventions (block headers, commitments from
    ``commitments`` where given, priorities, effects, rule ids) for the rows that load.
    """
    policy = ParsedPolicy(path)
    checks = _Conventions(policy, model, commitments) if conventions and model is not None else None
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    header: Header | None = None
    for number, raw, cited in policy_lines(text):
        if cited is not None:
            header = Header(cited, number)
            policy.headers.append(header)
            if checks is not None:
                checks.header(header)
            continue
        row = _split(policy, number, raw, header)
        if row is None:
            continue
        policy.rows.append(row)
        fits = _fits(policy, row, model)
        first = seen.setdefault((row.ptype, row.fields), row.line)
        if first != row.line:
            policy.add("duplicate-row", f"duplicate of the row on line {first}", row.line, row.columns[0])
        if fits:
            policy.fitting.append(row)
        if fits and first == row.line:
            policy.kept.append(row)
            if checks is not None:
                checks.row(row)
    return policy


# ---------------------------------------------------------------- policy rows: pack conventions


@dataclass
class _Conventions:
    """The pack conventions applied to one file's headers and loading rows, in file order."""

    policy: ParsedPolicy
    model: ParsedModel
    commitments: Mapping[str, Commitment] | None
    priorities: dict[int, int] = field(default_factory=dict)

    def header(self, header: Header) -> None:
        for cid in header.commitments:
            if self.commitments is not None and cid not in self.commitments:
                self.policy.add(
                    "commitment-unknown",
                    f"block header cites {cid}, which is not in {COMMITMENTS_FILE}",
                    header.line,
                    refusal=f"block header cites {cid}, which is not in the commitment register",
                )

    def row(self, row: Row) -> None:
        named = row.named(self.model.row_fields[row.ptype])
        for check in ROW_CONVENTIONS:
            check(self, row, named)


_Named = Mapping[str, tuple[str, int]]


def _check_fields(checks: _Conventions, row: Row, named: _Named) -> None:
    for name, (value, column) in named.items():
        if not value:
            checks.policy.add("bad-field", f"field {name} is empty", row.line, column)
        elif "#" in value:
            checks.policy.add(
                "bad-field",
                "trailing comments are not allowed in rows (pycasbin keeps them as part of the field)",
                row.line,
                column,
            )
        elif not FIELD_PATTERN.fullmatch(value):
            checks.policy.add(
                "bad-field", f"field {name} {quote(value)} has characters outside [A-Za-z0-9_.*:@/-]", row.line, column
            )


def _check_header(checks: _Conventions, row: Row, named: _Named) -> None:
    if row.header is None:
        checks.policy.add(
            "commitment-missing",
            "row is not under a block header '# Cn: ...' naming the commitment it implements",
            row.line,
            row.columns[0],
        )


def _check_grouping_header(checks: _Conventions, row: Row, named: _Named) -> None:
    if row.ptype != "p" and row.header is not None and len(row.header.commitments) != 1:
        checks.policy.add(
            "commitment-header-mismatch",
            f"grouping row cites its block header (line "
            f"{row.header.line}), which names {len(row.header.commitments)} commitments; give grouping "
            "rows a header naming one",
            row.line,
            row.columns[0],
        )


def _check_priority(checks: _Conventions, row: Row, named: _Named) -> None:
    if row.ptype != "p":
        return
    text, column = named["priority"]
    if not text.isascii() or not text.isdigit():
        checks.policy.add("priority-invalid", f"priority {quote(text)} is not a non-negative integer", row.line, column)
        return
    priority = int(text)
    if priority not in checks.priorities:
        checks.priorities[priority] = row.line
        return
    reused = (
        f"priority {priority} is already used on line {checks.priorities[priority]}; give every p row its own priority"
    )
    checks.policy.add("priority-invalid", reused, row.line, column, f"{reused} so the deciding order is explicit")


def _check_effect(checks: _Conventions, row: Row, named: _Named) -> None:
    if row.ptype == "p" and named["eft"][0] not in ("allow", "deny"):
        eft, column = named["eft"]
        checks.policy.add("effect-invalid", f"eft {quote(eft)} must be allow or deny", row.line, column)


def _check_commitment(checks: _Conventions, row: Row, named: _Named) -> None:
    if row.ptype != "p":
        return
    cid, column = named["commitment"]
    unregistered = f"commitment {cid} is not in the commitment register"
    if cid in ("", NO_RULE):
        checks.policy.add("commitment-missing", "row cites no commitment", row.line, column, unregistered)
    elif checks.commitments is not None and cid not in checks.commitments:
        checks.policy.add("commitment-unknown", f"{unregistered} ({COMMITMENTS_FILE})", row.line, column, unregistered)
    elif row.header is not None and cid not in row.header.commitments:
        checks.policy.add(
            "commitment-header-mismatch",
            f"row cites {cid} but its block header (line {row.header.line}) names {', '.join(row.header.commitments)}",
            row.line,
            column,
        )


def _check_rule(checks: _Conventions, row: Row, named: _Named) -> None:
    if row.ptype != "p":
        return
    (eft, _), (rule, column) = named["eft"], named["rule"]
    if eft == "deny" and rule == NO_RULE:
        checks.policy.add("rule-invalid", "deny row names no rule id", row.line, column)
    elif eft == "deny" and not RULE_ID_PATTERN.fullmatch(rule):
        checks.policy.add("rule-invalid", f"rule id {quote(rule)} is not lower-kebab-case", row.line, column)
    elif eft == "allow" and rule != NO_RULE:
        checks.policy.add(
            "rule-invalid", f"allow row names rule {quote(rule)}; allow rows name rule '{NO_RULE}'", row.line, column
        )


ROW_CONVENTIONS: tuple[Callable[[_Conventions, Row, _Named], None], ...] = (
    _check_fields,
    _check_header,
    _check_grouping_header,
    _check_priority,
    _check_effect,
    _check_commitment,
    _check_rule,
)
"""The pack conventions for each loading row, in the order the loader applies them."""
