"""Load and validate a policy pack directory, or a directory of dated pack versions.

A pack directory holds ``model.conf`` (pycasbin model), ``policy.csv`` (rows),
``pack.yaml`` (:class:`~audit.policy.pack.PackConfig`) and ``commitments.yaml``
(the commitment register the rows cite). pycasbin itself is lenient where an
audit tool must not be: it silently drops rows of an undefined type, truncates
grouping rows with extra fields, fails on a wrong field count only when a request
is enforced, keeps trailing comments as part of values, and reports no line
numbers. So this module parses both files itself, line by line, and raises
:class:`~audit.errors.InputError` naming ``file:line`` for every problem before a
single row reaches pycasbin. The enforcer is then fed exactly the validated rows
through an in-memory adapter, so the rows it explains decisions with are the rows
(and line numbers) recorded here.

It does not decide requests (:mod:`audit.policy.pack`) and does not lint policy
quality beyond well-formedness (unreachable rows, coverage: ``policy lint``/``test``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import casbin
import yaml
from casbin.persist import Adapter
from casbin.util.log import disabled_logging
from pydantic import ValidationError

from audit.commitments import load_commitments
from audit.errors import InputError
from audit.models import Commitment
from audit.policy.pack import (
    CASBIN_LOCK,
    DEFAULT_COMMITMENT,
    PackConfig,
    PolicyHistory,
    PolicyPack,
    PolicyRow,
)
from audit.records import describe_validation_error, load_yaml

MODEL_FILE = "model.conf"
POLICY_FILE = "policy.csv"
CONFIG_FILE = "pack.yaml"
COMMITMENTS_FILE = "commitments.yaml"
PACK_FILES = (MODEL_FILE, POLICY_FILE, CONFIG_FILE, COMMITMENTS_FILE)

PRIORITY_EFFECT = "priority(p.eft) || deny"
REQUIRED_P_FIELDS = ("priority", "eft", "commitment", "rule")
NO_RULE = "-"

_SECTIONS = {
    "request_definition": "r",
    "policy_definition": "p",
    "role_definition": "g",
    "policy_effect": "e",
    "matchers": "m",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEADER_PATTERN = re.compile(r"#\s*(C[0-9]+(?:\s*,\s*C[0-9]+)*)\s*:")
FIELD_PATTERN = re.compile(r"[A-Za-z0-9_.*:@/-]+")
RULE_ID_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class _ModelEntry:
    section: str
    key: str
    value: str
    line: int


@dataclass(frozen=True)
class _Model:
    """What the loader needs from ``model.conf``, with the casbin Model it came from."""

    casbin_model: Any
    request_fields: tuple[str, ...]
    definitions: Mapping[str, tuple[str, ...]]
    lines: Mapping[str, int]


# ---------------------------------------------------------------- model.conf


def _scan_model(path: Path, text: str) -> list[_ModelEntry]:
    """``key = value`` entries with their 1-based lines, parsed as pycasbin does."""
    entries: list[_ModelEntry] = []
    section = ""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if pending:
            if line.endswith("\\"):
                pending.append(line[:-1].strip() + " ")
                continue
            pending.append(line)
            joined = "".join(pending)
            pending = []
            key, _, value = joined.partition("=")
            entries.append(_ModelEntry(section, key.strip(), value.strip(), start))
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            if section not in _SECTIONS:
                raise InputError(f"unknown section [{section}]", path=path, line=number)
            continue
        if not section:
            raise InputError("definition outside any [section]", path=path, line=number)
        if "=" not in line:
            raise InputError("expected 'key = value'", path=path, line=number)
        if line.endswith("\\"):
            pending = [line[:-1].strip() + " "]
            start = number
            continue
        key, _, value = line.partition("=")
        entries.append(_ModelEntry(section, key.strip(), value.strip(), number))
    if pending:
        raise InputError("definition continued past the end of the file", path=path, line=start)
    return entries


def _load_model(path: Path) -> _Model:
    text = read_text(path)
    entries = _scan_model(path, text)
    lines: dict[str, int] = {}
    for entry in entries:
        expected = _SECTIONS[entry.section]
        if not re.fullmatch(re.escape(expected) + r"[0-9]*", entry.key):
            raise InputError(
                f"[{entry.section}] defines {entry.key!r}; expected {expected}, {expected}2, ...",
                path=path,
                line=entry.line,
            )
        if entry.key in lines:
            raise InputError(
                f"{entry.key} already defined on line {lines[entry.key]}",
                path=path,
                line=entry.line,
            )
        lines[entry.key] = entry.line
    try:
        model = casbin.Model()
        model.load_model_from_text(text)
    except Exception as exc:  # pycasbin raises bare RuntimeError/ValueError on bad syntax
        raise InputError(f"pycasbin cannot read the model: {exc}", path=path) from None

    def loaded(sec: str) -> dict[str, Any]:
        section = model[sec]
        return dict(section) if section is not None else {}

    for entry in entries:
        sec = _SECTIONS[entry.section]
        if entry.key not in loaded(sec):
            raise InputError(
                f"{entry.key} is ignored by pycasbin: definitions must be numbered "
                f"{sec}, {sec}2, {sec}3, ... without gaps",
                path=path,
                line=entry.line,
            )
    for sec, name in (("r", "request"), ("p", "policy"), ("e", "policy effect"), ("m", "matcher")):
        if sec not in loaded(sec):
            raise InputError(f"no {name} definition '{sec} = ...'", path=path)
    for sec in ("r", "p", "e", "m"):
        extra = sorted(key for key in loaded(sec) if key != sec)
        if extra:
            raise InputError(
                f"only one definition '{sec}' is supported", path=path, line=lines[extra[0]]
            )

    def field_names(key: str, value: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in value.split(","))
        for name in names:
            if not _IDENTIFIER.fullmatch(name):
                raise InputError(
                    f"{name!r} is not a field name (put comments on their own line: "
                    "pycasbin keeps a trailing comment as part of the value)",
                    path=path,
                    line=lines[key],
                )
        if len(set(names)) != len(names):
            raise InputError(f"{key} names a field twice", path=path, line=lines[key])
        return names

    request_fields = field_names("r", loaded("r")["r"].value)
    definitions: dict[str, tuple[str, ...]] = {"p": field_names("p", loaded("p")["p"].value)}
    missing = [name for name in REQUIRED_P_FIELDS if name not in definitions["p"]]
    if missing:
        raise InputError(
            f"p must define the fields {', '.join(missing)}", path=path, line=lines["p"]
        )
    for key, assertion in loaded("g").items():
        parts = [part.strip() for part in assertion.value.split(",")]
        if len(parts) < 2 or any(part != "_" for part in parts):
            raise InputError(
                f"{key} must be a plain role definition like '_, _' "
                "(comments go on their own line)",
                path=path,
                line=lines[key],
            )
        definitions[key] = tuple(f"{key}.{index}" for index in range(len(parts)))
    effect = next((entry for entry in entries if entry.key == "e"), None)
    if effect is None or effect.value.split("#", 1)[0].strip() != PRIORITY_EFFECT:
        raise InputError(
            f"policy effect must be '{PRIORITY_EFFECT}' (the first matching row decides; "
            "no matching row denies)",
            path=path,
            line=lines.get("e"),
        )
    return _Model(model, request_fields, definitions, lines)


# ---------------------------------------------------------------- policy.csv


@dataclass(frozen=True)
class _Header:
    commitments: tuple[str, ...]
    line: int


def policy_lines(text: str) -> Iterator[tuple[int, str, tuple[str, ...] | None]]:
    """``(line number, line, None)`` for each row of a ``policy.csv`` text, and
    ``(line number, line, cited commitment ids)`` for each block header; blank lines
    and other comments are skipped. Shared by the loader and the linter."""
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


def _parse_rows(
    path: Path, model: _Model, commitments: Mapping[str, Commitment]
) -> list[PolicyRow]:
    text = read_text(path)
    rows: list[PolicyRow] = []
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    priorities: dict[int, int] = {}
    header: _Header | None = None
    file = str(path)
    for number, raw, cited in policy_lines(text):
        if cited is not None:
            for cid in cited:
                if cid not in commitments:
                    raise InputError(
                        f"block header cites {cid}, which is not in the commitment register",
                        path=path,
                        line=number,
                    )
            header = _Header(cited, number)
            continue
        tokens = [token.strip() for token in raw.strip().split(",")]
        ptype, values = tokens[0], tuple(tokens[1:])
        names = model.definitions.get(ptype)
        if names is None:
            defined = ", ".join(model.definitions)
            raise InputError(
                f"row type {ptype!r} is not defined in {MODEL_FILE} (defined: {defined}); "
                "pycasbin would silently drop this row",
                path=path,
                line=number,
            )
        if len(values) != len(names):
            raise InputError(
                f"{ptype} row has {len(values)} fields, {MODEL_FILE} defines {len(names)}"
                + (f" ({', '.join(names)})" if ptype == "p" else ""),
                path=path,
                line=number,
            )
        for name, value in zip(names, values, strict=True):
            _check_field(path, number, name, value)
        key = (ptype, values)
        if key in seen:
            raise InputError(f"duplicate of the row on line {seen[key]}", path=path, line=number)
        seen[key] = number
        if header is None:
            raise InputError(
                "row is not under a block header '# Cn: ...' naming the commitment it implements",
                path=path,
                line=number,
            )
        if ptype == "p":
            row = _policy_row(
                path,
                number,
                dict(zip(names, values, strict=True)),
                values,
                header,
                commitments,
                priorities,
            )
        else:
            if len(header.commitments) != 1:
                raise InputError(
                    f"grouping row cites its block header (line {header.line}), which names "
                    f"{len(header.commitments)} commitments; "
                    "give grouping rows a header naming one",
                    path=path,
                    line=number,
                )
            row = PolicyRow(ptype, values, file, number, commitment=header.commitments[0])
        rows.append(row)
    return rows


def _check_field(path: Path, line: int, name: str, value: str) -> None:
    if not value:
        raise InputError(f"field {name} is empty", path=path, line=line)
    if "#" in value:
        raise InputError(
            "trailing comments are not allowed in rows (pycasbin keeps them as part of the field)",
            path=path,
            line=line,
        )
    if not FIELD_PATTERN.fullmatch(value):
        raise InputError(
            f"field {name} {value!r} has characters outside [A-Za-z0-9_.*:@/-]",
            path=path,
            line=line,
        )


def _policy_row(
    path: Path,
    line: int,
    named: Mapping[str, str],
    values: tuple[str, ...],
    header: _Header,
    commitments: Mapping[str, Commitment],
    priorities: dict[int, int],
) -> PolicyRow:
    priority_text = named["priority"]
    if not priority_text.isdigit() or not priority_text.isascii():
        raise InputError(
            f"priority {priority_text!r} is not a non-negative integer", path=path, line=line
        )
    priority = int(priority_text)
    if priority in priorities:
        raise InputError(
            f"priority {priority} is already used on line {priorities[priority]}; "
            "give every p row its own priority so the deciding order is explicit",
            path=path,
            line=line,
        )
    priorities[priority] = line
    eft = named["eft"]
    if eft not in ("allow", "deny"):
        raise InputError(f"eft {eft!r} must be allow or deny", path=path, line=line)
    commitment = named["commitment"]
    if commitment not in commitments:
        raise InputError(
            f"commitment {commitment} is not in the commitment register", path=path, line=line
        )
    if commitment not in header.commitments:
        raise InputError(
            f"row cites {commitment} but its block header (line {header.line}) names "
            f"{', '.join(header.commitments)}",
            path=path,
            line=line,
        )
    rule = named["rule"]
    if eft == "deny":
        if rule == NO_RULE:
            raise InputError("deny row names no rule id", path=path, line=line)
        if not RULE_ID_PATTERN.fullmatch(rule):
            raise InputError(f"rule id {rule!r} is not lower-kebab-case", path=path, line=line)
        rule_id: str | None = rule
    else:
        if rule != NO_RULE:
            raise InputError(
                f"allow row names rule {rule!r}; allow rows name rule '{NO_RULE}'",
                path=path,
                line=line,
            )
        rule_id = None
    return PolicyRow("p", values, str(path), line, commitment=commitment, rule_id=rule_id)


# ---------------------------------------------------------------- pack.yaml


def _yaml_key_lines(text: str) -> dict[str, int]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        str(key.value): key.start_mark.line + 1
        for key, _ in node.value
        if isinstance(key, yaml.ScalarNode)
    }


def load_config(path: Path) -> PackConfig:
    """Read and validate ``pack.yaml``; errors name the line of the offending key."""
    data = load_yaml(path)
    try:
        return PackConfig.model_validate(data)
    except ValidationError as exc:
        loc = exc.errors(include_url=False)[0]["loc"]
        lines = _yaml_key_lines(read_text(path))
        line = lines.get(str(loc[0])) if loc else None
        raise InputError(describe_validation_error(exc), path=path, line=line) from None


# ---------------------------------------------------------------- the pack


class RowsAdapter(Adapter):  # type: ignore[misc]  # pycasbin ships no type hints
    """Feeds pycasbin exactly the rows this module validated."""

    def __init__(self, rows: Sequence[PolicyRow]) -> None:
        self._rows = rows

    def load_policy(self, model: Any) -> None:
        for row in self._rows:
            model[row.ptype[0]][row.ptype].policy.append(list(row.fields))


def read_text(path: Path) -> str:
    """A file's text, decoded as UTF-8; unreadable or non-UTF-8 files are an ``InputError``."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None


