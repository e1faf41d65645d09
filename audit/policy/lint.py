"""``policy lint``: every problem in Casbin model and policy files, at file:line:column.

Unlike :func:`audit.policy.load.load_pack`, which stops at the first problem, the
linter reports every problem :mod:`audit.policy.parse` finds, and adds checks of its
own, each under a stable check id (:data:`audit.policy.diagnostics.CHECKS`).

Two profiles:

* any Casbin model/policy pair (:func:`lint_files`): syntax, unknown sections and
  keys, undefined row types, wrong field counts, unknown effects, ``eval()`` and
  ``timeMatch`` in matchers, invalid or unanchored ``regexMatch`` patterns,
  duplicate rows, role cycles;
* a residency-audit pack directory (:func:`lint_pack`), adding the pack
  conventions: block headers and commitment ids, priorities, effects, rule ids
  that must be in the rule catalogue the caller passes (rule id -> commitment),
  values the declared domain (``invariants.yaml``) lacks, and rows that can never
  decide (shadowed or unreachable over the domain, found with the real pycasbin
  enforcer).

Each profile is a tuple of check functions run in order. Linting never evaluates
policy text itself; pycasbin evaluates the pack's own matcher, and only for packs
that pass every other check. This package knows no rule implementations: the
catalogue comes from the caller (the CLI passes the replay rules').
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import casbin
from casbin.util import escape_assertion, remove_comments
from casbin.util.log import disabled_logging

from audit.commitments import load_commitments
from audit.errors import InputError, PolicyError
from audit.models import Commitment
from audit.policy.budget import UNLIMITED, Budget, BudgetExceeded
from audit.policy.config import PackRule
from audit.policy.diagnostics import Diagnostic, diagnostic, quote
from audit.policy.domain import (
    INVARIANTS_FILE,
    Domain,
    Invariants,
    candidates,
    check_domain_size,
    load_invariants,
    matcher_is_simple,
    reach,
    undeclared_values,
)
from audit.policy.files import UnsafePackFile, check_pack_file
from audit.policy.load import RowsAdapter, load_config, load_pack, load_rules_file
from audit.policy.matcher import compile_regex, install_functions
from audit.policy.pack import PolicyPack, PolicyRow, Request, enforce_or_refuse
from audit.policy.parse import (
    COMMITMENTS_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    NO_RULE,
    POLICY_FILE,
    RULE_ID_PATTERN,
    RULES_FILE,
    Entry,
    ParsedModel,
    ParsedPolicy,
    Problem,
    Row,
    parse_model,
    parse_policy,
    read_text,
)
from audit.policy.symmetry import SymmetricDecisions, ValueClasses, interchangeable
from audit.policy.wording import TemplateScope

RuleCatalogue = Mapping[str, str | None]
"""Rule id -> id of the commitment the rule implements: the rules deny rows may name."""

EFFECTS = frozenset(
    {
        "some(where (p_eft == allow))",
        "!some(where (p_eft == deny))",
        "some(where (p_eft == allow)) && !some(where (p_eft == deny))",
        "priority(p_eft) || deny",
        "subjectPriority(p_eft) || deny",
    }
)
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


class _Sink:
    def __init__(self) -> None:
        self.found: list[Diagnostic] = []

    def add(self, check: str, message: str, path: str, line: int | None = None, column: int | None = None) -> None:
        self.found.append(diagnostic(check, message, path, line, column))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.found.extend(problem.diagnostic() for problem in problems)

    def refused(self, exc: InputError, path: Path | str) -> None:
        """A file the loaders refuse, as a ``pack-file`` diagnostic (a symlink out of the pack stops the run)."""
        if isinstance(exc, UnsafePackFile | BudgetExceeded):
            raise exc
        self.add("pack-file", exc.reason, exc.path or str(path), exc.line)

    def has_errors(self, path: str | None = None) -> bool:
        return any(d.severity == "error" and (path is None or d.file == path) for d in self.found)


# ---------------------------------------------------------------- model.conf


@dataclass
class LintedModel:
    """A parsed model and what the row checks need from its matcher."""

    parsed: ParsedModel
    code_fields: dict[str, set[str]] = field(default_factory=dict)
    """Per p type, fields the matcher passes to ``eval()``."""
    regex_fields: dict[str, set[str]] = field(default_factory=dict)
    """Per p type, fields the matcher uses as a ``regexMatch`` pattern."""

    def entries(self, section: str) -> list[Entry]:
        """The loaded definitions of one section."""
        return [entry for entry in self.parsed.entries.values() if entry.section == section]


def _unknown_effect(model: LintedModel, sink: _Sink) -> None:
    for entry in model.entries("policy_effect"):
        if remove_comments(escape_assertion(entry.value)) not in EFFECTS:
            sink.add(
                "unknown-effect",
                f"policy effect {quote(entry.value)} is not one pycasbin implements (it raises "
                "'unsupported effect' at enforce time)",
                model.parsed.path,
                entry.line,
                model.parsed.value_column(entry, 0),
            )


def _matcher_eval(model: LintedModel, sink: _Sink) -> None:
    for entry in model.entries("matchers"):
        for match in _EVAL.finditer(entry.value):
            sink.add(
                "matcher-eval",
                f"{entry.key} calls eval(): pycasbin runs policy text as Python expressions "
                "(a sandbox, but code nonetheless)",
                model.parsed.path,
                entry.line,
                model.parsed.value_column(entry, match.start()),
            )
        for match in _EVAL_FIELD.finditer(entry.value):
            model.code_fields.setdefault(match.group(1), set()).add(match.group(2))


def _matcher_time_match(model: LintedModel, sink: _Sink) -> None:
    for entry in model.entries("matchers"):
        for match in _TIME_MATCH.finditer(entry.value):
            sink.add(
                "matcher-time-match",
                f"{entry.key} calls timeMatch, which compares with the current time: "
                "decisions change between runs and replay is not deterministic",
                model.parsed.path,
                entry.line,
                model.parsed.value_column(entry, match.start()),
            )


def _matcher_regex(model: LintedModel, sink: _Sink) -> None:
    for entry in model.entries("matchers"):
        for match in _REGEX_MATCH.finditer(entry.value):
            pattern = match.group(2).strip()
            literal = _LITERAL.match(pattern)
            field_ref = _P_FIELD.match(pattern)
            problem = regex_problem(literal.group(2)) if literal is not None else None
            if problem is not None:
                sink.add(
                    problem[0],
                    f"{entry.key}: {problem[1]}",
                    model.parsed.path,
                    entry.line,
                    model.parsed.value_column(entry, match.start()),
                )
            elif literal is None and field_ref is not None:
                model.regex_fields.setdefault(field_ref.group(1), set()).add(field_ref.group(2))


MODEL_CHECKS: tuple[Callable[[LintedModel, _Sink], None], ...] = (
    _unknown_effect,
    _matcher_eval,
    _matcher_time_match,
    _matcher_regex,
)
"""Model checks the loader does not make (it refuses what :func:`~audit.policy.parse.parse_model` finds)."""


def regex_problem(pattern: str) -> tuple[str, str] | None:
    """``(check, message)`` when a ``regexMatch`` pattern is invalid or unanchored.

    Patterns are compiled by RE2, the linear-time engine they run on: one RE2 cannot
    run (backreferences, lookaround, a program too large) is invalid.
    """
    try:
        compile_regex(pattern)
    except PolicyError as exc:
        return "regex-invalid", f"regexMatch pattern does not compile: {exc.reason}"
    anchored_end = (pattern.endswith("$") and not pattern.endswith("\\$")) or pattern.endswith("\\Z")
    if not pattern.startswith("^") or not anchored_end:
        return "regex-unanchored", (
            f"regexMatch pattern {quote(pattern)} is not anchored with ^...$: pycasbin anchors it at the start only "
            "(re.match), Go's casbin nowhere, so the two engines disagree"
        )
    return None


def lint_model(path: Path, sink: _Sink, *, pack: bool = False, root: Path | None = None) -> LintedModel:
    """Check one model file; ``pack`` adds the residency-audit pack conventions."""
    try:
        text = read_text(path, root)
    except InputError as exc:
        sink.refused(exc, path)
        return LintedModel(ParsedModel(str(path)))
    model = LintedModel(parse_model(str(path), text, pack=pack))
    sink.extend(model.parsed.problems)
    for check in MODEL_CHECKS:
        check(model, sink)
    return model


# ---------------------------------------------------------------- policy rows


@dataclass(frozen=True)
class _Rows:
    """What the row checks look at: one parsed policy file and the model it is written against."""

    policy: ParsedPolicy
    model: LintedModel | None
    rules: RuleCatalogue | None
    """The rule catalogue, when the pack conventions apply."""


def _code_fields(rows: _Rows, sink: _Sink) -> None:
    if rows.model is None:
        return
    for row in rows.policy.fitting:
        names = rows.model.parsed.row_fields[row.ptype]
        for name in rows.model.code_fields.get(row.ptype, set()) & set(names):
            index = names.index(name)
            sink.add(
                "matcher-eval",
                f"field {name} {quote(row.fields[index])} is run as code by eval() in the matcher",
                rows.policy.path,
                row.line,
                row.columns[index + 1],
            )


def _regex_fields(rows: _Rows, sink: _Sink) -> None:
    if rows.model is None:
        return
    for row in rows.policy.fitting:
        names = rows.model.parsed.row_fields[row.ptype]
        for name in rows.model.regex_fields.get(row.ptype, set()) & set(names):
            index = names.index(name)
            problem = regex_problem(row.fields[index])
            if problem is not None:
                sink.add(problem[0], f"field {name}: {problem[1]}", rows.policy.path, row.line, row.columns[index + 1])


def _role_cycles(rows: _Rows, sink: _Sink) -> None:
    """Report each cycle of grouping links once, at the row that closes it."""
    kept = rows.policy.kept
    for ptype in sorted({row.ptype for row in kept if row.ptype.startswith("g")}):
        edges: dict[str, list[tuple[str, Row]]] = {}
        for row in kept:
            if row.ptype == ptype and len(row.fields) >= 2:
                edges.setdefault(row.fields[0], []).append((row.fields[1], row))
        _Cycles(rows.policy.path, ptype, edges, sink).search()


class _Cycles:
    """Depth-first search for cycles in one kind of grouping link."""

    def __init__(self, path: str, ptype: str, edges: dict[str, list[tuple[str, Row]]], sink: _Sink) -> None:
        self.path, self.ptype, self.edges, self.sink = path, ptype, edges, sink
        self.state: dict[str, int] = {}
        self.reported: set[frozenset[str]] = set()

    def search(self) -> None:
        for start in sorted(self.edges):
            if start not in self.state:
                self._visit(start, [])

    def _visit(self, node: str, trail: list[str]) -> None:
        self.state[node] = 1
        trail.append(node)
        for target, row in self.edges.get(node, ()):
            if self.state.get(target) == 1:
                self._report([*trail[trail.index(target) :], target], row)
            elif target not in self.state:
                self._visit(target, trail)
        trail.pop()
        self.state[node] = 2

    def _report(self, cycle: list[str], row: Row) -> None:
        if frozenset(cycle) not in self.reported:
            self.reported.add(frozenset(cycle))
            self.sink.add(
                "role-cycle",
                f"{self.ptype} rows form a cycle: {' -> '.join(cycle)}",
                self.path,
                row.line,
                row.columns[2],
            )


def _rule_files(rows: _Rows, sink: _Sink) -> None:
    """Deny rows name a rule of the catalogue that implements the row's commitment."""
    if rows.rules is None or rows.model is None:
        return
    for row in rows.policy.kept:
        if row.ptype != "p":
            continue
        named = row.named(rows.model.parsed.row_fields["p"])
        (eft, _), (cid, _), (rule, column) = named["eft"], named["commitment"], named["rule"]
        if eft != "deny" or rule == NO_RULE or not RULE_ID_PATTERN.fullmatch(rule):
            continue
        if rule not in rows.rules:
            sink.add(
                "rule-unknown",
                f"rule {quote(rule)} is neither an engine rule (audit/replay/rules/) nor in the pack's rules.yaml",
                rows.policy.path,
                row.line,
                column,
            )
        elif rows.rules[rule] is not None and rows.rules[rule] != cid:
            sink.add(
                "rule-unknown",
                f"row cites {cid} but rule {rule} implements {rows.rules[rule]}",
                rows.policy.path,
                row.line,
                column,
            )


