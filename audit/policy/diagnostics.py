"""Diagnostics shared by ``policy lint``, ``test``, ``prove`` and ``diff``, and their check catalogue.

A :class:`Diagnostic` is one problem at a place (file, 1-based line and column where
known) under a stable check id with a :data:`Level` (its ``severity`` field: error,
warning or note). :data:`CHECKS` lists every check id the policy commands can report,
with its default level and a one-line title; SARIF output publishes this catalogue as
the tool's rules. This module holds data only: finding problems is the job of the
modules that import it, rendering is :mod:`audit.report.sarif` and the CLI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Level = Literal["error", "warning", "note"]
"""How serious a diagnostic is; not to be confused with a finding's :data:`audit.models.Severity`."""

LEVEL_RANK: dict[Level, int] = {"note": 0, "warning": 1, "error": 2}


class LevelChoice(StrEnum):
    """A :data:`Level` as a command-line choice (``policy lint --fail-on``); same values."""

    error = "error"
    warning = "warning"
    note = "note"


@dataclass(frozen=True)
class Check:
    """One kind of problem: stable id, default level (``severity``), title and how to fix it."""

    id: str
    severity: Level
    title: str
    help: str


MAX_QUOTE = 200
"""A value quoted in a message is cut to this many characters."""
MAX_MESSAGE = 600
"""A whole message is cut to this many characters."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def clean(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line: control and bidi characters escaped, cut to ``limit`` characters."""
    escaped = _CONTROL.sub(_escape, text)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "\u2026"


def quote(value: str, limit: int = MAX_QUOTE) -> str:
    """A value from a policy file for a message: its first line, cut, escaped and in quotes."""
    first, _, rest = value.partition("\n")
    cut = len(first) > limit or bool(rest)
    shown = repr(first[:limit])
    return f"{shown}\u2026" if cut else shown


@dataclass(frozen=True)
class Diagnostic:
    """One problem found, where it is, and which check found it.

    The message is kept to one line of at most :data:`MAX_MESSAGE` characters with
    control characters escaped, whoever built it: every renderer (text, JSON, SARIF,
    JUnit) shows it as it is.
    """

    check: str
    severity: Level
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", clean(self.message))

    def where(self) -> str:
        """``file:line:column`` (as much of it as is known), or ``-``."""
        if self.file is None:
            return "-"
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def sort_key(self) -> tuple[str, int, int, str]:
        """Order by file, line, column, check."""
        return (self.file or "", self.line or 0, self.column or 0, self.check)


def _checks(*checks: Check) -> dict[str, Check]:
    return {check.id: check for check in checks}


