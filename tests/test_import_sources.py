"""Each vendor source imports, seals and replays end to end with the labelled findings."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_VIOLATIONS
from audit.importers.enrichment import load_enrichment
from audit.importers.gcp_access_transparency import UNKNOWN_PLACE
from audit.importers.run import IMPORT_REPORT_FILE, SOURCES, check_import_report, run_import
from audit.logs.verify import verify_log
from audit.pipeline import replay
from audit.report.findings import iter_findings
from audit.report.publish import FINDINGS_FILE
from audit.signing.keys import Keyring, SigningKey, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE
from tests.conftest import FIXTURES, KEYS, POLICIES

SAMPLES = FIXTURES / "sources"
DIRECTORY = SAMPLES / "directory.csv"
CATALOG = SAMPLES / "catalog.yaml"
APPROVALS = SAMPLES / "approvals.jsonl"
SEALED_AT = datetime(2022, 2, 1, tzinfo=UTC)
NOW = datetime(2022, 6, 30, tzinfo=UTC)


def vendor_files(source: str) -> list[Path]:
    """The sample vendor files of one source (not its expected findings)."""
    folder = SAMPLES / source / ("logs" if source == "cloudtrail" else "")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name != "expected_findings.json")


def expected(source: str) -> set[tuple[str, str]]:
    doc = json.loads((SAMPLES / source / "expected_findings.json").read_text())
    return {(f["event_id"], f["rule_id"]) for f in doc["findings"]}


@pytest.fixture(scope="module")
def producer() -> SigningKey:
    return load_private_key(KEYS / "log-producer.key", FIXTURE_PASSPHRASE)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_source_imports_seals_and_replays_with_the_expected_findings(
    source: str, tmp_path: Path, producer: SigningKey, keyring: Keyring, auditor_key: SigningKey
) -> None:
    result = run_import(
        SOURCES[source],
        vendor_files(source),
        load_enrichment(DIRECTORY, CATALOG),
        key=producer,
        out=tmp_path / "log",
        time=SEALED_AT,
        segment_size=4,
    )
    assert verify_log(tmp_path / "log", keyring).ok
    outcome = replay(tmp_path / "log", keyring, APPROVALS, POLICIES, auditor_key, tmp_path / "report", now=NOW)
    got = {(eid, f.rule_id) for f in outcome.findings for eid in f.event_ids}
    assert got == expected(source)
    assert len(outcome.findings) == len(expected(source))
    # The signed report names the log origin, which carries the import report's digest.
    assert outcome.statement.predicate.log.origin == result.origin
    assert result.report_sha256 in outcome.statement.subject[0].name
    assert check_import_report(tmp_path / "log", keyring) == result.report_sha256


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_event_points_at_its_vendor_record(source: str, tmp_path: Path, producer: SigningKey) -> None:
    files = vendor_files(source)
    run_import(
        SOURCES[source], files, load_enrichment(DIRECTORY, CATALOG), key=producer, out=tmp_path / "log", time=SEALED_AT
    )
    names = {p.name for p in files}
    events = [
        json.loads(line)
        for seg in sorted((tmp_path / "log" / "segments").glob("*.jsonl"))
        for line in seg.read_text().splitlines()
    ]
    assert events
    for event in events:
        pointer = event["source_record"]
        assert pointer["source"] == source and pointer["file"] in names and pointer["index"] >= 1
        assert event["event_id"].startswith(f"{source}:{pointer['vendor_event_id']}")
    # Follow one pointer back: the vendor record at that index carries the vendor id.
    pointer = events[-1]["source_record"]
    raw = next(p for p in files if p.name == pointer["file"]).read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
    assert pointer["vendor_event_id"] in text


def test_unresolved_principal_and_resource_are_kept_and_marked(tmp_path: Path, producer: SigningKey) -> None:
    result = run_import(
        SOURCES["cloudtrail"],
        vendor_files("cloudtrail"),
        load_enrichment(DIRECTORY, CATALOG),
        key=producer,
        out=tmp_path / "log",
        time=SEALED_AT,
    )
    lines = (tmp_path / "log" / "segments" / "00000000.jsonl").read_text().splitlines()
    marks = {json.loads(line)["actor"]["id"]: json.loads(line)["source_record"]["unresolved"] for line in lines}
    assert marks["arn:aws:iam::111122223333:user/ghost"] == ["principal"]
    assert ["resource"] in marks.values()
    assert result.stats.unresolved == {"principal": 1, "resource": 1}
    assert result.stats.out_of_scope == {"Management event": 1, "not user data (data catalogue)": 1}


def test_gcp_region_codes_are_not_proof_of_us_presence(tmp_path: Path, producer: SigningKey) -> None:
    run_import(
        SOURCES["gcp-access-transparency"],
        vendor_files("gcp-access-transparency"),
        load_enrichment(DIRECTORY, CATALOG),
        key=producer,
        out=tmp_path / "log",
        time=SEALED_AT,
    )
    lines = (tmp_path / "log" / "segments" / "00000000.jsonl").read_text().splitlines()
    located = {json.loads(line)["actor"]["physical_country"] for line in lines}
    assert {"NAM", "ANY", UNKNOWN_PLACE} <= located  # "??" (Google could not tell) is kept as unknown
    assert "??" not in located  # only ISO 3166 and region codes are sealed
    nam = next(json.loads(line) for line in lines if json.loads(line)["actor"]["physical_country"] == "NAM")
    assert nam["actor"]["office_country"] == "US"
    assert nam["approval_ids"] == ["projects/123456789012/approvalRequests/ar-20211208-0001"]
    assert nam["justification"] == "CUSTOMER_INITIATED_SUPPORT: Case number: 4411"


@pytest.mark.usefixtures("fixture_passphrase")
def test_cli_import_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "oci"
    argv = [
        "import",
        "oci-audit",
        *map(str, vendor_files("oci-audit")),
        "--directory",
        str(DIRECTORY),
        "--catalog",
        str(CATALOG),
        "--key",
        str(KEYS / "log-producer.key"),
        "--out",
        str(log),
    ]
    assert main(argv) == EXIT_CLEAN
    assert "imported 7 event(s) from 9 Oracle Cloud Infrastructure Audit record(s)" in capsys.readouterr().out
    assert (log / IMPORT_REPORT_FILE).is_file()
    assert (
        main(
            [
                "replay",
                str(log),
                "--keyring",
                str(KEYS / "keyring.json"),
                "--approvals",
                str(APPROVALS),
                "--report-key",
                str(KEYS / "auditor.key"),
                "--out",
                str(tmp_path / "r"),
                "--policy",
                str(POLICIES),
            ]
        )
        == EXIT_VIOLATIONS
    )
    findings = iter_findings(tmp_path / "r" / FINDINGS_FILE)
    assert {(e, f.rule_id) for f in findings for e in f.event_ids} == expected("oci-audit")