ROW_CHECKS: tuple[Callable[[_Rows, _Sink], None], ...] = (
    _code_fields,
    _regex_fields,
    _role_cycles,
    _rule_files,
)
"""Row checks the loader does not make (it refuses what :func:`~audit.policy.parse.parse_policy` finds)."""


def _lint_policy(
    path: Path,
    model: LintedModel | None,
    sink: _Sink,
    *,
    pack: bool = False,
    commitments: Mapping[str, Commitment] | None = None,
    rules: RuleCatalogue | None = None,
    root: Path | None = None,
) -> ParsedPolicy | None:
    """Check one policy file; ``pack`` adds the pack conventions when the model has no errors."""
    try:
        text = read_text(path, root)
    except InputError as exc:
        sink.refused(exc, path)
        return None
    conventions = pack and model is not None and not sink.has_errors(model.parsed.path)
    policy = parse_policy(
        str(path), text, model.parsed if model is not None else None, commitments=commitments, conventions=conventions
    )
    sink.extend(policy.problems)
    rows = _Rows(policy, model, rules if conventions else None)
    for check in ROW_CHECKS:
        check(rows, sink)
    return policy


# ---------------------------------------------------------------- domain analysis


def _lint_undeclared(
    path: str, columns: Mapping[int, tuple[int, ...]], pack: PolicyPack, invariants: Invariants, sink: _Sink
) -> None:
    for gap in undeclared_values(pack.rows, pack.definitions, invariants.domain):
        check = {"role": "unknown-role", "category": "unknown-category"}.get(gap.kind, "unknown-value")
        what = {"role": "role", "category": "data category", "action": "action"}.get(gap.kind, "value")
        sink.add(
            check,
            f"{what} {quote(gap.value)} is not declared in {INVARIANTS_FILE} (domain) and is no group",
            path,
            gap.row.line,
            columns[gap.row.line][gap.index + 1],
        )


