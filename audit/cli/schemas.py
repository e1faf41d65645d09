"""``residency-audit schema NAME``: print a record format's JSON Schema (or docs/record-formats.md).

The schemas come from the pydantic models in :mod:`audit.cli.record_formats`, which
this command imports when it runs: building the models is not part of start-up.
"""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from audit.cli.console import out
from audit.errors import EXIT_CLEAN, InputError

SCHEMA_NAMES = ("event", "approval", "finding", "case", "inventory", "directory", "catalog", "pack", "rules")
"""The keys of :data:`audit.cli.record_formats.SCHEMAS`, in order, for the help text (a test holds them equal)."""


def schema_command(
    name: Annotated[str | None, typer.Argument(help=f"One of: {', '.join(SCHEMA_NAMES)}.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print docs/record-formats.md instead.")] = False,
) -> int:
    """Print the JSON Schema of a record format (generated from the models residency-audit validates with)."""
    from audit.cli.record_formats import SCHEMAS, json_schema, record_formats_markdown

    if markdown:
        out.print(record_formats_markdown(), markup=False, end="")
        return EXIT_CLEAN
    if name not in SCHEMAS:
        raise InputError(f"schema: give a record name: {', '.join(SCHEMAS)}" + (f" (not {name!r})" if name else ""))
    out.print(orjson.dumps(json_schema(name), option=orjson.OPT_INDENT_2).decode(), markup=False)
    return EXIT_CLEAN
