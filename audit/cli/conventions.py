"""Conventions every command follows, applied once to the built click command tree.

* global options (``--log-format``, ``--quiet``, ``--verbose``, ``--debug``,
  ``--max-errors``) are accepted before the subcommand and after it: each leaf command
  gets a copy of the root's options, which only act when given on the command line;
* help shows readable placeholders (``PATHS...``, ``<path>``), never ``<list[Path]>``
  or ``<bool>``;
* every command's ``--help`` ends with examples (:data:`EXAMPLES`).

Does not define commands; :func:`audit.cli.app.main` calls :func:`build_command`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import get_args

import typer
from rich.markup import escape
from typer._click.core import Command, Context, Parameter, ParameterSource  # typer's vendored click
from typer._coercion import TypeDescriptor
from typer.core import TyperArgument, TyperGroup, TyperOption

from audit.cli.state import apply_global

_ROOT_ONLY = ("install_completion", "show_completion")
GLOBAL_PANEL = "Global options (also accepted before the command)"

EXAMPLES: dict[str, tuple[str, ...]] = {
    "keygen": (
        "residency-audit keygen --out auditor.key --keyring keyring.json --purpose report --label auditor",
        "residency-audit keygen --reencrypt old.key",
    ),
    "replay": (
        "residency-audit replay log/ --keyring keyring.json --approvals approvals.jsonl --report-key auditor.key "
        "--out report/",
        "residency-audit replay s3://bucket/prod/access --keyring keyring.json --approvals approvals-log/ "
        "--report-key auditor.key --out report/ --expect-size 2993 --require-complete",
    ),
    "demo": ("residency-audit demo --out /tmp/demo", "make demo    (from a checkout: adds the moto AWS estate)"),
    "schema": ("residency-audit schema event", "residency-audit schema approval > approval.schema.json"),
    "log seal": ("residency-audit log seal events.jsonl --key producer.key --keyring keyring.json --out log/",),
    "log append": ("residency-audit log append log/ more-events.jsonl --key producer.key --keyring keyring.json",),
    "log verify": (
        "residency-audit log verify log/ --keyring keyring.json",
        "residency-audit log verify log/ --keyring keyring.json --trusted-checkpoint old.json --format json",
    ),
    "log verify-inclusion": (
        "residency-audit log verify-inclusion proof.json --checkpoint log/checkpoints/00000005.json "
        "--keyring keyring.json",
    ),
    "log verify-consistency": (
        "residency-audit log verify-consistency proof.json --old old.json --new new.json --keyring keyring.json",
    ),
    "log prove inclusion": (
        "residency-audit log prove inclusion log/ --event evt-000042 --keyring keyring.json --out proof.json",
    ),
    "log prove consistency": (
        "residency-audit log prove consistency old.json log/checkpoints/00000005.json --keyring keyring.json "
        "--out proof.json",
    ),
    "report verify": (
        "residency-audit report verify report/report.intoto.json --keyring keyring.json",
        "residency-audit report verify report/report.intoto.json --keyring keyring.json --log log/ "
        "--approvals approvals.jsonl",
        "residency-audit report verify report/report.intoto.json --keyring keyring.json --require-complete "
        "--format json",
    ),
    "explain": (
        "residency-audit explain F-00590d4d3592528b6b60 --report report/ --keyring keyring.json",
        "residency-audit explain F-00590d4d3592528b6b60 --report report/ --keyring keyring.json --log log/ "
        "--policy policies/ --approvals approvals.jsonl --format json",
    ),
    "report timestamp": (
        "residency-audit report timestamp report/ --tsa-url https://tsa.example/tsr --tsa-cert tsa-chain.pem",
    ),
    "report check-timestamp": ("residency-audit report check-timestamp report/ --tsa-cert tsa-chain.pem",),
    "report diff": (
        "residency-audit report diff last-month/report.intoto.json this-month/report.intoto.json "
        "--keyring keyring.json",
        "residency-audit report diff old/report.intoto.json new/report.intoto.json --keyring keyring.json "
        "--format json",
    ),
    "keyring add": ("residency-audit keyring add keyring.json producer.key.pub --purpose log --label producer",),
    "keyring revoke": ("residency-audit keyring revoke keyring.json 609b7937f842 --at 2024-05-01T00:00:00Z",),
    "keyring migrate": ("residency-audit keyring migrate keyring.json --purpose 609b7937f842=log",),
    "keyring list": (
        "residency-audit keyring list keyring.json",
        "residency-audit keyring list keyring.json --format json",
    ),
    "residency scan": (
        "residency-audit residency scan --provider inventory --inventory stores.yaml --as-of 2022-06-30",
        "residency-audit residency scan --provider aws --regions us-east-1,ap-southeast-1 --format json",
    ),
    "policy lint": (
        "residency-audit policy lint policies/",
        "residency-audit policy lint policies/ --format sarif --output lint.sarif",
    ),
    "policy test": (
        "residency-audit policy test policies/ --min-coverage 100",
        "residency-audit policy test policies/ --format junit --output junit.xml",
    ),
    "policy prove": ("residency-audit policy prove policies/",),
    "policy diff": (
        "residency-audit policy diff HEAD~1:policies policies/",
        "residency-audit policy diff old-pack/ new-pack/ --format json --output diff.json",
    ),
    "policy init": (
        "residency-audit policy init my-pack/ --template basic --home-country DE --home-country FR "
        '--home-name "the EU/EEA"',
        "residency-audit policy init eu-pack/ --template eu-personal-data-2024",
    ),
    "policy hook": ("residency-audit policy hook lint policies/policy.csv   (what the pre-commit hooks run)",),
    "import cloudtrail": (
        "residency-audit import cloudtrail trail/*.json.gz --directory people.csv --catalog data.yaml "
        "--key producer.key --out log/",
    ),
    "import oci-audit": (
        "residency-audit import oci-audit audit.jsonl --directory people.csv --catalog data.yaml "
        "--key producer.key --out log/",
    ),
    "import gcp-access-transparency": (
        "residency-audit import gcp-access-transparency axt.jsonl --directory people.csv --catalog data.yaml "
        "--key producer.key --out log/",
    ),
    "import ocsf": (
        "residency-audit import ocsf events.jsonl --directory people.csv --catalog data.yaml --key producer.key "
        "--out log/",
    ),
}
"""Examples shown at the end of each command's ``--help`` (keyed by command path)."""