def _lint_store_classes(pack: PolicyPack, invariants: Invariants, sink: _Sink) -> None:
    """The storage facet's object values are exactly the store classes ``pack.yaml`` derives."""
    domain = invariants.domain
    if "storage" not in domain.facets or len(pack.request_fields) < 3:
        return
    declared = set(domain.values("storage", pack.request_fields[2]))
    derived = set(pack.config.store_classes())
    path = str(invariants.path)
    for name in sorted(derived - declared):
        sink.add(
            "store-class-mismatch",
            f"store class {quote(name)} ({CONFIG_FILE}) is not in the storage domain: prove never checks it",
            path,
        )
    for name in sorted(declared - derived):
        sink.add(
            "store-class-mismatch",
            f"store class {quote(name)} is in the storage domain but {CONFIG_FILE} never derives it",
            path,
        )


def _lint_never_deciding(
    path: str,
    columns: Mapping[int, tuple[int, ...]],
    pack: PolicyPack,
    invariants: Invariants,
    sink: _Sink,
    budget: Budget,
) -> None:
    """p rows that decide no request of the domain: unreachable, or shadowed by earlier rows.

    Requests that differ only in values the enforcer cannot tell apart are asked once
    (:mod:`audit.policy.symmetry`); each enforcer's classes are checked on itself.
    """
    domain = invariants.domain.with_value(UNDECLARED)
    check_domain_size(domain, invariants.path)
    values = domain.every_value()
    decided_by = _deciding_lines(pack, domain, budget, pack.interchangeable(values))
    deciding = set(decided_by.values())
    grouping = [row for row in pack.rows if row.ptype != "p"]
    groups = reach(grouping)
    simple = matcher_is_simple(pack.matcher)
    for row in pack.rows:
        if row.ptype != "p" or row.line in deciding:
            continue
        when = candidates(domain, row, pack.definitions["p"], groups) if simple else None
        alone = _enforcer(pack, [*grouping, row])
        matches: SymmetricDecisions[Request, bool] = SymmetricDecisions(
            interchangeable(alone, values), partial(_matches, alone, path=path)
        )
        matched = [request for request in domain.requests(when) if _checked(budget, path) and matches(request)]
        column = columns[row.line][0]
        if not matched:
            sink.add(
                "row-unreachable",
                f"row matches no request: not of the domain in {INVARIANTS_FILE}, nor any value it does not name",
                path,
                row.line,
                column,
            )
            continue
        winners = Counter(decided_by[request] for request in matched)
        lines = ", ".join(f"line {line}" for line, _ in winners.most_common(3) if line is not None)
        sink.add(
            "row-shadowed",
            f"row never decides: each of the {len(matched)} kinds of request it matches is "
            f"decided first by an earlier row ({lines})",
            path,
            row.line,
            column,
        )