CHECKS: dict[str, Check] = _checks(
    # model.conf
    Check("model-syntax", "error", "model.conf line pycasbin cannot parse",
          "Write 'key = value' lines inside [section] headers; close every '['."),
    Check("model-unknown-section", "error", "unknown model.conf section",
          "Sections are request_definition, policy_definition, role_definition, policy_effect, matchers."),
    Check("model-unknown-key", "error", "definition pycasbin ignores or misreads",
          "Name definitions r, p, g, e, m, numbered r2, g2, ... without gaps; put comments on their own line."),
    Check("model-duplicate-key", "error", "definition given twice", "Keep one definition per key."),
    Check("model-missing-definition", "error", "required model definition missing",
          "A model needs r, p, e and m."),
    Check("model-rejected", "error", "pycasbin rejects the model or its matcher",
          "Fix the definition named in the message; run the matcher once with pycasbin."),
    Check("unknown-effect", "error", "policy effect pycasbin does not recognise",
          "Use one of the five effects pycasbin implements (the pack requires 'priority(p.eft) || deny')."),
    Check("pack-model", "error", "model.conf breaks the pack conventions",
          "See docs/policy-ci.md: priority effect, p fields priority/eft/commitment/rule, plain role definitions."),
    Check("matcher-eval", "warning", "eval() runs policy text as code",
          "Replace eval() with explicit comparisons; policy rows are data, not code."),
    Check("matcher-time-match", "warning", "timeMatch compares with the wall clock",
          "Pass the event time as a request field and compare it; replay must not depend on now()."),
    Check("matcher-disallowed", "error", "matcher uses syntax outside the allow-list; it is never evaluated",
          "Use fields (r.sub, p.obj), comparisons, &&, ||, !, short literals and the g/keyMatch/regexMatch/"
          "globMatch/ipMatch functions only (docs/policy-ci.md)."),
    Check("regex-invalid", "error", "regexMatch pattern does not compile on the linear-time engine (RE2)",
          "Fix the regular expression; backreferences and lookaround are not supported."),
    Check("regex-unanchored", "warning", "regexMatch pattern is not anchored",
          "pycasbin anchors at the start only (Go's casbin nowhere); write '^...$' so both agree."),
    # policy.csv
    Check("policy-syntax", "error", "policy.csv row pycasbin cannot split",
          "Balance brackets and parentheses; one row per line."),
    Check("undefined-ptype", "error", "row of a type model.conf does not define",
          "pycasbin silently drops such rows: define the type or fix the row's first field."),
    Check("field-count", "error", "row has the wrong number of fields",
          "pycasbin fails at enforce time or truncates the row: match the definition in model.conf."),
    Check("bad-field", "error", "field is empty, has a trailing comment or odd characters",
          "Fields are [A-Za-z0-9_.*:@/-]; comments go on their own line."),
    Check("duplicate-row", "warning", "row repeats an earlier row", "Delete the duplicate."),
    Check("row-shadowed", "warning", "row can never decide: earlier rows win every request it matches",
          "Delete the row or give it a lower priority number than the rows that win."),
    Check("row-unreachable", "warning", "row matches no request of the declared domain",
          "Fix a misspelt value, or declare the value in the domain (invariants.yaml)."),
    Check("role-cycle", "error", "grouping rows form a cycle", "Remove one link of the cycle."),
    Check("priority-invalid", "error", "priority missing, not an integer, or used twice",
          "Give every p row its own non-negative integer priority."),
    Check("effect-invalid", "error", "eft is neither allow nor deny", "Write allow or deny."),
    Check("commitment-missing", "error", "row cites no commitment",
          "Put the row under a '# Cn: ...' block header and fill its commitment field."),
    Check("commitment-unknown", "error", "row cites a commitment missing from commitments.yaml",
          "Cite an id from commitments.yaml, or add the commitment there."),
    Check("commitment-header-mismatch", "error", "row cites a commitment its block header does not name",
          "Make the row's commitment one its header names; grouping rows need a one-commitment header."),
    Check("rule-invalid", "error", "rule field wrong for the row's effect",
          "Deny rows name a lower-kebab-case rule id; allow rows name '-'."),
    Check("rule-unknown", "error", "rule id has no rule file, or the rule implements another commitment",
          "Add audit/replay/rules/<rule>.py or cite the rule's commitment."),
    Check("unknown-category", "error", "data category not declared in the domain",
          "Declare the category in invariants.yaml (domain) or fix the spelling."),
    Check("unknown-role", "error", "actor or recipient class not declared in the domain",
          "Declare the class in invariants.yaml (domain) or fix the spelling."),
    Check("unknown-value", "error", "facet, action or context value not declared in the domain",
          "Declare the value in invariants.yaml (domain) or fix the spelling."),
    Check("store-class-mismatch", "warning", "storage domain and pack.yaml store classes disagree",
          "Declare every store class pack.yaml derives in the storage domain, and no other."),
    Check("pack-file", "error", "pack file missing or invalid", "Fix the file named in the message."),
    # policy test / prove / diff
    Check("test-failed", "error", "policy test case decided differently than expected",
          "Fix the policy or the expectation."),
    Check("coverage-below-minimum", "error", "policy rows no test case exercises",
          "Add test cases that the listed rows decide."),
    Check("row-not-covered", "note", "p row no test case decides", "Add a case this row decides."),
    Check("invariant-violated", "error", "an invariant fails for some request of the domain",
          "The message gives a counterexample request and the row that decided it."),
    Check("domain-gap", "error", "the pack names a value the declared domain lacks",
          "Declare it in the domain so proofs and diffs cover it."),
    Check("new-access", "error", "request denied by the old policy is allowed by the new one",
          "Confirm the new access is intended (then pass --allow-new-access) or fix the policy."),
    Check("access-removed", "note", "request allowed by the old policy is denied by the new one",
          "Informational."),
    Check("reason-changed", "note", "request still denied, but by another rule or commitment", "Informational."),
)  # fmt: skip


def diagnostic(
    check: str, message: str, file: str | None = None, line: int | None = None, column: int | None = None
) -> Diagnostic:
    """A diagnostic with its check's default level (``check`` must be in :data:`CHECKS`)."""
    return Diagnostic(check, CHECKS[check].severity, message, file, line, column)
