"""Every real public vendor sample in fixtures/sources/public/ imports (exit 0) with its expected summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN
from audit.importers.enrichment import load_enrichment
from audit.importers.run import IMPORT_REPORT_FILE, SOURCES, ImportStats, convert_files
from tests.conftest import FIXTURES, KEYS

PUBLIC = FIXTURES / "sources" / "public"
DIRECTORY = FIXTURES / "sources" / "directory.csv"
CATALOG = FIXTURES / "sources" / "catalog.yaml"
EXPECTED = "expected-imports.json"


def _corpus() -> list[tuple[str, str, dict[str, object]]]:
    cases = []
    for folder in sorted(p for p in PUBLIC.iterdir() if p.is_dir() and p.name in SOURCES):
        doc = json.loads((folder / EXPECTED).read_text())
        cases += [(folder.name, name, summary) for name, summary in sorted(doc["files"].items())]
    return cases


CORPUS = _corpus()


def test_every_public_file_has_an_expected_summary() -> None:
    listed = {(source, name) for source, name, _ in CORPUS}
    on_disk = {(p.parent.name, p.name) for p in PUBLIC.glob("*/*") if p.parent.name in SOURCES and p.name != EXPECTED}
    assert listed == on_disk and len(listed) >= 26


@pytest.mark.parametrize(("source", "name", "summary"), CORPUS, ids=[f"{s}/{n}" for s, n, _ in CORPUS])
def test_public_sample_imports_with_its_expected_summary(source: str, name: str, summary: dict[str, object]) -> None:
    stats = ImportStats()
    list(convert_files(SOURCES[source], [PUBLIC / source / name], load_enrichment(DIRECTORY, CATALOG), stats))
    got = {
        "records": stats.records,
        "events": stats.events,
        "out_of_scope": dict(stats.out_of_scope),
        "unresolved": {"principal": stats.unresolved["principal"], "resource": stats.unresolved["resource"]},
    }
    assert got == summary
    assert not stats.skipped


@pytest.mark.usefixtures("fixture_passphrase")
@pytest.mark.parametrize("source", sorted({s for s, _, _ in CORPUS}))
def test_public_samples_import_with_exit_0(source: str, tmp_path: Path) -> None:
    files = sorted(str(p) for p in (PUBLIC / source).iterdir() if p.name != EXPECTED)
    log = tmp_path / "log"
    assert (
        main(
            [
                "import",
                source,
                *files,
                "--directory",
                str(DIRECTORY),
                "--catalog",
                str(CATALOG),
                "--key",
                str(KEYS / "log-producer.key"),
                "--out",
                str(log),
            ]
        )
        == EXIT_CLEAN
    )
    report = json.loads((log / IMPORT_REPORT_FILE).read_bytes())
    assert report["records"] == sum(s["records"] for src, _, s in CORPUS if src == source)  # type: ignore[misc]