def leaf_commands(command: Command, path: str = "") -> Iterator[tuple[str, Command]]:
    """Every runnable command below ``command`` with its path (``"log prove inclusion"``)."""
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from leaf_commands(sub, f"{path} {name}".strip())
    else:
        yield path, command


def _global_callback(name: str) -> Callable[[Context, Parameter, object], object]:
    def callback(ctx: Context, param: Parameter, value: object) -> object:
        if ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE:
            apply_global(name, value)
        return value

    return callback


def _global_options(root: Command) -> list[Parameter]:
    options: list[Parameter] = []
    for param in root.params:
        if not isinstance(param, TyperOption) or param.is_eager or param.name in (None, *_ROOT_ONLY):
            continue  # --help, --version and the completion options stay on the root
        option = copy.copy(param)
        option.expose_value = False
        option.callback = _global_callback(param.name)
        option.rich_help_panel = GLOBAL_PANEL
        options.append(option)
    return options


def _list_label(desc: TypeDescriptor) -> str:
    """``<path>`` for ``list[Path]``: a repeatable parameter shows its element's type."""
    if desc.is_choice:
        return "<" + "|".join(str(getattr(c, "value", c)) for c in desc.choices or ()) + ">"
    (element,) = get_args(desc.annotation) or (str,)
    return "<path>" if element is Path else f"<{getattr(element, '__name__', 'text').lower()}>"


def _fix_placeholders(command: Command) -> None:
    help_option = command.get_help_option(Context(command))
    if help_option is not None:
        help_option.metavar = ""
    for param in command.params:
        if isinstance(param, TyperOption) and param.metavar is None:
            if param.is_flag:
                param.metavar = ""
            elif param.type_descriptor.is_list:
                param.metavar = _list_label(param.type_descriptor)
        elif isinstance(param, TyperArgument) and param.type_descriptor.is_list:
            label = _list_label(param.type_descriptor)
            setattr(param, "display_type", lambda ctx, label=label: label)  # noqa: B010 - an instance override


def build_command(app: typer.Typer) -> Command:
    """The click command for ``app`` with global options, placeholders and examples applied."""
    root = typer.main.get_command(app)
    shared = _global_options(root)
    _fix_placeholders(root)
    for path, command in leaf_commands(root):
        command.params.extend(copy.copy(option) for option in shared)
        _fix_placeholders(command)
        examples = EXAMPLES.get(path)
        if examples and not command.epilog:
            command.epilog = "\n\n".join(["Examples:", *(escape(f"  $ {line}") for line in examples)])
    return root
