"""Render policy diagnostics as a SARIF 2.1.0 log (for GitHub code scanning and other viewers).

One run, the tool's rules from the check catalogue (stable ``ruleId``), one result
per diagnostic with ``level``, ``physicalLocation.artifactLocation.uri`` and
``region.startLine``/``startColumn`` where known. URIs are relative (POSIX) when the
file is under ``root`` (the repository checkout), otherwise ``file://`` URIs.
Pure formatting: no analysis happens here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from audit import __version__
from audit.policy.diagnostics import Check, Diagnostic

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL_NAME = "residency-audit"


def artifact_uri(file: str, root: Path) -> str:
    """``file`` relative to ``root`` in POSIX form, or an absolute ``file://`` URI."""
    path = Path(file)
    absolute = path if path.is_absolute() else (Path.cwd() / path)
    absolute = absolute.parent.resolve() / absolute.name  # never the target of a symlinked file
    try:
        return absolute.relative_to(root.resolve()).as_posix()
    except ValueError:
        return absolute.as_uri()


def _result(diag: Diagnostic, index: Mapping[str, int], root: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": diag.check,
        "ruleIndex": index[diag.check],
        "level": diag.severity,
        "message": {"text": diag.message},
    }
    if diag.file is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(diag.file, root)}}
        if diag.line is not None:
            region: dict[str, int] = {"startLine": diag.line}
            if diag.column is not None:
                region["startColumn"] = diag.column
            physical["region"] = region
        result["locations"] = [{"physicalLocation": physical}]
    return result


def render_sarif(diagnostics: Sequence[Diagnostic], checks: Mapping[str, Check], *, root: Path, command: str) -> bytes:
    """A SARIF log (UTF-8 JSON bytes) of ``diagnostics``; ``checks`` must hold every check they use."""
    used = sorted({diag.check for diag in diagnostics} | set(checks))
    index = {check_id: position for position, check_id in enumerate(used)}
    rules = [
        {
            "id": check_id,
            "name": "".join(part.title() for part in check_id.split("-")),
            "shortDescription": {"text": checks[check_id].title},
            "help": {"text": checks[check_id].help},
            "defaultConfiguration": {"level": checks[check_id].severity},
        }
        for check_id in used
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"{TOOL_NAME}/{command}/"},
                "results": [_result(diag, index, root) for diag in diagnostics],
            }
        ],
    }
    return orjson.dumps(log, option=orjson.OPT_INDENT_2) + b"\n"