def _build_enforcer(path: Path, model: _Model, rows: Sequence[PolicyRow]) -> Any:
    disabled_logging()  # pycasbin logs the model and roles while it loads
    try:
        enforcer = casbin.Enforcer(model.casbin_model, RowsAdapter(rows), enable_log=False)
    except Exception as exc:  # pycasbin raises bare exceptions without locations
        raise InputError(f"pycasbin rejected the pack: {exc}", path=path) from None
    probe = ["-"] * len(model.request_fields)
    try:
        with CASBIN_LOCK:  # packs may be loaded in several threads at once (dask workers)
            enforcer.enforce_ex(*probe)
    except Exception as exc:  # the matcher is only compiled on first use
        raise InputError(
            f"matcher does not evaluate: {exc}", path=path, line=model.lines.get("m")
        ) from None
    return enforcer


def load_pack(directory: Path) -> PolicyPack:
    """Load and validate one pack directory; every problem is an ``InputError`` at file:line."""
    if not directory.is_dir():
        raise InputError(
            "no such directory" if not directory.exists() else "not a directory", path=directory
        )
    files = [directory / name for name in PACK_FILES]
    for file in files:
        if not file.is_file():
            raise InputError(
                "missing policy pack file" if not file.exists() else "not a regular file", path=file
            )
    model_path, policy_path, config_path, register_path = files
    commitments = load_commitments(register_path)
    if DEFAULT_COMMITMENT not in commitments:
        raise InputError(
            f"the register has no {DEFAULT_COMMITMENT}, the commitment cited when "
            "no policy row matches a request",
            path=register_path,
        )
    config = load_config(config_path)
    model = _load_model(model_path)
    rows = _parse_rows(policy_path, model, commitments)
    if not any(row.ptype == "p" for row in rows):
        raise InputError("no p rows: every request would be denied", path=policy_path)
    enforcer = _build_enforcer(model_path, model, rows)
    return PolicyPack(
        directory=directory,
        config=config,
        commitments=commitments,
        rows=rows,
        definitions=model.definitions,
        request_fields=model.request_fields,
        files=files,
        enforcer=enforcer,
    )


