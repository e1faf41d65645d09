"""Bad vendor input fails in one line naming file and record, writes nothing; --skip-invalid reports it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, InputError, IntegrityError
from audit.importers import base
from audit.importers.base import iter_records
from audit.importers.enrichment import load_catalogue, load_directory, load_enrichment
from audit.importers.run import IMPORT_REPORT_FILE, SOURCES, check_import_report, run_import
from audit.signing.keys import Keyring, SigningKey, load_private_key
from fixtures.passphrase import FIXTURE_PASSPHRASE
from tests.conftest import FIXTURES, KEYS

SAMPLES = FIXTURES / "sources"
DIRECTORY = SAMPLES / "directory.csv"
CATALOG = SAMPLES / "catalog.yaml"


def _records(source_file: Path) -> list[dict[str, object]]:
    return list(json.loads(gzip.decompress(source_file.read_bytes()))["Records"])


FIRST_LOG = sorted((SAMPLES / "cloudtrail" / "logs").iterdir())[0]


@pytest.fixture(scope="module")
def producer() -> SigningKey:
    return load_private_key(KEYS / "log-producer.key", FIXTURE_PASSPHRASE)


def _cli(files: list[Path], out: Path, source: str = "cloudtrail", *extra: str) -> int:
    return main(
        [
            "import",
            source,
            *map(str, files),
            "--directory",
            str(DIRECTORY),
            "--catalog",
            str(CATALOG),
            "--key",
            str(KEYS / "log-producer.key"),
            "--out",
            str(out),
            *extra,
        ]
    )


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.usefixtures("fixture_passphrase")
def test_malformed_json_in_a_gzip_records_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps({"Records": _records(FIRST_LOG)}, indent=1)
    broken = text.replace('"eventName": "SelectObjectContent",', '"eventName": "SelectObjectContent"', 1)
    bad = tmp_path / "in" / "malformed_json.json.gz"
    bad.parent.mkdir()
    bad.write_bytes(gzip.compress(broken.encode()))
    assert _cli([bad], tmp_path / "log") == EXIT_INPUT
    line = _one_line(capsys)
    record_line = broken[: broken.index('"eventName": "SelectObjectContent"')].count("\n") + 1
    assert f"{bad}:" in line and "record 3: malformed JSON" in line
    assert int(line.split(":")[2]) <= record_line
    assert list(tmp_path.iterdir()) == [tmp_path / "in"]  # no log, no temporary directory


@pytest.mark.usefixtures("fixture_passphrase")
def test_record_missing_a_required_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = _records(FIRST_LOG)
    del records[1]["eventTime"]
    bad = tmp_path / "missing_event_time.json"
    bad.write_text(json.dumps({"Records": records}))
    assert _cli([bad], tmp_path / "log") == EXIT_INPUT
    line = _one_line(capsys)
    assert f"{bad}:1: record 2 (eventID {records[1]['eventID']}): missing required field eventTime" in line
    assert not (tmp_path / "log").exists()


@pytest.mark.usefixtures("fixture_passphrase")
@pytest.mark.parametrize(
    ("source", "record", "reason"),
    [
        (
            "oci-audit",
            {"eventId": "x", "eventType": "io.cloudevents.test", "eventTime": "2021-12-07T00:00:00Z", "data": {}},
            "is not an OCI Audit event",
        ),
        (
            "gcp-access-transparency",
            {
                "insertId": "x",
                "timestamp": "2021-12-08T00:00:00Z",
                "jsonPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog"},
            },
            "is not an Access Transparency log",
        ),
        (
            "gcp-access-transparency",
            {
                "insertId": "x",
                "timestamp": "2021-12-08T00:00:00Z",
                "jsonPayload": {
                    "@type": "type.googleapis.com/google.cloud.audit.TransparencyLog",
                    "location": {"principalOfficeCountry": "Zurich", "principalEmployingEntity": "Google LLC"},
                    "accesses": [{"methodName": "GoogleInternal.Read", "resourceName": "//googleapis.com/x"}],
                },
            },
            "field principalOfficeCountry: 'Zurich' is not a country or region code",
        ),
        (
            "gcp-access-transparency",
            {  # Synthetic: a Workspace admin audit entry (ActivityProto inside a Cloud Audit Log)
                "insertId": "x",
                "timestamp": "2021-12-08T00:00:00Z",
                "logName": "organizations/1/logs/cloudaudit.googleapis.com%2Factivity",
                "protoPayload": {
                    "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                    "metadata": {"@type": "type.googleapis.com/ccc_hosted_reporting.ActivityProto", "event": []},
                },
            },
            "protoPayload @type 'type.googleapis.com/google.cloud.audit.AuditLog' is not an Access Transparency log",
        ),
        (
            "gcp-access-transparency",
            {
                "insertId": "x",
                "timestamp": "2021-12-08T00:00:00Z",
                "logName": "organizations/1/logs/cloudaudit.googleapis.com%2Fdata_access",
                "jsonPayload": {"@type": "type.googleapis.com/ccc_hosted_reporting.ActivityProto", "event": [{}]},
            },
            "logName 'organizations/1/logs/cloudaudit.googleapis.com%2Fdata_access' is not an Access Transparency log",
        ),
        (
            "gcp-access-transparency",
            {
                "insertId": "x",
                "timestamp": "2021-12-08T00:00:00Z",
                "jsonPayload": {
                    "@type": "type.googleapis.com/ccc_hosted_reporting.ActivityProto",
                    "event": [
                        {
                            "parameter": [
                                {"name": "RESOURCE_NAME", "value": "d"},
                                {"name": "ACTOR_HOME_OFFICE", "value": "us"},
                            ]
                        }
                    ],
                },
            },
            "field ACTOR_HOME_OFFICE: 'us' is not a country or region code",
        ),
    ],
    ids=[
        "oci-foreign-event-type",
        "gcp-audit-log-not-transparency",
        "gcp-office-not-a-code-is-a-record-error-not-an-internal-error",
        "workspace-admin-audit-log-not-transparency",
        "workspace-activity-from-another-log",
        "workspace-home-office-not-a-code",
    ],
)
def test_unknown_event_shape(
    source: str, record: dict[str, object], reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "unknown_shape.jsonl"
    bad.write_text(json.dumps(record) + "\n")
    assert _cli([bad], tmp_path / "log", source) == EXIT_INPUT
    line = _one_line(capsys)
    assert line.startswith(f"error: {bad}:1: record 1") and reason in line
    assert not (tmp_path / "log").exists()


def test_skip_invalid_lists_skipped_records_in_the_referenced_import_report(
    tmp_path: Path, producer: SigningKey, keyring: Keyring
) -> None:
    lines = (SAMPLES / "ocsf" / "ocsf-events-2021-12-09.jsonl").read_text().splitlines()
    lines.insert(2, '{"class_uid": 6005, "time": ')  # malformed JSON line
    lines.insert(4, json.dumps({"class_uid": 6005, "time": "yesterday", "activity_id": 1}))  # bad time
    bad = tmp_path / "skip_invalid_mixed.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    enrichment = load_enrichment(DIRECTORY, CATALOG)
    with pytest.raises(InputError, match=r"record 3: malformed JSON"):
        run_import(SOURCES["ocsf"], [bad], enrichment, key=producer, out=tmp_path / "strict")
    assert not (tmp_path / "strict").exists()
    result = run_import(SOURCES["ocsf"], [bad], enrichment, key=producer, out=tmp_path / "log", skip_invalid=True)
    report = json.loads((tmp_path / "log" / IMPORT_REPORT_FILE).read_bytes())
    assert [(s["record"], s["line"]) for s in report["skipped"]] == [(3, 3), (5, 5)]
    assert "is not an RFC 3339 time" in report["skipped"][1]["reason"]
    assert report["events"] == result.stats.events == 5 and report["records"] == 9
    assert check_import_report(tmp_path / "log", keyring) == result.report_sha256
    report["skipped"] = []  # hide the evidence
    (tmp_path / "log" / IMPORT_REPORT_FILE).write_text(json.dumps(report))
    with pytest.raises(IntegrityError, match=r"is not .* named by the signed log"):
        check_import_report(tmp_path / "log", keyring)


def test_skip_invalid_skips_the_unreadable_rest_of_an_array_file(tmp_path: Path, producer: SigningKey) -> None:
    records = _records(FIRST_LOG)
    text = json.dumps({"Records": records})
    cut = text.index(json.dumps(records[2])[:40], text.index(str(records[1]["eventID"])))  # where record 3 starts
    broken = tmp_path / "array_malformed_tail.json"
    broken.write_text(text[:cut] + "{not json" + text[cut:])
    good = sorted((SAMPLES / "cloudtrail" / "logs").iterdir())[1]
    result = run_import(
        SOURCES["cloudtrail"],
        [broken, good],
        load_enrichment(DIRECTORY, CATALOG),
        key=producer,
        out=tmp_path / "log",
        skip_invalid=True,
    )
    assert result.stats.skipped == [
        {
            "file": broken.name,
            "record": 3,
            "line": 1,
            "reason": "rest of file unreadable: record 3: malformed JSON: "
            "Expecting property name enclosed in double quotes",
        }
    ]
    assert result.stats.per_file == {broken.name: 2, good.name: 3}


def test_records_are_streamed_not_loaded_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = _records(FIRST_LOG)
    good = tmp_path / "streamed.json"
    good.write_text(json.dumps({"Records": records}, indent=2))
    monkeypatch.setattr(base, "CHUNK", 7)  # record boundaries fall inside chunks, strings and numbers
    assert [r.value for r in iter_records(good, "Records")] == records
    truncated = tmp_path / "truncated_after_first_record.json"
    text = good.read_text()
    truncated.write_text(text[: text.index(str(records[1]["eventID"]))])
    stream = iter_records(truncated, "Records")
    assert next(stream).value == records[0]  # yielded before the broken tail was read
    with pytest.raises(InputError, match="record 2"):
        next(stream)


def test_records_file_as_a_json_array_and_json_lines(tmp_path: Path) -> None:
    records = _records(FIRST_LOG)
    array = tmp_path / "array.json"
    array.write_text(json.dumps(records))
    lines = tmp_path / "lines.jsonl.gz"
    lines.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n\n" for r in records)))
    assert [r.value for r in iter_records(array, "Records")] == records
    assert [(r.index, r.line) for r in iter_records(lines, "Records")] == [(1, 1), (2, 3), (3, 5)]


@pytest.mark.usefixtures("fixture_passphrase")
def test_output_must_be_new_or_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "log"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert _cli([FIRST_LOG], out) == EXIT_INPUT
    assert "not an empty directory" in _one_line(capsys)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    assert _cli([FIRST_LOG], out) == EXIT_CLEAN


# ------------------------------------------------------------------ enrichment files


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("principal,office_country\nalice,US\nbob,china\n", 3, "office_country: Value error, must be an upper-case"),
        ("principal,office_country\nalice,US\nalice,CN\n", 3, "duplicate principal 'alice'"),
        ("principal,favourite_colour\nalice,blue\n", 2, "favourite_colour: unknown field"),
        ("principal,security_team\nsec,true\n", 2, "a security-team member needs a team and an office_country"),
        ("principal,security_team\nsec,maybe\n", 2, "security_team: 'maybe' is not true/false"),
    ],
    ids=["bad-country", "duplicate", "unknown-column", "security-team-unplaced", "bad-flag"],
)
def test_bad_directory_csv(text: str, line: int, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_directory(path)
    assert (info.value.path, info.value.line) == (str(path), line)
    assert reason in info.value.reason and "\n" not in str(info.value)


def test_directory_as_json(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text(
        json.dumps(
            {
                "people": [
                    {"principal": "a@example.com", "person_id": "a", "office_country": "US"},
                    {"principal": "b@example.com", "kind": "robot"},
                ]
            }
        )
    )
    with pytest.raises(InputError, match=r"people\[1\]: kind: Input should be"):
        load_directory(path)
    path.write_text(json.dumps([{"principal": "a@example.com", "person_id": "a", "office_country": "US"}]))
    assert load_directory(path).find(["x", "a@example.com"]) is not None


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ('  - match: "x*"\n    dataset: d\n    category: c\n', "user data entry needs store, provider, region"),
        ('  - match: "x*"\n    user_data: false\n    dataset: d\n', "describes no dataset"),
        ('  - match: "x*"\n    user_data: false\n    owner: me\n', "owner: unknown field"),
    ],
    ids=["incomplete", "not-user-data-described", "unknown-key"],
)
def test_bad_catalogue_entry_names_its_line(entry: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text('resources:\n  - match: "ok/*"\n    user_data: false\n' + entry)
    with pytest.raises(InputError) as info:
        load_catalogue(path)
    assert (info.value.line, info.value.path) == (4, str(path))
    assert "resources[1]" in info.value.reason and reason in info.value.reason


def test_catalogue_first_match_wins(tmp_path: Path) -> None:
    catalogue = load_catalogue(CATALOG)
    entry = catalogue.find(["arn:aws:s3:::us-analytics-replica/health/x.parquet"])
    assert entry is not None and entry.category == "health_inferred"
    assert catalogue.find(["arn:aws:s3:::elsewhere/x"]) is None


@pytest.mark.usefixtures("fixture_passphrase")
@pytest.mark.parametrize("field", ["arn", "key"])
def test_lone_surrogate_escape_is_a_record_error_not_an_internal_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str
) -> None:
    """Regression: ``"\\ud800"`` in a CloudTrail principal or request parameter ended the import with exit 4.

    Python's JSON reader accepts an unpaired surrogate escape; no model, canonical form or
    UTF-8 file can hold the character, so pydantic, rfc8785 or the encoder failed deep inside.
    """
    records = _records(FIRST_LOG)
    text = json.dumps({"Records": records})
    target = records[0]["userIdentity"]["arn"] if field == "arn" else None  # type: ignore[index]
    if target is not None:
        text = text.replace(json.dumps(target), json.dumps(target)[:-1] + '\\ud800"', 1)
    else:
        text = text.replace('"eventName": ', '"eventName\\udc00x": "y", "eventName": ', 1)
    bad = tmp_path / "in" / "lone_surrogate.json"
    bad.parent.mkdir()
    bad.write_text(text)
    assert _cli([bad], tmp_path / "log") == EXIT_INPUT
    line = _one_line(capsys)
    assert f"{bad}:" in line and "record 1" in line and "lone surrogate" in line
    assert _cli([bad], tmp_path / "skipped", "cloudtrail", "--skip-invalid") == EXIT_CLEAN
    report = json.loads((tmp_path / "skipped" / IMPORT_REPORT_FILE).read_text())
    assert [s["record"] for s in report["skipped"]] == [1]