def _checked(budget: Budget, path: str) -> bool:
    budget.check(path)
    return True


def _matches(enforcer: Any, request: Request, path: str) -> bool:
    return bool(enforce_or_refuse(enforcer, request, path=path)[1])


def _deciding_lines(
    pack: PolicyPack, domain: Domain, budget: Budget, classes: ValueClasses | None
) -> dict[Request, int | None]:
    """The line of the row deciding each request of the domain (``None``: no row matches)."""
    decide = SymmetricDecisions(classes, pack.decide_uncached)
    decided_by: dict[Request, int | None] = {}
    for request in domain.requests():
        budget.check(pack.files[1])
        decision = decide(request)
        decided_by[request] = decision.row.line if decision.row is not None else None
    return decided_by


def _enforcer(pack: PolicyPack, rows: Sequence[PolicyRow]) -> Any:
    model = casbin.Model()
    model.load_model_from_text(read_text(pack.files[0], pack.directory))
    disabled_logging()
    return install_functions(casbin.Enforcer(model, RowsAdapter(rows), enable_log=False))


# ---------------------------------------------------------------- a pack directory


@dataclass
class _Pack:
    """One pack being linted: its files, and what the steps so far have read."""

    directory: Path
    rules: RuleCatalogue
    budget: Budget = UNLIMITED
    scopes: Mapping[str, TemplateScope] = field(default_factory=dict)
    sink: _Sink = field(default_factory=_Sink)
    commitments: Mapping[str, Commitment] | None = None
    model: LintedModel | None = None
    policy: ParsedPolicy | None = None

    def path(self, name: str) -> Path:
        return self.directory / name

    def files(self) -> list[str]:
        names = (MODEL_FILE, POLICY_FILE, CONFIG_FILE, COMMITMENTS_FILE, RULES_FILE, INVARIANTS_FILE)
        return [str(self.path(name)) for name in names if self.path(name).is_file()]


