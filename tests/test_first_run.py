"""First run and CLI conventions (issue 17): version, help, global options, schemas, README, tutorial, wheel."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from audit.cli.app import app, main
from audit.cli.conventions import build_command, leaf_commands
from audit.cli.record_formats import EXAMPLES, SCHEMAS, record_formats_markdown
from audit.cli.schemas import SCHEMA_NAMES
from audit.errors import EXIT_CLEAN, EXIT_INPUT
from audit.resources import DEMO_FILES
from tests.conftest import REPO

GLOBAL = {"--log-format", "--quiet", "-q", "--verbose", "-v", "--debug", "--max-errors", "--help"}


def _options(command_path: str) -> set[str]:
    """Every option a command accepts, from its click definition (what --help lists)."""
    for path, command in leaf_commands(build_command(app)):
        if path == command_path:
            return {opt for param in command.params for opt in param.opts if opt.startswith("--")} - GLOBAL
    raise AssertionError(f"no command {command_path!r}")


def _readme_rows() -> dict[str, set[str]]:
    """README command table: command path -> options it names (a cell may describe several commands)."""
    rows: dict[str, set[str]] = {}
    for line in (REPO / "README.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split(" | ")[0]
        for usage in re.findall(r"`([^`]+)`", cell):
            words = usage.split()
            names = [w for w in words[:3] if re.fullmatch(r"[a-z][a-z-]*(\\\|[a-z-]+)*", w)]
            options = set(re.findall(r"--[a-z][a-z-]*", usage))
            for variant in _expand(names):
                parts = variant.split()
                for n in range(1, len(parts) + 1):  # `schema event|approval` documents `schema`
                    rows.setdefault(" ".join(parts[:n]), set()).update(options)
    return rows


def _expand(names: list[str]) -> list[str]:
    paths = [""]
    for name in names:
        paths = [f"{p} {alt}".strip() for p in paths for alt in name.split("\\|")]
    return paths


def test_readme_command_table_and_help_agree() -> None:
    rows = _readme_rows()
    commands = [path for path, _ in leaf_commands(build_command(app))]
    problems = []
    for path in commands:
        documented = next((rows[k] for k in (path, *_prefixes(path)) if k in rows), None)
        if documented is None:
            problems.append(f"{path}: not in the README command table")
            continue
        actual = _options(path)
        problems += [f"{path}: README lacks {opt}" for opt in sorted(actual - documented)]
        problems += [
            f"{path}: --help lacks {opt}" for opt in sorted(documented - actual - GLOBAL) if not _shared_row(rows, path)
        ]
    assert not problems, "\n".join(problems)


def _prefixes(path: str) -> list[str]:
    parts = path.split()
    return [" ".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]


def _shared_row(rows: dict[str, set[str]], path: str) -> bool:
    """A row such as `import cloudtrail|ocsf ...` names options only some of its commands take."""
    return path.startswith("import ")


def test_version_and_bare_invocation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == EXIT_CLEAN
    assert capsys.readouterr().out.startswith("residency-audit ")
    assert main([]) == EXIT_INPUT
    captured = capsys.readouterr()
    assert "Usage" in captured.out and "error:" not in captured.err


def test_global_options_after_the_command_and_quiet_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RESIDENCY_AUDIT_KEY_PASSPHRASE", raising=False)
    key = tmp_path / "k.key"
    assert main(["keygen", "--out", str(key), "--unencrypted"]) == EXIT_CLEAN
    err = capsys.readouterr().err
    assert "keygen.done" not in err  # info lines only with -v
    assert main(["keygen", "--out", str(tmp_path / "v.key"), "--unencrypted", "-v", "--log-format", "json"]) == 0
    info = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert info and info[0]["event"] == "keygen.done"
    assert main(["keygen", "--out", str(tmp_path / "x.key"), "--unencrypted", "--purpose", "log"]) == EXIT_INPUT
    assert "--keyring" in capsys.readouterr().err


def test_help_has_examples_and_readable_placeholders() -> None:
    for path, command in leaf_commands(build_command(app)):
        assert command.epilog and "residency-audit" in command.epilog, f"{path}: no examples in --help"
    for args in (["policy", "lint", "--help"], ["keygen", "--help"], ["keyring", "add", "--help"]):
        done = subprocess.run(
            [sys.executable, "-m", "audit", *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "COLUMNS": "80"},
        )
        assert "list[" not in done.stdout and "<bool>" not in done.stdout, done.stdout
        assert "Examples" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "audit", "keyring", "add", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    purpose = next(line for line in done.stdout.splitlines() if "--purpose" in line)
    assert "*" in purpose  # required


def test_validation_errors_list_every_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_id":"x","time":"soon","colour":"blue"}\n')
    args = ["log", "seal", str(bad), "--key", str(tmp_path / "none.key"), "--out", str(tmp_path / "log")]
    key = tmp_path / "none.key"
    os.environ.pop("RESIDENCY_AUDIT_KEY_PASSPHRASE", None)
    assert main(["keygen", "--out", str(key), "--unencrypted"]) == 0
    capsys.readouterr()
    assert main(args) == EXIT_INPUT
    err = capsys.readouterr().err
    for field in ("time:", "actor:", "action:", "resource:", "colour: unknown field"):
        assert field in err
    assert main([*args, "--max-errors", "2"]) == EXIT_INPUT
    assert "(and 3 more; raise --max-errors" in capsys.readouterr().err


def test_schemas_and_record_formats_doc() -> None:
    assert tuple(SCHEMAS) == SCHEMA_NAMES  # the help text of `schema` lists SCHEMA_NAMES without building the models
    for name, (model, _) in SCHEMAS.items():
        model.model_validate(EXAMPLES[name])
    assert (REPO / "docs" / "record-formats.md").read_text() == record_formats_markdown(), (
        "regenerate: residency-audit schema --markdown > docs/record-formats.md"
    )
    done = subprocess.run(
        [sys.executable, "-m", "audit", "schema", "event"],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert json.loads(done.stdout)["title"] == "AccessEvent"


def test_policy_test_output_writes_the_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "test.txt"
    assert main(["policy", "test", str(REPO / "policies"), "-o", str(out)]) == EXIT_CLEAN
    assert out.read_text().strip() and "report written to" in capsys.readouterr().out


def test_policy_hook_checks_the_packs_of_changed_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = [
        str(REPO / "policies" / "policy.csv"),
        str(REPO / "policies" / "tests" / "cases.yaml"),
        str(REPO / "README.md"),
    ]
    assert main(["policy", "hook", "lint", *files]) == EXIT_CLEAN
    assert capsys.readouterr().out.count("policy lint ") == 1


def test_tables_fit_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    done = subprocess.run(
        [sys.executable, "-m", "audit", "demo", "--out", str(tmp_path / "demo")],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "80", "PYTHONPATH": str(REPO)},
    )
    table = [line for line in done.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80
    assert len(done.stdout.splitlines()) < 200  # no column squeezed to two characters
    assert done.stderr == ""


def test_setup_py_ships_the_demo_files() -> None:
    shipped = (REPO / "setup.py").read_text().replace("(", "").replace(")", "")
    assert f"DEMO_FILES = {json.dumps(list(DEMO_FILES))[1:-1]}" in shipped


def _shell_blocks(markdown: Path) -> str:
    return "\n".join(re.findall(r"```sh\n(.*?)```", markdown.read_text(), re.S))


@pytest.mark.slow
def test_tutorial_commands_run(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-euc", _shell_blocks(REPO / "docs" / "tutorial.md")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "report" / "report.intoto.json").is_file()


@pytest.mark.slow
def test_built_wheel_runs_the_demo_from_root(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    uv = shutil.which("uv") or next((str(p) for p in (REPO / ".tools" / "bin" / "uv",) if p.exists()), None)
    venv_dir = tmp_path / "venv"
    if uv is not None:
        subprocess.run(
            [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(REPO)],
            check=True,
            env=env,
            capture_output=True,
        )
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv_dir)], check=True, env=env)
        wheel = next((tmp_path / "dist").glob("*.whl"))
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(venv_dir / "bin" / "python"), str(wheel)],
            check=True,
            env=env,
        )
    else:
        venv.create(venv_dir, with_pip=True)
        pip = [str(venv_dir / "bin" / "python"), "-m", "pip", "--quiet"]
        subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(REPO)], check=True, env=env)
        subprocess.run([*pip, "install", next(iter((tmp_path / "dist").glob("*.whl")))], check=True, env=env)
    tool = str(venv_dir / "bin" / "residency-audit")
    out = tmp_path / "demo"
    done = subprocess.run(
        [tool, "demo", "--out", str(out)], cwd="/", env=env, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "demo OK" in done.stdout and (out / "keyring.json").is_file()
    for args in (["--version"], ["schema", "event"], ["policy", "test", "--help"]):
        assert subprocess.run([tool, *args], cwd="/", env=env, capture_output=True, check=False).returncode == 0
    verify = subprocess.run(
        [tool, "report", "verify", str(out / "report" / "report.intoto.json"), "--keyring", str(out / "keyring.json")],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    missing = subprocess.run(
        [tool, "residency", "scan", "--provider", "inventory", "--inventory", "x.yaml", "--policy", "/nonexistent"],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == EXIT_INPUT and "--policy" in missing.stderr
