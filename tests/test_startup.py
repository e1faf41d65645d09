"""Start-up stays light (issue 18): building the CLI and printing any ``--help`` loads no heavy module.

Every command imports what it runs (pydantic models, cryptography, pycasbin, cloud
SDKs, dask, ...) inside its body; at start-up only typer, rich and the option enums
and defaults load. These tests run ``--help`` in a fresh interpreter and check the
modules it loaded, by name - never its time (``make bench`` measures ``startup_s``).
"""

from __future__ import annotations

import json
import subprocess
import sys

from audit.cli.residency_cmds import OCI_CONFIG
from audit.cli.timestamp_cmds import TSA_TIMEOUT_S
from audit.report.timestamp import DEFAULT_TIMEOUT_S
from audit.residency.providers.oci import DEFAULT_CONFIG
from tests.conftest import REPO

HEAVY_PACKAGES = (
    # cloud SDKs, the distributed engine, columnar input, test doubles
    "boto3",
    "botocore",
    "oci",
    "dask",
    "distributed",
    "pyarrow",
    "moto",
    # signing, canonical JSON, time-stamps
    "cryptography",
    "rfc8785",
    "rfc3161_client",
    "asn1crypto",
    "securesystemslib",
    # policy evaluation
    "casbin",
    "simpleeval",
    "re2",
    "wcmatch",
    # parsing and rendering records and reports
    "msgspec",
    "yaml",
    "jinja2",
    "iso3166",
    "jsonschema",
    "sqlite3",
    # diagnostics: configured when the first message is logged
    "structlog",
)
"""Third-party packages no ``--help`` may import."""

HEAVY_AUDIT_MODULES = (
    "audit.models",  # every pydantic model of the records
    "audit.records",
    "audit.canonical",
    "audit.signing.keys",
    "audit.logs",
    "audit.policy.load",
    "audit.policy.pack",
    "audit.replay.engine",
    "audit.replay.rules",
    "audit.report.verify",
    "audit.report.timestamp",
    "audit.pipeline",
    "audit.explain",
    "audit.importers",
    "audit.residency",
    "audit.sources.s3",
    "audit.cli.record_formats",
    "audit.cli.demo",
)
"""This package's modules (and packages) that only a running command needs."""

_SHOW_HELP = """
import json, sys
from audit.cli.app import app, main
from audit.cli.conventions import build_command

def paths(command, path=()):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, (*path, name))

codes = {}
for path in [()] if sys.argv[1] == "root" else list(paths(build_command(app))):
    codes[" ".join(path)] = main([*path, "--help"])
print(json.dumps({"codes": codes, "modules": sorted(sys.modules)}))
"""


def _help_in_fresh_interpreter(which: str) -> tuple[dict[str, int], set[str]]:
    """Exit codes of ``--help`` (``root``: the top level; ``all``: every group and command) and the modules loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _SHOW_HELP, which], capture_output=True, text=True, cwd=REPO, check=True
    )
    result = json.loads(done.stdout.splitlines()[-1])
    return result["codes"], set(result["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(name for name in names if any(m == name or m.startswith(name + ".") for m in modules))


def test_root_help_loads_no_heavy_module() -> None:
    codes, modules = _help_in_fresh_interpreter("root")
    assert codes == {"": 0}
    assert _loaded(modules, HEAVY_PACKAGES) == []
    assert _loaded(modules, HEAVY_AUDIT_MODULES) == []
    assert "pydantic" not in modules  # typer's coercion imports it once a command's options are parsed


def test_every_command_help_loads_no_heavy_module() -> None:
    codes, modules = _help_in_fresh_interpreter("all")
    assert {"", "log", "log prove inclusion", "import cloudtrail", "residency scan", "demo"} <= set(codes)
    assert {path: code for path, code in codes.items() if code != 0} == {}
    assert _loaded(modules, HEAVY_PACKAGES) == []
    assert _loaded(modules, HEAVY_AUDIT_MODULES) == []


def test_a_command_still_loads_what_it_runs() -> None:
    """The check above can fail: running a command (here ``schema event``) loads the models it needs."""
    script = (
        "import sys\nfrom audit.cli.app import main\nmain(['schema', 'event'])\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    modules = set(done.stderr.split())
    assert {"audit.cli.record_formats", "audit.models", "pydantic"} <= modules


def test_option_defaults_copied_for_start_up_match_the_library() -> None:
    assert OCI_CONFIG == DEFAULT_CONFIG
    assert TSA_TIMEOUT_S == DEFAULT_TIMEOUT_S
