"""Real vendor logs as they come (issue 15): regressions named after the bug each one catches.

The records here are synthetic, built in the test and labelled so; the real public
samples are in fixtures/sources/public/ (see test_import_public_corpus.py).
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, InputError
from audit.importers.base import iter_records, parse_time
from audit.importers.enrichment import Enrichment, load_enrichment
from audit.importers.run import IMPORT_REPORT_FILE, SOURCES, ImportStats, check_import_report, convert_files
from audit.logs.verify import verify_log
from audit.models import AccessEvent
from audit.pipeline import replay
from audit.signing.keys import Keyring, SigningKey
from tests.conftest import FIXTURES, KEYS, POLICIES

SAMPLES = FIXTURES / "sources"
DIRECTORY = SAMPLES / "directory.csv"
CATALOG = SAMPLES / "catalog.yaml"
APPROVALS = SAMPLES / "approvals.jsonl"
NOW = datetime(2022, 6, 30, tzinfo=UTC)


def _enrichment(tmp_path: Path, extra_people: str = "") -> Enrichment:
    directory = tmp_path / "directory.csv"
    directory.write_text(DIRECTORY.read_text() + extra_people)
    return load_enrichment(directory, CATALOG)


def _convert(
    source: str, records: list[dict[str, Any]], tmp_path: Path, enrichment: Enrichment | None = None
) -> tuple[list[AccessEvent], ImportStats]:
    path = tmp_path / f"{source}-records.json"
    path.write_text(json.dumps(records, indent=2))
    stats = ImportStats()
    events = list(convert_files(SOURCES[source], [path], enrichment or load_enrichment(DIRECTORY, CATALOG), stats))
    return events, stats


def _trail(name: str = "GetObject", **over: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": f"synthetic-{name}",
        "eventTime": "2021-12-06T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "eventCategory": "Data",
        "managementEvent": False,
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/us-eng-01"},
        "requestParameters": {"bucketName": "us-analytics-replica", "key": "profiles/shard-01.parquet"},
    }
    record.update(over)
    return record


# ---------------------------------------------------------------- CloudTrail


def _spoof_session(role: str) -> dict[str, Any]:
    return _trail(
        userIdentity={
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::111122223333:assumed-role/{role}/us-eng-01@example.com",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::111122223333:role/{role}"}},
        }
    )


def test_assumed_role_session_name_spoof_does_not_resolve_to_us_staff(tmp_path: Path) -> None:
    # A Beijing engineer assumes a plain role and names the session after a US colleague's login.
    events, stats = _convert("cloudtrail", [_spoof_session("DataExport")], tmp_path)
    (event,) = events
    assert event.actor.id == "arn:aws:sts::111122223333:assumed-role/DataExport/us-eng-01@example.com"
    assert event.actor.office_country is None and event.actor.physical_country is None
    assert stats.unresolved["principal"] == 1


def test_assumed_role_resolves_by_role_arn(tmp_path: Path) -> None:
    row = "arn:aws:iam::111122223333:role/DataExport,cn-export,service,Beijing ByteDance Technology,CN,CN,,,false,\n"
    events, _ = _convert("cloudtrail", [_spoof_session("DataExport")], tmp_path, _enrichment(tmp_path, row))
    assert events[0].actor.id == "cn-export" and events[0].actor.physical_country == "CN"


def test_session_name_resolves_only_for_identity_carrying_roles(tmp_path: Path) -> None:
    events, stats = _convert("cloudtrail", [_spoof_session("AWSReservedSSO_DataAnalyst")], tmp_path)
    assert events[0].actor.id == "us-eng-01" and stats.unresolved["principal"] == 0


def test_source_identity_carrying_role(tmp_path: Path) -> None:
    row = "arn:aws:iam::111122223333:role/Federated,,service,,,,,,false,source-identity\n"
    record = _spoof_session("Federated")
    record["userIdentity"]["sessionContext"]["sourceIdentity"] = "cn-eng-02@example.com"
    events, _ = _convert("cloudtrail", [record], tmp_path, _enrichment(tmp_path, row))
    assert events[0].actor.id == "cn-eng-02"


def test_v1_05_data_event_without_event_category_imports(tmp_path: Path) -> None:
    record = _trail("PutObject", eventVersion="1.05")
    del record["eventCategory"], record["managementEvent"]
    management = _trail("ListBuckets", eventVersion="1.05")
    del management["eventCategory"], management["managementEvent"]
    events, stats = _convert("cloudtrail", [record, management], tmp_path)
    assert [e.action for e in events] == ["write"]
    assert stats.out_of_scope == {"Management event": 1}


@pytest.mark.parametrize(
    ("source", "name", "action"),
    [
        ("sns.amazonaws.com", "Publish", "write"),
        ("lambda.amazonaws.com", "Invoke", "unknown"),
        ("s3.amazonaws.com", "CompleteMultipartUpload", "write"),
        ("s3.amazonaws.com", "AbortMultipartUpload", "delete"),
        ("dynamodb.amazonaws.com", "TransactGetItems", "read"),
        ("dynamodb.amazonaws.com", "ConditionCheckItem", "read"),
        ("sqs.amazonaws.com", "SendMessage", "write"),
        ("s3.amazonaws.com", "Frobnicate", "unknown"),
    ],
)
def test_unfamiliar_data_event_is_imported_never_dropped(tmp_path: Path, source: str, name: str, action: str) -> None:
    events, _ = _convert("cloudtrail", [_trail(name, eventSource=source)], tmp_path)
    assert [e.action for e in events] == [action]


def test_unknown_action_is_judged_by_the_policy(
    tmp_path: Path, producer: SigningKey, keyring: Keyring, auditor_key: SigningKey
) -> None:
    record = _trail("Frobnicate", userIdentity={"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ghost"})
    path = tmp_path / "frobnicate.json"
    path.write_text(json.dumps({"Records": [record]}))
    from audit.importers.run import run_import

    run_import(
        SOURCES["cloudtrail"],
        [path],
        load_enrichment(DIRECTORY, CATALOG),
        key=producer,
        out=tmp_path / "log",
        time=NOW - timedelta(days=1),
    )  # sealed before the report is signed
    outcome = replay(tmp_path / "log", keyring, APPROVALS, POLICIES, auditor_key, tmp_path / "r", now=NOW)
    rules = {f.rule_id for f in outcome.findings}
    assert {"foreign-access-without-approval", "store-outside-oci-us"} <= rules


def test_copy_object_judges_source_and_destination(tmp_path: Path) -> None:
    record = _trail(
        "CopyObject",
        requestParameters={
            "bucketName": "us-analytics-replica",
            "key": "videos/copy.parquet",
            "x-amz-copy-source": "us-analytics-replica/location/shard-03.parquet?versionId=abc",
        },
    )
    events, _ = _convert("cloudtrail", [record], tmp_path)
    assert [(e.event_id, e.resource.id, e.resource.category) for e in events] == [
        ("cloudtrail:synthetic-CopyObject", "arn:aws:s3:::us-analytics-replica/videos/copy.parquet", "public_video"),
        (
            "cloudtrail:synthetic-CopyObject#resource-2",
            "arn:aws:s3:::us-analytics-replica/location/shard-03.parquet",
            "precise_location",
        ),
    ]
    assert {e.action for e in events} == {"copy"}


def test_s3_outposts_put_object_is_one_access_not_three_nor_a_regional_bucket(tmp_path: Path) -> None:
    # Synthetic, in the shape of the S3 User Guide's S3 on Outposts example (fixtures/sources/public/cloudtrail/):
    # bucketName/Key in requestParameters and a bucket ARN written with a trailing "/". It used to give three events,
    # one of them on arn:aws:s3:::us-analytics-replica, a regional bucket of the same name that was never touched.
    outpost = "arn:aws:s3-outposts:us-east-1:111122223333:outpost/op-01ac5d28a6a232904/bucket/"
    record = _trail(
        "PutObject",
        eventSource="s3-outposts.amazonaws.com",
        requestParameters={"bucketName": "us-analytics-replica", "Key": "profiles/upload.sh"},
        resources=[
            {"type": "AWS::S3Outposts::Object", "ARN": outpost + "profiles/upload.sh"},
            {"type": "AWS::S3Outposts::Bucket", "ARN": outpost},
        ],
    )
    (event,) = _convert("cloudtrail", [record], tmp_path)[0]
    assert event.resource.id == outpost + "profiles/upload.sh" and event.action == "write"


@pytest.mark.parametrize(
    ("code", "imported"),
    [
        (None, True),
        ("", True),
        ("200", True),
        ("204", True),
        ("AccessDenied", False),
        ("NoSuchKey", False),
        ("404", False),
    ],
)
def test_error_code_semantics(tmp_path: Path, code: str | None, imported: bool) -> None:
    events, stats = _convert("cloudtrail", [_trail(errorCode=code)], tmp_path)
    assert bool(events) is imported
    assert stats.out_of_scope == ({} if imported else {"failed request": 1})


def test_record_without_principal_is_imported_unresolved(tmp_path: Path) -> None:
    record = _trail()
    del record["userIdentity"]
    events, stats = _convert("cloudtrail", [record], tmp_path)
    assert events[0].actor.id == "(no principal)" and stats.unresolved["principal"] == 1


# ---------------------------------------------------------------- OCI


def _oci(name: str, resource: str, path: str, **identity: str) -> dict[str, Any]:
    return {
        "event-id": f"oci-{name}",
        "event-time": "2021-12-07T10:00:00Z",
        "event-type": f"com.oraclecloud.service.{name.lower()}",
        "data": {
            "event-name": name,
            "resource-id": resource,
            "identity": {k.replace("_", "-"): v for k, v in identity.items()},
            "request": {"action": "GET", "path": path},
            "response": {"status": "200"},
        },
    }


def test_oci_cli_export_control_plane_and_region_from_ocid(tmp_path: Path) -> None:
    records = [
        _oci(
            "GetInstance",
            "ocid1.instance.oc1.iad.aaaa",
            "/20160918/instances/ocid1.instance.oc1.iad.aaaa",
            principal_name="cn-eng-02@example.com",
        ),
        _oci("GetObject", "ocid1.bucket.oc1.fra.scratch", "/n/ttus/b/scratch/o/x.csv"),
    ]
    path = tmp_path / "oci-cli.json"
    path.write_text(json.dumps({"data": records, "opc-next-page": None}, indent=2))
    stats = ImportStats()
    events = list(convert_files(SOURCES["oci-audit"], [path], load_enrichment(DIRECTORY, CATALOG), stats))
    assert stats.out_of_scope == {"control-plane operation": 1}
    (event,) = events
    assert event.resource.region == "eu-frankfurt-1"
    assert event.source_record is not None
    assert event.actor.id == "(no principal)" and set(event.source_record.unresolved) == {"principal", "resource"}


def test_oci_logging_search_response_results_are_records_not_one_missing_id_error(tmp_path: Path) -> None:
    # Synthetic: the SearchLogs response shape, {"results": [{"data": {"logContent": <CloudEvents 1.0>}}], "summary"},
    # as oracle-samples publishes a real one (fixtures/sources/public/oci-audit/). It used to be read as one record
    # and rejected for "missing required field eventId or eventID or id".
    def result(name: str, path: str) -> dict[str, Any]:
        content = {
            "id": f"search-{name}",
            "time": "2021-12-07T10:00:00Z",
            "type": f"com.oraclecloud.objectstorage.{name.lower()}",
            "oracle": {"loggroupid": "_Audit"},
            "data": {
                "eventName": name,
                "identity": {"principalName": "cn-eng-02@example.com"},
                "request": {"action": "GET", "path": path},
                "response": {"status": "200"},
            },
        }
        return {"data": {"datetime": 1638871200000, "logContent": content}}

    path = tmp_path / "search.json"
    response = {"results": [result("GetObject", "/n/ttus/b/us-comments/o/c.json"), result("ListBuckets", "/n/ttus/b/")]}
    path.write_text(json.dumps({**response, "summary": {"resultCount": 2}}))
    stats = ImportStats()
    (event,) = list(convert_files(SOURCES["oci-audit"], [path], load_enrichment(DIRECTORY, CATALOG), stats))
    assert stats.records == 2 and stats.out_of_scope == {"control-plane operation": 1}
    assert event.event_id == "oci-audit:search-GetObject" and event.actor.id == "cn-eng-02"


# ---------------------------------------------------------------- GCP


def _transparency(insert_id: str, objects: list[str]) -> dict[str, Any]:
    return {
        "insertId": insert_id,
        "timestamp": "2021-12-08T09:04:00Z",
        "jsonPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.TransparencyLog",
            "eventId": "shared-justification",
            "location": {
                "principalOfficeCountry": "US",
                "principalEmployingEntity": "Google LLC",
                "principalPhysicalLocationCountry": "US",
            },
            "accesses": [
                {
                    "methodName": "GoogleInternal.Read",
                    "resourceName": f"//googleapis.com/storage/buckets/us-media-gcs/objects/videos/{o}",
                }
                for o in objects
            ],
        },
    }


def test_gcp_ids_are_insert_id_and_access_index(tmp_path: Path) -> None:
    records = [_transparency("ins-1", ["a.mp4", "b.mp4"]), _transparency("ins-2", ["c.mp4"])]
    events, _ = _convert("gcp-access-transparency", records, tmp_path)
    assert [e.event_id.split(":", 1)[1] for e in events] == ["ins-1#1", "ins-1#2", "ins-2#1"]


def _reports_api_activity(**parameters: Any) -> dict[str, Any]:
    """Synthetic, following the Reports API Activity resource and the "Access Transparency Activity Events" appendix."""
    listed: list[dict[str, Any]] = []
    for name, value in parameters.items():
        listed.append({"name": name, ("multiValue" if isinstance(value, list) else "value"): value})
    return {
        "kind": "admin#reports#activity",
        "id": {
            "time": "2021-12-08T09:00:00.000Z",
            "uniqueQualifier": "-4242",
            "applicationName": "access_transparency",
            "customerId": "C01abcdef",
        },
        "events": [{"type": "GSUITE_RESOURCE", "name": "ACCESS", "parameters": listed}],
    }


def test_workspace_reports_api_product_is_gsuite_product_name_not_product(tmp_path: Path) -> None:
    record = _reports_api_activity(
        ACTOR_HOME_OFFICE="US",
        GSUITE_PRODUCT_NAME="DRIVE",
        RESOURCE_NAME="doc-123",
        OWNER_EMAIL="owner@example.com",
        JUSTIFICATIONS=["Customer Initiated Support - Case Number: 12345678"],
        ACCESS_APPROVAL_REQUEST_IDS=["ar-1"],
        LOG_ID="log-1",
    )
    (event,) = _convert("gcp-access-transparency", [record], tmp_path)[0]
    assert event.event_id == "gcp-access-transparency:-4242#1" and event.action == "unknown"
    assert event.source_system == "google-workspace-access-transparency:DRIVE"
    assert event.actor.office_country == "US" and event.actor.physical_country == "UNKNOWN"
    assert event.resource.id == "doc-123"
    assert event.approval_ids == ("ar-1",)
    assert event.justification == "Customer Initiated Support - Case Number: 12345678"
    undocumented = _reports_api_activity(RESOURCE_NAME="doc-123", PRODUCT="DRIVE")  # a name Google never documented
    (event,) = _convert("gcp-access-transparency", [undocumented], tmp_path)[0]
    assert event.source_system == "google-workspace-access-transparency"


WORKSPACE_SAMPLE = Path(__file__).parent / "data" / "gcp-workspace" / "access-transparency-cloud-logging.json"
"""Derived from Google's documentation sample, CC-BY-4.0, trailing commas removed, otherwise verbatim (its README)."""


