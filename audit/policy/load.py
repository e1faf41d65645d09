"""Load and validate a policy pack directory, or a directory of dated pack versions.

A pack directory holds ``model.conf`` (pycasbin model), ``policy.csv`` (rows),
``pack.yaml`` (:class:`~audit.policy.config.PackConfig`), ``commitments.yaml``
(the commitment register the rows cite) and, optionally, ``rules.yaml`` (the pack's
own rule ids and words, :class:`~audit.policy.config.RulesFile`). Both Casbin files are parsed by
:mod:`audit.policy.parse`, which collects every problem at file:line; this module
raises the first as an :class:`~audit.errors.InputError` before a single row
reaches pycasbin. The enforcer is then fed exactly the validated rows through an
in-memory adapter, so the rows it explains decisions with are the rows (and line
numbers) recorded here.

It does not decide requests (:mod:`audit.policy.pack`) and does not lint policy
quality beyond well-formedness (unreachable rows, coverage: ``policy lint``/``test``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import casbin
import yaml
from casbin.persist import Adapter
from casbin.util.log import disabled_logging
from pydantic import ValidationError

from audit.commitments import load_commitments
from audit.errors import InputError, PolicyError
from audit.models import Commitment
from audit.policy.config import PackConfig, PackRule, RulesFile
from audit.policy.diagnostics import clean, quote
from audit.policy.files import check_pack_file, load_pack_yaml
from audit.policy.matcher import install_functions
from audit.policy.pack import (
    CASBIN_LOCK,
    DEFAULT_COMMITMENT,
    PolicyHistory,
    PolicyPack,
    PolicyRow,
)
from audit.policy.parse import (
    CONFIG_FILE,
    PACK_FILES,
    RULES_FILE,
    ParsedModel,
    Problem,
    Row,
    parse_model,
    parse_policy,
    read_text,
)
from audit.records import describe_validation_error

_M = TypeVar("_M", PackConfig, RulesFile)


def _refuse(problems: Sequence[Problem]) -> None:
    """Raise the first problem found, as the loader words it."""
    if problems:
        raise problems[0].error()


def _load_model(path: Path, root: Path) -> ParsedModel:
    model = parse_model(str(path), read_text(path, root), pack=True)
    _refuse(model.problems)
    return model


def _policy_row(row: Row, model: ParsedModel, file: str) -> PolicyRow:
    if row.ptype != "p":
        assert row.header is not None  # the parser refuses rows without a header
        return PolicyRow(row.ptype, row.fields, file, row.line, commitment=row.header.commitments[0])
    named = {name: value for name, (value, _) in row.named(model.row_fields["p"]).items()}
    rule_id = named["rule"] if named["eft"] == "deny" else None
    return PolicyRow("p", row.fields, file, row.line, commitment=named["commitment"], rule_id=rule_id)


def _parse_rows(path: Path, root: Path, model: ParsedModel, commitments: Mapping[str, Commitment]) -> list[PolicyRow]:
    policy = parse_policy(str(path), read_text(path, root), model, commitments=commitments, conventions=True)
    _refuse(policy.problems)
    return [_policy_row(row, model, str(path)) for row in policy.kept]


# ---------------------------------------------------------------- pack.yaml


def _yaml_key_lines(text: str) -> dict[str, int]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)}


def load_config(path: Path, root: Path | None = None) -> PackConfig:
    """Read and validate ``pack.yaml``; errors name the line of the offending key."""
    return _load_yaml_model(PackConfig, path, root)


def load_rules_file(path: Path, root: Path | None = None) -> tuple[PackRule, ...]:
    """Read and validate ``rules.yaml`` (absent: no pack rules); each rule knows the lines of its keys."""
    if not path.exists():
        return ()
    check_pack_file(path, root)
    data, text = load_pack_yaml(path, root)
    rules = _validate_yaml_model(RulesFile, data, text, path).rules
    lines = _entry_key_lines(text, "rules")
    return tuple(rule.located(lines[n] if n < len(lines) else {}) for n, rule in enumerate(rules))


def _entry_key_lines(text: str, key: str) -> list[dict[str, int]]:
    """For each entry of the list at top-level ``key``: the line of each of its keys (``""``: of the entry)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.MappingNode):
        return []
    entries = next(
        (value for name, value in node.value if isinstance(name, yaml.ScalarNode) and name.value == key), None
    )
    if not isinstance(entries, yaml.SequenceNode):
        return []
    found = []
    for entry in entries.value:
        lines = {"": entry.start_mark.line + 1}
        if isinstance(entry, yaml.MappingNode):
            lines |= {str(k.value): k.start_mark.line + 1 for k, _ in entry.value if isinstance(k, yaml.ScalarNode)}
        found.append(lines)
    return found