def load_policy(path: Path) -> PolicyHistory:
    """One pack (``path`` has a ``pack.yaml``) or dated versions (its subdirectories).

    Versions are the immediate subdirectories holding a ``pack.yaml``, ordered by
    ``effective_from``; two versions may not share a date or a name.
    """
    if not path.is_dir():
        raise InputError("no such directory" if not path.exists() else "not a directory", path=path)
    if (path / CONFIG_FILE).exists():
        return PolicyHistory(path, [load_pack(path)])
    versions = sorted(child for child in path.iterdir() if (child / CONFIG_FILE).is_file())
    if not versions:
        raise InputError(
            f"no policy pack in {path} (no {CONFIG_FILE} in it or in any immediate subdirectory)"
        )
    packs: list[PolicyPack] = []
    by_date: dict[date, PolicyPack] = {}
    by_name: dict[str, PolicyPack] = {}
    for version in versions:
        pack = load_pack(version)
        config_path = version / CONFIG_FILE
        lines = _yaml_key_lines(read_text(config_path))
        other = by_date.get(pack.config.effective_from)
        if other is not None:
            raise InputError(
                f"effective_from {pack.config.effective_from.isoformat()} is also the date of "
                f"{other.directory}",
                path=config_path,
                line=lines.get("effective_from"),
            )
        other = by_name.get(pack.config.name)
        if other is not None:
            raise InputError(
                f"name {pack.config.name!r} is also the name of {other.directory}",
                path=config_path,
                line=lines.get("name"),
            )
        by_date[pack.config.effective_from] = pack
        by_name[pack.config.name] = pack
        packs.append(pack)
    return PolicyHistory(path, packs)