def test_workspace_cloud_logging_activity_proto_is_read_not_a_record_error(tmp_path: Path) -> None:
    stats = ImportStats()
    (event,) = convert_files(
        SOURCES["gcp-access-transparency"], [WORKSPACE_SAMPLE], load_enrichment(DIRECTORY, CATALOG), stats
    )
    assert stats.records == 1 and stats.out_of_scope == {}
    assert event.event_id == "gcp-access-transparency:-6x8cuqc3rk#1" and event.action == "unknown"
    assert event.time == datetime(2021, 5, 19, 16, 27, 53, 703908, tzinfo=UTC)
    assert event.source_system == "google-workspace-access-transparency:GMAIL"
    assert event.resource.id == "//googleapis.com/gmail/users/owner@example.com"
    assert event.actor.office_country == "US" and event.actor.physical_country == "UNKNOWN"
    assert event.justification == "Google Initiated Service - For details, please refer to the documentation."


@pytest.mark.usefixtures("fixture_passphrase")
def test_workspace_sample_as_published_with_trailing_commas_is_one_input_error_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = WORKSPACE_SAMPLE.read_text().split("\n")
    closing = [i for i, line in enumerate(lines) if line.rstrip(",") == " " * 10 + "}"]  # each parameter[] object
    for i in closing:
        lines[i - 1] += ","  # as Google's page prints them: "name" : "GSUITE_PRODUCT_NAME" , then }
    published = tmp_path / "workspace_sample_as_published.json"
    published.write_text("\n".join(lines))
    assert len(closing) == 6
    # The first comma is on line closing[0]; Python 3.13 points at it, 3.11 and 3.12 at the "}" after it.
    named = rf"record 1: malformed JSON at line ({closing[0]}|{closing[0] + 1}): "
    with pytest.raises(InputError, match=named):
        list(iter_records(published))
    code = main(
        [
            "import",
            "gcp-access-transparency",
            str(published),
            "--directory",
            str(DIRECTORY),
            "--catalog",
            str(CATALOG),
            "--key",
            str(KEYS / "log-producer.key"),
            "--out",
            str(tmp_path / "log"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == EXIT_INPUT and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: {published}:1: ") and re.search(named, err)
    assert not (tmp_path / "log").exists()


def _activity_proto(
    insert_id: str | None, *events: list[dict[str, Any]], payload: str = "jsonPayload"
) -> dict[str, Any]:
    """Synthetic, following the Cloud Logging sample on Google's Workspace Access Transparency page."""
    entry: dict[str, Any] = {
        payload: {
            "@type": "type.googleapis.com/ccc_hosted_reporting.ActivityProto",
            "activityId": {"uniqQualifier": "1720950322606095479", "timeUsec": "1621441673703908"},
            "event": [{"eventType": "GSUITE_RESOURCE", "eventName": "ACCESS", "parameter": p} for p in events],
        },
        "logName": "organizations/12345/logs/cloudaudit.googleapis.com%2Faccess_transparency",
    }
    if insert_id is not None:
        entry["insertId"] = insert_id
        entry["timestamp"] = "2021-05-19T16:27:53.703908Z"
    return entry


def test_workspace_ids_are_insert_id_and_event_index_and_odd_parameters_never_crash(tmp_path: Path) -> None:
    mail: list[dict[str, Any]] = [
        {"name": "RESOURCE_NAME", "multiStrValue": ["//googleapis.com/gmail/users/a@example.com"]}
    ]
    odd: list[dict[str, Any]] = [
        {"name": "resource_name", "value": "doc-9"},  # matched without regard to case
        {"name": "ACTOR_HOME_OFFICE", "value": "??"},  # documented: location not available
        {"name": "GSUITE_PRODUCT_NAME", "multiStrValue": ["DRIVE"]},
        {"name": "SOMETHING_NEW", "intValue": "7"},
        {"name": "ANOTHER", "boolValue": True},
        {"name": "NESTED", "messageValue": {"parameter": []}},
    ]
    records = [
        _activity_proto("ins-1", mail, odd, [{"name": "LOG_ID", "value": "x"}]),
        _activity_proto("ins-2", mail),
        _activity_proto(None, mail, payload="protoPayload"),  # no insertId: the activity's qualifier and timeUsec
    ]
    events, stats = _convert("gcp-access-transparency", records, tmp_path)
    assert [e.event_id.split(":", 1)[1] for e in events] == ["ins-1#1", "ins-1#2", "ins-2#1", "1720950322606095479#1"]
    assert stats.out_of_scope == {"names no resource (Workspace)": 1}
    assert events[1].resource.id == "doc-9" and events[1].actor.office_country == "UNKNOWN"
    assert events[1].source_system == "google-workspace-access-transparency:DRIVE"
    assert events[3].time == datetime(2021, 5, 19, 16, 27, 53, 703908, tzinfo=UTC)


# ---------------------------------------------------------------- OCSF


@pytest.mark.parametrize("value", [1639000000, 1639000000000, 1639000000000000])
def test_ocsf_epoch_seconds_millis_and_micros(value: int) -> None:
    assert parse_time(value, "time") == datetime(2021, 12, 8, 21, 46, 40, tzinfo=UTC)


@pytest.mark.parametrize("value", [5, 10**25, -1639000000])
def test_ocsf_epoch_out_of_range_is_a_record_error(value: int) -> None:
    from audit.errors import RecordError

    with pytest.raises(RecordError):
        parse_time(value, "time")


def test_ocsf_microsecond_time_and_out_of_scope_classes(tmp_path: Path) -> None:
    base = {
        "time": 1639000000123456,
        "metadata": {"uid": "u-1", "version": "1.1.0"},
        "actor": {"user": {"uid": "us-eng-01@example.com"}},
    }
    records = [
        {**base, "class_uid": 6005, "activity_id": 1, "database": {"name": "USERDB"}, "table": {"name": "PROFILES"}},
        {**base, "class_uid": 4001, "activity_id": 1},
        {**base, "class_uid": 6003, "activity_id": 99},
        {**base, "class_uid": 6003, "activity_id": 2},
    ]
    events, stats = _convert("ocsf", records, tmp_path)
    assert [e.time for e in events] == [datetime(2021, 12, 8, 21, 46, 40, 123456, tzinfo=UTC)]
    assert stats.out_of_scope == {
        "OCSF class 4001 is not API or Datastore Activity": 1,
        "API activity 99 is not a data access": 1,
        "names no resource": 1,
    }


# ---------------------------------------------------------------- framing


def test_framings_detected_by_content(tmp_path: Path) -> None:
    record = _trail()
    variants = {
        "pretty.json": json.dumps(record, indent=2),
        "single.json": json.dumps(record),
        "records.json": json.dumps({"Records": [record]}, indent=4),
        "two-pretty.json": json.dumps(record, indent=2) + "\n" + json.dumps(record, indent=2),
        "array.json": json.dumps([record], indent=1),
        "entries.json": json.dumps({"entries": [record]}),
    }
    for name, text in variants.items():
        path = tmp_path / name
        path.write_text(text)
        expected = 2 if name.startswith("two") else 1
        assert [r.value for r in iter_records(path)] == [record] * expected, name
    gz = tmp_path / "pretty.json.gz"
    gz.write_bytes(gzip.compress(variants["pretty.json"].encode()))
    assert len(list(iter_records(gz))) == 1


def test_trailing_comma_is_one_clear_error_not_78_records(tmp_path: Path) -> None:
    path = tmp_path / "trailing_comma.json"
    path.write_text(json.dumps({"Records": [_trail()]}, indent=2).replace("}\n  ]", "},\n  ]"))
    with pytest.raises(InputError, match="trailing comma after record 1"):
        list(iter_records(path))
    pretty = tmp_path / "pretty_trailing_comma.json"
    pretty.write_text(json.dumps(_trail(), indent=2).replace('"us-east-1"', '"us-east-1",,'))
    with pytest.raises(InputError, match="record 1: malformed JSON"):
        list(iter_records(pretty))


# ---------------------------------------------------------------- zero access


@pytest.mark.usefixtures("fixture_passphrase")
def test_zero_access_import_exits_0_seals_an_empty_log_and_writes_the_report(
    tmp_path: Path, keyring: Keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    management = _trail("ListBuckets", eventCategory="Management", managementEvent=True)
    path = tmp_path / "management_only.json"
    path.write_text(json.dumps({"Records": [management, _trail(errorCode="AccessDenied")]}))
    log = tmp_path / "log"
    assert (
        main(
            [
                "import",
                "cloudtrail",
                str(path),
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
    assert "imported 0 event(s) from 2" in capsys.readouterr().out
    assert verify_log(log, keyring).ok
    report = json.loads((log / IMPORT_REPORT_FILE).read_bytes())
    assert (report["records"], report["events"]) == (2, 0)
    assert report["out_of_scope"] == {"Management event": 1, "failed request": 1}
    check_import_report(log, keyring)
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
        == EXIT_CLEAN
    )


@pytest.fixture(scope="module")
def producer() -> SigningKey:
    from audit.signing.keys import load_private_key
    from fixtures.passphrase import FIXTURE_PASSPHRASE

    return load_private_key(KEYS / "log-producer.key", FIXTURE_PASSPHRASE)