def _pack_files(pack: _Pack) -> None:
    for name in (MODEL_FILE, POLICY_FILE, CONFIG_FILE, COMMITMENTS_FILE):
        path = pack.path(name)
        if not path.is_file():
            pack.sink.add(
                "pack-file", "missing policy pack file" if not path.exists() else "not a regular file", str(path)
            )


def _pack_commitments(pack: _Pack) -> None:
    if pack.path(COMMITMENTS_FILE).is_file():
        try:
            check_pack_file(pack.path(COMMITMENTS_FILE), pack.directory)
            pack.commitments = load_commitments(pack.path(COMMITMENTS_FILE))
        except InputError as exc:
            pack.sink.refused(exc, pack.directory)


def _pack_config(pack: _Pack) -> None:
    if pack.path(CONFIG_FILE).is_file():
        try:
            load_config(pack.path(CONFIG_FILE), pack.directory)
        except InputError as exc:
            pack.sink.refused(exc, pack.directory)
    try:
        own = load_rules_file(pack.path(RULES_FILE), pack.directory)
    except InputError as exc:
        pack.sink.refused(exc, pack.directory)
        return
    pack.rules = {**pack.rules, **{rule.id: rule.commitment for rule in own if rule.scope == "replay"}}
    for rule in own:
        _pack_rule_words(pack, rule)


def _pack_rule_words(pack: _Pack, rule: PackRule) -> None:
    """A pack rule's kind and message templates, checked as its scope's binder checks them."""
    scope = pack.scopes.get(rule.scope)
    if scope is None:
        return
    where = pack.path(RULES_FILE)
    if rule.kind not in scope.kinds:
        known = ", ".join(sorted(scope.kinds))
        reason = f"kind {rule.kind!r} is not a {rule.scope} engine rule (known: {known})"
        pack.sink.refused(rule.refusal(reason, where, "kind"), where)
        return
    for key in ("message", "copy_message"):
        try:
            rule.template(key, scope.names, where, scope.may_be_empty)
        except InputError as exc:
            pack.sink.refused(exc, where)


def _pack_model(pack: _Pack) -> None:
    if pack.path(MODEL_FILE).is_file():
        pack.model = lint_model(pack.path(MODEL_FILE), pack.sink, pack=True, root=pack.directory)


def _pack_policy(pack: _Pack) -> None:
    if pack.path(POLICY_FILE).is_file():
        pack.policy = _lint_policy(
            pack.path(POLICY_FILE),
            pack.model,
            pack.sink,
            pack=True,
            commitments=pack.commitments,
            rules=pack.rules,
            root=pack.directory,
        )


def _pack_domain(pack: _Pack) -> None:
    """Load the pack as replay does, then check its rows against the declared domain."""
    if pack.sink.has_errors():
        return
    try:
        loaded = load_pack(pack.directory)
    except InputError as exc:  # anything the loader refuses that the checks above missed
        pack.sink.refused(exc, pack.directory)
        return
    if not pack.path(INVARIANTS_FILE).is_file():
        return
    try:
        invariants = load_invariants(pack.path(INVARIANTS_FILE), loaded.request_fields, pack.directory)
    except InputError as exc:
        pack.sink.refused(exc, pack.directory)
        return
    path = str(pack.path(POLICY_FILE))
    columns = {row.line: row.columns for row in (pack.policy.kept if pack.policy is not None else ())}
    _lint_undeclared(path, columns, loaded, invariants, pack.sink)
    _lint_store_classes(loaded, invariants, pack.sink)
    try:
        _lint_never_deciding(path, columns, loaded, invariants, pack.sink, pack.budget)
    except BudgetExceeded:
        raise
    except PolicyError as exc:  # a matcher function refused a value, or the matcher fails on some request
        pack.sink.add("matcher-disallowed", exc.reason, exc.path or str(pack.path(MODEL_FILE)), exc.line)