def _yaml_line(text: str, loc: Sequence[int | str]) -> int | None:
    """The line of the deepest node along a validation error's location (keys and list indexes)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line, child = key.start_mark.line + 1, value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _load_yaml_model(model: type[_M], path: Path, root: Path | None) -> _M:
    data, text = load_pack_yaml(path, root)
    return _validate_yaml_model(model, data, text, path)


def _validate_yaml_model(model: type[_M], data: Any, text: str, path: Path) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        loc = exc.errors(include_url=False)[0]["loc"]
        raise InputError(describe_validation_error(exc), path=path, line=_yaml_line(text, loc)) from None


# ---------------------------------------------------------------- the pack


class RowsAdapter(Adapter):  # type: ignore[misc]  # pycasbin ships no type hints
    """Feeds pycasbin exactly the rows this module validated."""

    def __init__(self, rows: Sequence[PolicyRow]) -> None:
        self._rows = rows

    def load_policy(self, model: Any) -> None:
        for row in self._rows:
            model[row.ptype[0]][row.ptype].policy.append(list(row.fields))


def _build_enforcer(path: Path, model: ParsedModel, rows: Sequence[PolicyRow]) -> Any:
    disabled_logging()  # pycasbin logs the model and roles while it loads
    try:
        enforcer = install_functions(casbin.Enforcer(model.casbin_model, RowsAdapter(rows), enable_log=False))
    except Exception as exc:  # pycasbin raises bare exceptions without locations
        raise PolicyError(f"pycasbin rejected the pack: {clean(str(exc), 200)}", path=path) from None
    probe = ["-"] * len(model.request_fields)
    try:
        with CASBIN_LOCK:  # packs may be loaded in several threads at once (dask workers)
            enforcer.enforce_ex(*probe)
    except PolicyError as exc:  # a matcher function refused its arguments
        raise PolicyError(f"matcher does not evaluate: {exc.reason}", path=path, line=model.entries["m"].line) from None
    except Exception as exc:  # the matcher is only compiled on first use
        raise PolicyError(
            f"matcher does not evaluate: {clean(str(exc), 200)}", path=path, line=model.entries["m"].line
        ) from None
    return enforcer


def load_pack(directory: Path) -> PolicyPack:
    """Load and validate one pack directory; every problem is an ``InputError`` at file:line."""
    if not directory.is_dir():
        raise InputError("no such directory" if not directory.exists() else "not a directory", path=directory)
    files = [directory / name for name in PACK_FILES]
    for file in files:
        if not file.is_file():
            raise InputError("missing policy pack file" if not file.exists() else "not a regular file", path=file)
    model_path, policy_path, config_path, register_path = files
    check_pack_file(register_path, directory)
    commitments = load_commitments(register_path)
    if DEFAULT_COMMITMENT not in commitments:
        raise InputError(
            f"the register has no {DEFAULT_COMMITMENT}, the commitment cited when no policy row matches a request",
            path=register_path,
        )
    config = load_config(config_path, directory)
    pack_rules = load_rules_file(directory / RULES_FILE, directory)
    _check_cited_commitments(config, pack_rules, commitments, directory)
    model = _load_model(model_path, directory)
    rows = _parse_rows(policy_path, directory, model, commitments)
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
        matcher_line=model.entries["m"].line,
        rules=pack_rules,
    )


def _check_cited_commitments(
    config: PackConfig, rules: Sequence[PackRule], commitments: Mapping[str, Commitment], directory: Path
) -> None:
    """Transitional stores and pack rules cite commitments the register defines."""
    for store in config.transitional_stores:
        if store.commitment not in commitments:
            raise InputError(
                f"transitional store {quote(store.store_class)} cites {store.commitment}, "
                "which commitments.yaml does not define",
                path=directory / CONFIG_FILE,
            )
    for rule in rules:
        if rule.commitment not in commitments:
            raise InputError(
                f"rule {quote(rule.id)} cites {rule.commitment}, which commitments.yaml does not define",
                path=directory / RULES_FILE,
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
        raise InputError(f"no policy pack in {path} (no {CONFIG_FILE} in it or in any immediate subdirectory)")
    packs: list[PolicyPack] = []
    by_date: dict[date, PolicyPack] = {}
    by_name: dict[str, PolicyPack] = {}
    for version in versions:
        pack = load_pack(version)
        config_path = version / CONFIG_FILE
        lines = _yaml_key_lines(read_text(config_path, version))
        other = by_date.get(pack.config.effective_from)
        if other is not None:
            raise InputError(
                f"effective_from {pack.config.effective_from.isoformat()} is also the date of {other.directory}",
                path=config_path,
                line=lines.get("effective_from"),
            )
        other = by_name.get(pack.config.name)
        if other is not None:
            raise InputError(
                f"name {quote(pack.config.name)} is also the name of {other.directory}",
                path=config_path,
                line=lines.get("name"),
            )
        by_date[pack.config.effective_from] = pack
        by_name[pack.config.name] = pack
        packs.append(pack)
    return PolicyHistory(path, packs)
