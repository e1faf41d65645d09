"""``policy lint``: every problem in Casbin model and policy files, at file:line:column.

Unlike :func:`audit.policy.load.load_pack`, which stops at the first problem, the
linter parses ``model.conf`` and policy CSV files itself, line by line, and reports
all it finds, each under a stable check id (:data:`audit.policy.diagnostics.CHECKS`).

Two profiles:

* any Casbin model/policy pair (:func:`lint_files`): syntax, unknown sections and
  keys, undefined row types, wrong field counts, unknown effects, ``eval()`` and
  ``timeMatch`` in matchers, invalid or unanchored ``regexMatch`` patterns,
  duplicate rows, role cycles;
* a residency-audit pack directory (:func:`lint_pack`), adding the pack
  conventions: block headers and commitment ids, priorities, effects, rule ids
  that must exist in :mod:`audit.replay.rules`, values the declared domain
  (``invariants.yaml``) lacks, and rows that can never decide (shadowed or
  unreachable over the domain, found with the real pycasbin enforcer).

Linting never evaluates policy text itself; pycasbin evaluates the pack's own
matcher, and only for packs that pass every other check.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import casbin
from casbin.util import escape_assertion, remove_comments
from casbin.util.log import disabled_logging

from audit.commitments import load_commitments
from audit.errors import InputError
from audit.models import Commitment
from audit.policy.diagnostics import Diagnostic, diagnostic
from audit.policy.domain import (
    INVARIANTS_FILE,
    Invariants,
    candidates,
    load_invariants,
    matcher_is_simple,
    reach,
    undeclared_values,
)
from audit.policy.load import (
    COMMITMENTS_FILE,
    CONFIG_FILE,
    FIELD_PATTERN,
    MODEL_FILE,
    NO_RULE,
    POLICY_FILE,
    PRIORITY_EFFECT,
    REQUIRED_P_FIELDS,
    RULE_ID_PATTERN,
    RowsAdapter,
    load_config,
    load_pack,
    policy_lines,
    read_text,
)
from audit.policy.pack import PolicyPack, PolicyRow, Request

SECTIONS = {
    "request_definition": "r",
    "policy_definition": "p",
    "role_definition": "g",
    "policy_effect": "e",
    "matchers": "m",
}
EFFECTS = frozenset(
    {
        "some(where (p_eft == allow))",
        "!some(where (p_eft == deny))",
        "some(where (p_eft == allow)) && !some(where (p_eft == deny))",
        "priority(p_eft) || deny",
        "subjectPriority(p_eft) || deny",
    }
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EVAL = re.compile(r"\beval\s*\(")
_EVAL_FIELD = re.compile(r"\beval\s*\(\s*(p[0-9]*)\.(\w+)\s*\)")
_TIME_MATCH = re.compile(r"\btimeMatch\s*\(")
_REGEX_MATCH = re.compile(
    r"""\bregexMatch\s*\(\s*([^,()]+?)\s*,\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^()]+?)\s*\)"""
)
_LITERAL = re.compile(r"""^(["'])(.*)\1$""")
_P_FIELD = re.compile(r"^(p[0-9]*)\.(\w+)$")
UNDECLARED = "?"
"""Stands for every value a pack does not name (no row field can hold '?')."""


@dataclass(frozen=True)
class LintReport:
    """Every diagnostic found, sorted by place, and the files that were read."""

    diagnostics: tuple[Diagnostic, ...]
    files: tuple[str, ...]


@dataclass(frozen=True)
class _Entry:
    section: str
    key: str
    value: str
    line: int
    column: int


@dataclass
class ModelInfo:
    """What the policy checks need from a model file."""

    path: str
    entries: dict[str, _Entry] = field(default_factory=dict)
    row_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Field names per row type (``p``: its fields; ``g``: ``g.0``, ``g.1``, ...)."""
    code_fields: dict[str, set[str]] = field(default_factory=dict)
    """Per p type, fields the matcher passes to ``eval()``."""
    regex_fields: dict[str, set[str]] = field(default_factory=dict)
    """Per p type, fields the matcher uses as a ``regexMatch`` pattern."""


@dataclass(frozen=True)
class _Row:
    ptype: str
    fields: tuple[str, ...]
    columns: tuple[int, ...]
    """1-based column of the type and of each field."""
    line: int
    header: tuple[tuple[str, ...], int] | None
    """Commitments named by the block header above the row, and its line."""


class _Sink:
    def __init__(self) -> None:
        self.found: list[Diagnostic] = []

    def add(self, check: str, message: str, path: str, line: int | None = None, column: int | None = None) -> None:
        self.found.append(diagnostic(check, message, path, line, column))

    def has_errors(self, path: str | None = None) -> bool:
        return any(d.severity == "error" and (path is None or d.file == path) for d in self.found)


# ---------------------------------------------------------------- model.conf


def _scan_model(path: str, text: str, sink: _Sink) -> list[_Entry]:
    """``key = value`` entries as pycasbin reads them, with every syntax problem reported."""
    entries: list[_Entry] = []
    section: str | None = ""
    pending: list[str] = []
    start = (0, 0)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        column = len(raw) - len(raw.lstrip()) + 1
        if pending:
            pending.append(line[:-1].strip() + " " if line.endswith("\\") else line)
            if not line.endswith("\\"):
                key, _, value = "".join(pending).partition("=")
                if section:
                    entries.append(_Entry(section, key.strip(), value.strip(), *start))
                pending = []
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                sink.add("model-syntax", f"section header {line!r} is not closed with ']'", path, number, column)
                section = None
                continue
            name = line[1:-1].strip()
            if name not in SECTIONS:
                sink.add("model-unknown-section", f"unknown section [{name}] (pycasbin ignores it)", path, number,
                         column)
                section = None
            else:
                section = name
            continue
        if section is None:
            continue
        if not section:
            sink.add("model-syntax", "definition outside any [section]", path, number, column)
            continue
        if "=" not in line:
            sink.add("model-syntax", "expected 'key = value'", path, number, column)
            continue
        if line.endswith("\\"):
            pending = [line[:-1].strip() + " "]
            start = (number, column)
            continue
        key, _, value = line.partition("=")
        entries.append(_Entry(section, key.strip(), value.strip(), number, column))
    if pending:
        sink.add("model-syntax", "definition continued past the end of the file", path, *start)
    return entries


def _value_column(text: str, entry: _Entry, offset: int) -> int | None:
    """1-based column of character ``offset`` of an entry's value, if it is on the entry's first line."""
    raw = text.splitlines()[entry.line - 1]
    rest = raw[raw.find("=") + 1 :]
    start = len(raw) - len(rest) + len(rest) - len(rest.lstrip())
    return start + offset + 1 if start + offset < len(raw.rstrip().rstrip("\\")) else None


def lint_model(path: Path, sink: _Sink, *, pack: bool = False) -> ModelInfo:
    """Check one model file; ``pack`` adds the residency-audit pack conventions."""
    name = str(path)
    info = ModelInfo(name)
    try:
        text = read_text(path)
    except InputError as exc:
        sink.add("pack-file", exc.reason, name)
        return info
    entries = _scan_model(name, text, sink)
    for entry in entries:
        letter = SECTIONS[entry.section]
        if not re.fullmatch(re.escape(letter) + r"(?:[2-9]|[1-9][0-9]+)?", entry.key):
            sink.add("model-unknown-key", f"[{entry.section}] defines {entry.key!r}; expected {letter}, "
                     f"{letter}2, ...", name, entry.line, entry.column)
            continue
        if entry.key in info.entries:
            sink.add("model-duplicate-key", f"{entry.key} already defined on line {info.entries[entry.key].line}",
                     name, entry.line, entry.column)
            continue
        info.entries[entry.key] = entry
    for letter in ("r", "p", "g", "e", "m"):
        keys = {key for key in info.entries if key.rstrip("0123456789") == letter}
        loaded = 0
        while (letter if loaded == 0 else f"{letter}{loaded + 1}") in keys:
            loaded += 1
        for key in sorted(keys):
            number = int(key[1:] or "1")
            if number > loaded:
                entry = info.entries.pop(key)
                sink.add("model-unknown-key", f"{key} is ignored by pycasbin: number definitions {letter}, "
                         f"{letter}2, {letter}3, ... without gaps", name, entry.line, entry.column)
    for letter, what in (("r", "request"), ("p", "policy"), ("e", "policy effect"), ("m", "matcher")):
        if letter not in info.entries:
            sink.add("model-missing-definition", f"no {what} definition '{letter} = ...'", name)
    try:
        casbin.Model().load_model_from_text(text)
    except Exception as exc:  # pycasbin raises bare exceptions without locations
        sink.add("model-rejected", f"pycasbin cannot read the model: {exc}", name)
    for key, entry in info.entries.items():
        if entry.section == "policy_definition":
            info.row_fields[key] = tuple(part.strip() for part in entry.value.split(","))
        elif entry.section == "role_definition":
            info.row_fields[key] = tuple(f"{key}.{i}" for i in range(len(entry.value.split(","))))
        elif entry.section == "policy_effect":
            expr = remove_comments(escape_assertion(entry.value))
            if expr not in EFFECTS:
                sink.add("unknown-effect", f"policy effect {entry.value!r} is not one pycasbin implements "
                         "(it raises 'unsupported effect' at enforce time)", name, entry.line,
                         _value_column(text, entry, 0))
        elif entry.section == "matchers":
            _lint_matcher(text, entry, info, sink)
    if pack:
        _lint_pack_model(text, info, sink)
    return info


def _lint_matcher(text: str, entry: _Entry, info: ModelInfo, sink: _Sink) -> None:
    path, value = info.path, entry.value
    for match in _EVAL.finditer(value):
        sink.add("matcher-eval", f"{entry.key} calls eval(): pycasbin runs policy text as Python expressions "
                 "(a sandbox, but code nonetheless)", path, entry.line, _value_column(text, entry, match.start()))
    for match in _EVAL_FIELD.finditer(value):
        info.code_fields.setdefault(match.group(1), set()).add(match.group(2))
    for match in _TIME_MATCH.finditer(value):
        sink.add("matcher-time-match", f"{entry.key} calls timeMatch, which compares with the current time: "
                 "decisions change between runs and replay is not deterministic", path, entry.line,
                 _value_column(text, entry, match.start()))
    for match in _REGEX_MATCH.finditer(value):
        pattern = match.group(2).strip()
        literal = _LITERAL.match(pattern)
        column = _value_column(text, entry, match.start())
        if literal is not None:
            problem = regex_problem(literal.group(2))
            if problem is not None:
                sink.add(problem[0], f"{entry.key}: {problem[1]}", path, entry.line, column)
            continue
        field_ref = _P_FIELD.match(pattern)
        if field_ref is not None:
            info.regex_fields.setdefault(field_ref.group(1), set()).add(field_ref.group(2))


def regex_problem(pattern: str) -> tuple[str, str] | None:
    """``(check, message)`` when a ``regexMatch`` pattern is invalid or unanchored."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return "regex-invalid", f"regexMatch pattern {pattern!r} does not compile: {exc}"
    anchored_end = (pattern.endswith("$") and not pattern.endswith("\\$")) or pattern.endswith("\\Z")
    if not pattern.startswith("^") or not anchored_end:
        return "regex-unanchored", (
            f"regexMatch pattern {pattern!r} is not anchored with ^...$: pycasbin anchors it at the start only "
            "(re.match), Go's casbin nowhere, so the two engines disagree"
        )
    return None


def _lint_pack_model(text: str, info: ModelInfo, sink: _Sink) -> None:
    path = info.path
    for letter in ("r", "p", "e", "m"):
        for key, entry in info.entries.items():
            if key != letter and key.rstrip("0123456789") == letter:
                sink.add("pack-model", f"only one definition '{letter}' is supported in a pack", path,
                         entry.line, entry.column)
    for key in ("r", "p"):
        definition = info.entries.get(key)
        if definition is None:
            continue
        names = [part.strip() for part in definition.value.split(",")]
        for name in names:
            if not _IDENTIFIER.fullmatch(name):
                sink.add("pack-model", f"{name!r} is not a field name (put comments on their own line: pycasbin keeps "
                         "a trailing comment as part of the value)", path, definition.line,
                         _value_column(text, definition, definition.value.find(name)))
        if len(set(names)) != len(names):
            sink.add("pack-model", f"{key} names a field twice", path, definition.line, definition.column)
        if key == "p":
            missing = [name for name in REQUIRED_P_FIELDS if name not in names]
            if missing:
                sink.add("pack-model", f"p must define the fields {', '.join(missing)}", path, definition.line,
                         definition.column)
    for key, entry in info.entries.items():
        if entry.section == "role_definition":
            parts = [part.strip() for part in entry.value.split(",")]
            if len(parts) < 2 or any(part != "_" for part in parts):
                sink.add("pack-model", f"{key} must be a plain role definition like '_, _' "
                         "(comments go on their own line)", path, entry.line, entry.column)
    effect = info.entries.get("e")
    if effect is not None and effect.value.split("#", 1)[0].strip() != PRIORITY_EFFECT:
        sink.add("pack-model", f"policy effect must be '{PRIORITY_EFFECT}' (the first matching row decides; "
                 "no matching row denies)", path, effect.line, effect.column)


# ---------------------------------------------------------------- policy rows


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
                return tokens, f"unbalanced {char!r} at column {index + 1}"
            stack.pop()
        elif char == "," and not stack:
            take(index)
            start = index + 1
    take(len(raw))
    if stack:
        return tokens, f"unclosed {stack[-1]!r}"
    return tokens, None


_HeaderAt = tuple[tuple[str, ...], int]


def _read_rows(path: str, text: str, sink: _Sink) -> tuple[list[_Row], list[_HeaderAt]]:
    """The rows, and the block headers (commitment ids, line) of the file."""
    rows: list[_Row] = []
    headers: list[_HeaderAt] = []
    header: tuple[tuple[str, ...], int] | None = None
    for number, raw, cited in policy_lines(text):
        if cited is not None:
            header = (cited, number)
            headers.append(header)
            continue
        tokens, problem = split_row(raw)
        if problem is not None:
            sink.add("policy-syntax", f"row cannot be split into fields: {problem}", path, number)
            continue
        rows.append(_Row(tokens[0][0], tuple(t for t, _ in tokens[1:]), tuple(c for _, c in tokens), number, header))
    return rows, headers


def _lint_rows(path: str, rows: Sequence[_Row], model: ModelInfo | None, sink: _Sink) -> list[_Row]:
    """Model-independent and model-dependent checks; returns the rows fit to load."""
    good: list[_Row] = []
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    for row in rows:
        key = (row.ptype, row.fields)
        if key in seen:
            sink.add("duplicate-row", f"duplicate of the row on line {seen[key]}", path, row.line, row.columns[0])
        else:
            seen[key] = row.line
        if model is None:
            good.append(row)
            continue
        names = model.row_fields.get(row.ptype)
        if names is None:
            defined = ", ".join(model.row_fields) or "none"
            sink.add("undefined-ptype", f"row type {row.ptype!r} is not defined in {Path(model.path).name} "
                     f"(defined: {defined}); pycasbin would silently drop this row", path, row.line, row.columns[0])
            continue
        if len(row.fields) != len(names):
            column = row.columns[len(names) + 1] if len(row.fields) > len(names) else row.columns[0]
            sink.add("field-count", f"{row.ptype} row has {len(row.fields)} fields, {Path(model.path).name} defines "
                     f"{len(names)} ({', '.join(names)})", path, row.line, column)
            continue
        for name in model.code_fields.get(row.ptype, ()):
            if name in names:
                index = names.index(name)
                sink.add("matcher-eval", f"field {name} {row.fields[index]!r} is run as code by eval() in the matcher",
                         path, row.line, row.columns[index + 1])
        for name in model.regex_fields.get(row.ptype, ()):
            if name in names:
                index = names.index(name)
                problem = regex_problem(row.fields[index])
                if problem is not None:
                    sink.add(problem[0], f"field {name}: {problem[1]}", path, row.line, row.columns[index + 1])
        if seen[key] == row.line:
            good.append(row)
    _lint_cycles(path, good, sink)
    return good


def _lint_cycles(path: str, rows: Sequence[_Row], sink: _Sink) -> None:
    """Report each cycle of grouping links once, at the row that closes it."""
    for ptype in sorted({row.ptype for row in rows if row.ptype.startswith("g")}):
        edges: dict[str, list[tuple[str, _Row]]] = {}
        for row in rows:
            if row.ptype == ptype and len(row.fields) >= 2:
                edges.setdefault(row.fields[0], []).append((row.fields[1], row))
        state: dict[str, int] = {}
        reported: set[frozenset[str]] = set()

        def visit(node: str, trail: list[str], edges: dict[str, list[tuple[str, _Row]]] = edges,
                  state: dict[str, int] = state, reported: set[frozenset[str]] = reported,
                  ptype: str = ptype) -> None:
            state[node] = 1
            trail.append(node)
            for target, row in edges.get(node, ()):
                if state.get(target) == 1:
                    cycle = [*trail[trail.index(target):], target]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        sink.add("role-cycle", f"{ptype} rows form a cycle: {' -> '.join(cycle)}", path, row.line,
                                 row.columns[2])
                elif target not in state:
                    visit(target, trail)
            trail.pop()
            state[node] = 2

        for start in sorted(edges):
            if start not in state:
                visit(start, [])


def _lint_pack_rows(
    path: str,
    rows: Sequence[_Row],
    headers: Sequence[_HeaderAt],
    model: ModelInfo,
    commitments: Mapping[str, Commitment] | None,
    sink: _Sink,
) -> None:
    """The pack conventions, in the order :func:`audit.policy.load.load_pack` checks them."""
    for cids, line in headers:
        for cid in cids:
            if commitments is not None and cid not in commitments:
                sink.add("commitment-unknown", f"block header cites {cid}, which is not in {COMMITMENTS_FILE}",
                         path, line)
    priorities: dict[int, int] = {}
    rules = _rules()
    for row in rows:
        names = model.row_fields[row.ptype]
        for index, (name, value) in enumerate(zip(names, row.fields, strict=True)):
            column = row.columns[index + 1]
            if not value:
                sink.add("bad-field", f"field {name} is empty", path, row.line, column)
            elif "#" in value:
                sink.add("bad-field", "trailing comments are not allowed in rows (pycasbin keeps them as part of "
                         "the field)", path, row.line, column)
            elif not FIELD_PATTERN.fullmatch(value):
                sink.add("bad-field", f"field {name} {value!r} has characters outside [A-Za-z0-9_.*:@/-]", path,
                         row.line, column)
        if row.header is None:
            sink.add("commitment-missing", "row is not under a block header '# Cn: ...' naming the commitment it "
                     "implements", path, row.line, row.columns[0])
        if row.ptype != "p":
            if row.header is not None and len(row.header[0]) != 1:
                sink.add("commitment-header-mismatch", f"grouping row cites its block header (line {row.header[1]}), "
                         f"which names {len(row.header[0])} commitments; give grouping rows a header naming one",
                         path, row.line, row.columns[0])
            continue
        named = dict(zip(names, row.fields, strict=True))
        at = {name: row.columns[index + 1] for index, name in enumerate(names)}
        priority = named["priority"]
        if not priority.isascii() or not priority.isdigit():
            sink.add("priority-invalid", f"priority {priority!r} is not a non-negative integer", path, row.line,
                     at["priority"])
        elif int(priority) in priorities:
            sink.add("priority-invalid", f"priority {int(priority)} is already used on line "
                     f"{priorities[int(priority)]}; give every p row its own priority", path, row.line,
                     at["priority"])
        else:
            priorities[int(priority)] = row.line
        eft = named["eft"]
        if eft not in ("allow", "deny"):
            sink.add("effect-invalid", f"eft {eft!r} must be allow or deny", path, row.line, at["eft"])
        cid = named["commitment"]
        if cid in ("", NO_RULE):
            sink.add("commitment-missing", "row cites no commitment", path, row.line, at["commitment"])
        elif commitments is not None and cid not in commitments:
            sink.add("commitment-unknown", f"commitment {cid} is not in the commitment register ({COMMITMENTS_FILE})",
                     path, row.line, at["commitment"])
        elif row.header is not None and cid not in row.header[0]:
            sink.add("commitment-header-mismatch", f"row cites {cid} but its block header (line {row.header[1]}) "
                     f"names {', '.join(row.header[0])}", path, row.line, at["commitment"])
        rule = named["rule"]
        if eft == "deny":
            if rule == NO_RULE:
                sink.add("rule-invalid", "deny row names no rule id", path, row.line, at["rule"])
            elif not RULE_ID_PATTERN.fullmatch(rule):
                sink.add("rule-invalid", f"rule id {rule!r} is not lower-kebab-case", path, row.line, at["rule"])
            elif rule not in rules:
                sink.add("rule-unknown", f"rule {rule!r} has no rule file in audit/replay/rules/", path, row.line,
                         at["rule"])
            elif rules[rule] != cid:
                sink.add("rule-unknown", f"row cites {cid} but rule {rule} implements {rules[rule]}", path, row.line,
                         at["rule"])
        elif eft == "allow" and rule != NO_RULE:
            sink.add("rule-invalid", f"allow row names rule {rule!r}; allow rows name rule '{NO_RULE}'", path,
                     row.line, at["rule"])


def _rules() -> dict[str, str]:
    """Rule id -> commitment of every rule shipped in :mod:`audit.replay.rules`."""
    from audit.replay.rules import load_rules  # the replay package imports this one

    return {rule_id: rule.metadata.commitment for rule_id, rule in load_rules().items()}


# ---------------------------------------------------------------- domain analysis


def _lint_domain(path: str, rows: Sequence[_Row], pack: PolicyPack, invariants: Invariants, sink: _Sink) -> None:
    """Undeclared values, then rows that never decide a request of the domain."""
    columns = {row.line: row.columns for row in rows}
    for gap in undeclared_values(pack.rows, pack.definitions, invariants.domain):
        check = {"role": "unknown-role", "category": "unknown-category"}.get(gap.kind, "unknown-value")
        what = {"role": "role", "category": "data category", "action": "action"}.get(gap.kind, "value")
        sink.add(check, f"{what} {gap.value!r} is not declared in {INVARIANTS_FILE} (domain) and is no group",
                 path, gap.row.line, columns[gap.row.line][gap.index + 1])
    domain = invariants.domain.with_value(UNDECLARED)
    deciding: dict[int, list[Request]] = {}
    decided_by: dict[Request, int | None] = {}
    for request in domain.requests():
        decision = pack.decide_uncached(request)
        line = decision.row.line if decision.row is not None else None
        decided_by[request] = line
        if line is not None:
            deciding.setdefault(line, []).append(request)
    grouping = [row for row in pack.rows if row.ptype != "p"]
    groups = reach(grouping)
    simple = matcher_is_simple(pack.matcher)
    for row in pack.rows:
        if row.ptype != "p" or row.line in deciding:
            continue
        when = candidates(domain, row, pack.definitions["p"], groups) if simple else None
        alone = _enforcer(pack, [*grouping, row])
        matched = [request for request in domain.requests(when) if alone.enforce_ex(*request)[1]]
        column = columns[row.line][0]
        if not matched:
            sink.add("row-unreachable", f"row matches no request: not of the domain in {INVARIANTS_FILE}, nor any "
                     "value it does not name", path, row.line, column)
            continue
        winners = Counter(decided_by[request] for request in matched)
        lines = ", ".join(f"line {line}" for line, _ in winners.most_common(3) if line is not None)
        sink.add("row-shadowed", f"row never decides: each of the {len(matched)} kinds of request it matches is "
                 f"decided first by an earlier row ({lines})", path, row.line, column)


def _enforcer(pack: PolicyPack, rows: Sequence[PolicyRow]) -> Any:
    model = casbin.Model()
    model.load_model_from_text(read_text(pack.files[0]))
    disabled_logging()
    return casbin.Enforcer(model, RowsAdapter(rows), enable_log=False)


# ---------------------------------------------------------------- entry points


def lint_pack(directory: Path) -> LintReport:
    """Lint a pack directory (``model.conf``, ``policy.csv``, ``pack.yaml``, ``commitments.yaml``)."""
    sink = _Sink()
    paths = {name: directory / name for name in (MODEL_FILE, POLICY_FILE, CONFIG_FILE, COMMITMENTS_FILE)}
    for path in paths.values():
        if not path.is_file():
            sink.add("pack-file", "missing policy pack file" if not path.exists() else "not a regular file", str(path))
    commitments: Mapping[str, Commitment] | None = None
    if paths[COMMITMENTS_FILE].is_file():
        try:
            commitments = load_commitments(paths[COMMITMENTS_FILE])
        except InputError as exc:
            sink.add("pack-file", exc.reason, exc.path or str(directory), exc.line)
    if paths[CONFIG_FILE].is_file():
        try:
            load_config(paths[CONFIG_FILE])
        except InputError as exc:
            sink.add("pack-file", exc.reason, exc.path or str(directory), exc.line)
    model = lint_model(paths[MODEL_FILE], sink, pack=True) if paths[MODEL_FILE].is_file() else None
    policy = str(paths[POLICY_FILE])
    rows: list[_Row] = []
    if paths[POLICY_FILE].is_file():
        try:
            text = read_text(paths[POLICY_FILE])
        except InputError as exc:
            sink.add("pack-file", exc.reason, policy)
        else:
            read, headers = _read_rows(policy, text, sink)
            rows = _lint_rows(policy, read, model, sink)
            if model is not None and not sink.has_errors(model.path):
                _lint_pack_rows(policy, rows, headers, model, commitments, sink)
    invariants_path = directory / INVARIANTS_FILE
    if not sink.has_errors():
        try:
            pack = load_pack(directory)
        except InputError as exc:  # anything the loader refuses that the checks above missed
            sink.add("pack-file", exc.reason, exc.path or str(directory), exc.line)
        else:
            if invariants_path.is_file():
                try:
                    invariants = load_invariants(invariants_path, pack.request_fields)
                except InputError as exc:
                    sink.add("pack-file", exc.reason, exc.path or str(directory), exc.line)
                else:
                    _lint_domain(policy, rows, pack, invariants, sink)
    files = [str(path) for path in [*paths.values(), invariants_path] if path.is_file()]
    return _report(sink, files)


def lint_files(model_path: Path | None, policy_paths: Sequence[Path]) -> LintReport:
    """Lint one Casbin model and the policy files written against it (either may be absent)."""
    sink = _Sink()
    model = lint_model(model_path, sink) if model_path is not None else None
    for path in policy_paths:
        try:
            text = read_text(path)
        except InputError as exc:
            sink.add("pack-file", exc.reason, str(path))
            continue
        _lint_rows(str(path), _read_rows(str(path), text, sink)[0], model, sink)
    files = [str(p) for p in [*([model_path] if model_path is not None else []), *policy_paths]]
    return _report(sink, files)


def pair_files(paths: Iterable[Path]) -> list[tuple[Path | None, list[Path]]]:
    """Group ``.conf`` models with the ``.csv`` policies written against them.

    Names are compared without ``_model``/``_policy``: a policy goes with the model
    of the same name, else the one whose name is the longest prefix of its name,
    else the only model given. Models without policies are linted alone, policies
    without a model only for what needs no model.
    """
    paths = list(paths)
    models = sorted(p for p in paths if p.suffix == ".conf")
    policies = sorted(p for p in paths if p.suffix != ".conf")
    groups: dict[Path | None, list[Path]] = {model: [] for model in models}
    for policy in policies:
        name = _drop_last(policy.stem, "_policy")
        best: Path | None = models[0] if len(models) == 1 else None
        best_length = 0
        for model in models:
            stem = _drop_last(model.stem, "_model")
            length = len(stem) + 1 if stem == name else len(stem) if name.startswith(stem) else 0
            if length > best_length:
                best, best_length = model, length
        groups.setdefault(best, []).append(policy)
    return list(groups.items())


def _drop_last(stem: str, word: str) -> str:
    index = stem.rfind(word)
    return stem[:index] + stem[index + len(word) :] if index >= 0 else stem


def lint_paths(paths: Sequence[Path]) -> LintReport:
    """Lint pack directories, directories of model/policy files, and loose files."""
    reports: list[LintReport] = []
    loose: list[Path] = []
    for path in paths:
        if path.is_dir():
            if (path / CONFIG_FILE).is_file() or (path / COMMITMENTS_FILE).is_file():
                reports.append(lint_pack(path))
                continue
            found = sorted(p for p in path.iterdir() if p.suffix in (".conf", ".csv") and p.is_file())
            if not found:
                raise InputError("no pack, model (.conf) or policy (.csv) file in this directory", path=path)
            loose.extend(found)
        elif path.is_file():
            loose.append(path)
        else:
            raise InputError("no such file or directory", path=path)
    for model, policies in pair_files(loose):
        reports.append(lint_files(model, policies))
    diagnostics = [d for report in reports for d in report.diagnostics]
    files = [f for report in reports for f in report.files]
    return LintReport(tuple(sorted(diagnostics, key=Diagnostic.sort_key)), tuple(dict.fromkeys(files)))


def _report(sink: _Sink, files: Sequence[str]) -> LintReport:
    return LintReport(tuple(sorted(sink.found, key=Diagnostic.sort_key)), tuple(files))