PACK_STEPS: tuple[Callable[[_Pack], None], ...] = (
    _pack_files,
    _pack_commitments,
    _pack_config,
    _pack_model,
    _pack_policy,
    _pack_domain,
)
"""What :func:`lint_pack` checks, in order."""


# ---------------------------------------------------------------- entry points


def lint_pack(
    directory: Path,
    rules: RuleCatalogue,
    *,
    budget: Budget = UNLIMITED,
    scopes: Mapping[str, TemplateScope] | None = None,
) -> LintReport:
    """Lint a pack directory (``model.conf``, ``policy.csv``, ``pack.yaml``, ``commitments.yaml``, ``rules.yaml``).

    ``rules`` maps each rule id deny rows may name to the commitment it implements;
    ``budget`` bounds the time the domain analysis may take; ``scopes`` (by rule
    scope) lets the kinds and message templates of ``rules.yaml`` be checked.
    """
    pack = _Pack(directory, rules, budget, scopes or {})
    for step in PACK_STEPS:
        step(pack)
    return _report(pack.sink, pack.files())


def lint_files(model_path: Path | None, policy_paths: Sequence[Path]) -> LintReport:
    """Lint one Casbin model and the policy files written against it (either may be absent)."""
    sink = _Sink()
    model = lint_model(model_path, sink) if model_path is not None else None
    for path in policy_paths:
        _lint_policy(path, model, sink)
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
        groups.setdefault(_model_of(policy, models), []).append(policy)
    return list(groups.items())


def _model_of(policy: Path, models: Sequence[Path]) -> Path | None:
    name = _drop_last(policy.stem, "_policy")
    best: Path | None = models[0] if len(models) == 1 else None
    best_length = 0
    for model in models:
        stem = _drop_last(model.stem, "_model")
        length = len(stem) + 1 if stem == name else len(stem) if name.startswith(stem) else 0
        if length > best_length:
            best, best_length = model, length
    return best


def _drop_last(stem: str, word: str) -> str:
    index = stem.rfind(word)
    return stem[:index] + stem[index + len(word) :] if index >= 0 else stem


def _is_pack(path: Path) -> bool:
    return path.is_dir() and ((path / CONFIG_FILE).is_file() or (path / COMMITMENTS_FILE).is_file())


def _loose_files(path: Path) -> list[Path]:
    """The model and policy files a path names: itself, or those in a directory that is no pack."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such file or directory", path=path)
    found = sorted(p for p in path.iterdir() if p.suffix in (".conf", ".csv") and p.is_file())
    if not found:
        raise InputError("no pack, model (.conf) or policy (.csv) file in this directory", path=path)
    return found


def lint_paths(
    paths: Sequence[Path],
    rules: RuleCatalogue,
    *,
    budget: Budget = UNLIMITED,
    scopes: Mapping[str, TemplateScope] | None = None,
) -> LintReport:
    """Lint pack directories, directories of model/policy files, and loose files.

    ``rules`` maps each rule id deny rows of a pack may name to the commitment it implements;
    ``budget`` bounds the time the domain analysis of packs may take; ``scopes`` as
    :func:`lint_pack` takes them.
    """
    reports: list[LintReport] = []
    loose: list[Path] = []
    for path in paths:
        if _is_pack(path):
            reports.append(lint_pack(path, rules, budget=budget, scopes=scopes))
        else:
            loose.extend(_loose_files(path))
    for model, policies in pair_files(loose):
        reports.append(lint_files(model, policies))
    diagnostics = [d for report in reports for d in report.diagnostics]
    files = [f for report in reports for f in report.files]
    return LintReport(tuple(sorted(diagnostics, key=Diagnostic.sort_key)), tuple(dict.fromkeys(files)))


def _report(sink: _Sink, files: Sequence[str]) -> LintReport:
    return LintReport(tuple(sorted(sink.found, key=Diagnostic.sort_key)), tuple(files))
