"""The CloudTrail fast path gives exactly what the general converter and canonical_bytes give.

:mod:`audit.importers.cloudtrail_fast` builds an event's canonical bytes without
pydantic. For every record it answers, its events (bytes, ids, unresolved kinds) and
out-of-scope reasons must be the general path's; for everything else it must not
answer, so the general path reports the record (same message, same line). Checked on
the fixtures, the public corpus, the benchmark's records and generated records
(fixture records with fields deleted or replaced by hostile values), and on whole
imports: the sealed log, the import report and the errors are byte-identical with the
fast path and without it.
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.canonical import canonical_bytes
from audit.errors import InputError, RecordError
from audit.importers import cloudtrail_fast
from audit.importers.base import OutOfScope, RawRecord, iter_records, record_keys
from audit.importers.enrichment import MEMO_BYTES, Enrichment, load_enrichment
from audit.importers.run import SOURCES, ImportStats, convert_files, encode_files, run_import
from audit.models import AccessEvent
from audit.signing.keys import signing_key_from_seed
from tests.conftest import FIXTURES

SAMPLES = FIXTURES / "sources"
CLOUDTRAIL = SOURCES["cloudtrail"]
GENERAL = dataclasses.replace(CLOUDTRAIL, fast=None)
KEY = signing_key_from_seed(b"\x44" * 32)
TIME = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _enrichment() -> Enrichment:
    return load_enrichment(SAMPLES / "directory.csv", SAMPLES / "catalog.yaml")


ENRICHMENT = _enrichment()


def _files() -> list[Path]:
    logs = sorted((SAMPLES / "cloudtrail" / "logs").glob("*.json.gz"))
    public = sorted(p for p in (SAMPLES / "public" / "cloudtrail").iterdir() if p.name != "expected-imports.json")
    return logs + public


def _base_records() -> list[dict[str, Any]]:
    records = []
    for path in _files():
        records += [r.value for r in iter_records(path, "Records") if isinstance(r.value, dict)]
    return records


BASE = _base_records()


def _general(raw: RawRecord, enrichment: Enrichment) -> list[Any] | str:
    """The general path's answer: (bytes, id, unresolved) per event and each out-of-scope reason, or its error."""
    try:
        converted = list(CLOUDTRAIL.convert(raw, enrichment))
    except RecordError as exc:
        return f"RecordError: {exc}"
    answer: list[Any] = []
    for item in converted:
        if isinstance(item, OutOfScope):
            answer.append(item.reason)
            continue
        assert isinstance(item, AccessEvent) and item.source_record is not None
        try:
            answer.append((canonical_bytes(item), item.event_id, item.source_record.unresolved))
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
    return answer


assert CLOUDTRAIL.fast is not None
FAST = CLOUDTRAIL.fast(ENRICHMENT)
"""One fast path for every check: its memos answer later records from earlier ones, as in an import."""


def _fast_answer(raw: RawRecord) -> list[Any] | None:
    answer = FAST(raw)
    if answer is None:
        return None
    return [item.reason if isinstance(item, OutOfScope) else tuple(item) for item in answer]


def _check(raw: RawRecord) -> bool:
    """Whether the fast path answered; if it did, it gave the general path's answer."""
    try:
        general: list[Any] | str = _general(raw, ENRICHMENT)
    except Exception as exc:
        general = f"{type(exc).__name__}: {exc}"
    fast = _fast_answer(raw)
    if fast is None:
        return False
    assert fast == general, (raw, fast, general)
    return True


def test_fast_path_answers_every_fixture_and_public_record_as_the_general_path() -> None:
    declined = []
    for path in _files():
        for raw in iter_records(path, "Records"):
            if not _check(raw):
                declined.append(raw.value)
    # It is taken, not only proven equal where it declines: only a record without an eventID
    # (eventVersion 1.0, named by requestID or its place in the file) goes the general way.
    assert len(declined) == 1 and "eventID" not in declined[0]


def test_fast_path_answers_the_benchmark_records() -> None:
    """The records ``make bench`` imports (fixture records with fresh ids), all answered."""
    records = [r for path in sorted((SAMPLES / "cloudtrail" / "logs").glob("*.json.gz")) for r in _read(path)]
    path = Path("111122223333_CloudTrail_us-east-1_bench_000000.json.gz")
    for index in range(1, 3 * len(records) + 1):
        record = {**records[index % len(records)], "eventID": f"bench-{index:09d}", "requestID": f"req-{index:09d}"}
        assert _check(RawRecord(path, index, 1, record))


def _read(path: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
    return records


# ------------------------------------------------------------------ generated records

_PATHS = [
    "eventID",
    "requestID",
    "eventTime",
    "eventName",
    "eventSource",
    "awsRegion",
    "eventCategory",
    "managementEvent",
    "errorCode",
    "eventType",
    "userIdentity",
    "userIdentity.type",
    "userIdentity.arn",
    "userIdentity.userName",
    "userIdentity.principalId",
    "userIdentity.invokedBy",
    "userIdentity.onBehalfOf",
    "userIdentity.onBehalfOf.userId",
    "userIdentity.sessionContext",
    "userIdentity.sessionContext.sessionIssuer",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.sessionContext.sourceIdentity",
    "resources",
    "resources.0",
    "resources.0.ARN",
    "resources.1.ARN",
    "requestParameters",
    "requestParameters.bucketName",
    "requestParameters.key",
    "requestParameters.x-amz-copy-source",
]
_WORDS = [
    "",
    " ",
    "\ud800",
    "é",
    "200",
    "204",
    "404",
    "Data",
    "Management",
    "Insight",
    "AwsCloudTrailInsight",
    "AssumedRole",
    "IAMUser",
    "s3.amazonaws.com",
    "dynamodb.amazonaws.com",
    "lambda.amazonaws.com",
    "GetObject",
    "PutObject",
    "CopyObject",
    "DeleteObjects",
    "Frobnicate",
    "us-east-1",
    "arn:aws:s3:::us-analytics-replica",
    "arn:aws:s3:::us-analytics-replica/",
    "arn:aws:s3:::us-analytics-replica/videos/a.mp4",
    "arn:aws:s3:::build-artifacts/x",
    "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DataAnalyst/cn-eng-02@example.com",
    "arn:aws:iam::111122223333:role/AWSReservedSSO_DataAnalyst",
    "arn:aws:iam::111122223333:user/us-eng-01",
    "us-eng-01@example.com",
    "/us-analytics-replica/videos/a%2Fb.mp4?versionId=1",
    "2021-12-06T10:05:00Z",
    "2021-12-06T10:05:00.123456789+02:00",
    "2021-12-06T10:05:00",
    "1999-12-31T23:59:59Z",
]
_DELETE = object()
_values = (
    st.sampled_from(_WORDS)
    | st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.lists(st.sampled_from(_WORDS), max_size=2)
    | st.dictionaries(st.sampled_from(["ARN", "arn", "type", "userId"]), st.sampled_from(_WORDS), max_size=2)
)


def _mutated(base: int, changes: list[tuple[str, Any]]) -> dict[str, Any]:
    record = copy.deepcopy(BASE[base])
    for dotted, value in changes:
        node: Any = record
        *parents, last = dotted.split(".")
        for part in parents:
            key: Any = int(part) if isinstance(node, list) and part.isdigit() else part
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                break
        else:
            key = int(last) if isinstance(node, list) and last.isdigit() else last
            try:
                if value is _DELETE:
                    del node[key]
                else:
                    node[key] = copy.deepcopy(value)
            except (KeyError, IndexError, TypeError):
                pass
    return record


_records = st.builds(
    _mutated,
    st.integers(0, len(BASE) - 1),
    st.lists(st.tuples(st.sampled_from(_PATHS), _values | st.just(_DELETE)), max_size=4),
)


@SETTINGS
@given(
    record=_records,
    index=st.sampled_from([1, 2, 7, 2**53 - 1, 2**53]),
    name=st.sampled_from(["ct.json.gz", "é.json", "\udcff.json"]),
)
def test_fast_path_equals_general_path_on_generated_records(record: dict[str, Any], index: int, name: str) -> None:
    _check(RawRecord(Path(name), index, 3, record))


@SETTINGS
@given(value=_values)
def test_fast_path_on_a_record_that_is_not_an_object(value: Any) -> None:
    assert _fast_answer(RawRecord(Path("f.json"), 1, 1, value)) is None or isinstance(value, dict)


# ------------------------------------------------------------------ whole imports


def _import(source: Any, files: list[Path], out: Path, **options: Any) -> dict[str, bytes] | str:
    """Every file the import wrote, or its error (a crash too: the same one either way)."""
    try:
        run_import(source, files, _enrichment(), key=KEY, out=out, time=TIME, **options)
    except InputError as exc:
        return str(exc).replace(str(out), "OUT")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".replace(str(out), "OUT")
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _same_import(files: list[Path], tmp: Path, **options: Any) -> dict[str, bytes] | str:
    fast = _import(CLOUDTRAIL, files, tmp / "fast", **options)
    general = _import(GENERAL, files, tmp / "general", **options)
    assert fast == general
    return fast


@pytest.mark.parametrize("skip_invalid", [False, True])
def test_whole_imports_are_identical_with_and_without_the_fast_path(tmp_path: Path, skip_invalid: bool) -> None:
    result = _same_import(_files(), tmp_path / "all", skip_invalid=skip_invalid, segment_size=3)
    assert isinstance(result, dict) and "import-report.json" in result
    for number, path in enumerate(_files()):
        _same_import([path], tmp_path / str(number), skip_invalid=skip_invalid)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(_records, min_size=1, max_size=8),
    skip_invalid=st.booleans(),
    framing=st.sampled_from(["lines", "spaced", "compact"]),
)
def test_generated_files_import_identically(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]], skip_invalid: bool, framing: str
) -> None:
    """Compact files take the typed read (typed_file), spaced ones orjson's, JSON Lines the streaming reader."""
    tmp = tmp_path_factory.mktemp("gen")
    path = tmp / ("in.jsonl" if framing == "lines" else "in.json.gz")
    if framing == "lines":
        path.write_bytes(b"\n".join(json.dumps(r).encode("utf-8", "surrogatepass") for r in records))
    else:
        separators = (",", ":") if framing == "compact" else (", ", ": ")
        text = json.dumps({"Records": records}, separators=separators).encode("utf-8", "surrogatepass")
        path.write_bytes(gzip.compress(text, mtime=0))
    _same_import([path], tmp, skip_invalid=skip_invalid, segment_size=2)


def _bench_files(count: int, tmp: Path, per_file: int) -> list[Path]:
    """Files as ``make bench`` writes them: the fixture records in turn, with fresh ids, compact."""
    records = [r for path in sorted((SAMPLES / "cloudtrail" / "logs").glob("*.json.gz")) for r in _read(path)]
    files = []
    for start in range(0, count, per_file):
        batch = [
            {**records[i % len(records)], "eventID": f"bench-{i:09d}", "requestID": f"req-{i:09d}"}
            for i in range(start, min(count, start + per_file))
        ]
        files.append(tmp / f"bench_{start // per_file:06d}.json.gz")
        files[-1].write_bytes(gzip.compress(orjson.dumps({"Records": batch}), mtime=0))
    return files


def _whole_file_answers(fast: Any, path: Path) -> tuple[Any, ...] | None:
    answer = fast.whole_file(path, record_keys("Records"))
    return None if answer is None else tuple(answer)


def _record_answers(fast: Any, path: Path) -> tuple[Any, ...] | None:
    """What the record path's answers add up to, as :class:`~audit.importers.base.FileEvents` holds it."""
    answers = [fast(raw) for raw in iter_records(path, "Records")]
    if any(answer is None for answer in answers):
        return None
    events = [item for answer in answers for item in answer if not isinstance(item, OutOfScope)]
    reasons = Counter(item.reason for answer in answers for item in answer if isinstance(item, OutOfScope))
    kinds = Counter(kind for event in events for kind in event.unresolved)
    return (len(answers), [e.data for e in events], [e.event_id for e in events], dict(kinds), dict(reasons))


def test_whole_file_answers_are_the_record_answers(tmp_path: Path) -> None:
    """The typed read of a file gives what the record path gives each record, or nothing (then each record is read)."""
    assert CLOUDTRAIL.fast is not None
    bench = _bench_files(3_000, tmp_path, per_file=1_000)
    taken = events = 0
    for path in _files() + bench:
        typed = _whole_file_answers(CLOUDTRAIL.fast(_enrichment()), path)
        if typed is not None:
            taken += 1
            assert typed == _record_answers(CLOUDTRAIL.fast(_enrichment()), path), path
            events += len(typed[1])
    assert taken >= 3 + len(sorted((SAMPLES / "cloudtrail" / "logs").glob("*.json.gz"))) and events > 2_000


def test_encoded_events_are_the_converted_events_canonical_bytes() -> None:
    """encode_files (fast path where it answers) equals convert_files then canonical_bytes, for every source."""
    sources = {
        "cloudtrail": _files(),
        "oci-audit": sorted((SAMPLES / "oci-audit").glob("*.json*")),
        "gcp-access-transparency": sorted((SAMPLES / "gcp-access-transparency").glob("*.jsonl")),
        "ocsf": sorted((SAMPLES / "ocsf").glob("*.jsonl")),
    }
    for name, files in sources.items():
        stats, general_stats = ImportStats(), ImportStats()
        encoded = list(encode_files(SOURCES[name], files, _enrichment(), stats, skip_invalid=True))
        converted = list(convert_files(SOURCES[name], files, _enrichment(), general_stats, skip_invalid=True))
        assert encoded == [(canonical_bytes(e), e.event_id) for e in converted], name
        assert stats == general_stats, name


def test_memos_hold_a_bounded_number_of_bytes() -> None:
    """Keys come from untrusted records: identities of 1 MiB each do not pile up past the budget."""
    assert CLOUDTRAIL.fast is not None
    base = _read(sorted((SAMPLES / "cloudtrail" / "logs").glob("*.json.gz"))[0])[0]
    enrichment = _enrichment()
    fast = CLOUDTRAIL.fast(enrichment)
    for number in range(20):
        identity = {**base["userIdentity"], "padding": f"{number:04d}" + "x" * (1 << 20)}
        arn = f"arn:aws:s3:::bucket-{number}/" + "k" * (1 << 20)
        record = {**base, "userIdentity": identity, "resources": [{"ARN": arn}], "requestParameters": None}
        answer = fast(RawRecord(Path("big.json"), number + 1, 1, record))
        assert isinstance(fast, cloudtrail_fast.CloudTrailFast)
        assert answer is not None and len(answer) == 1
        for memo in (fast._actors, fast._resources, enrichment._resources):
            assert memo.size <= MEMO_BYTES and len(memo) <= 8


def test_typed_read_memos_hold_a_bounded_number_of_bytes(tmp_path: Path) -> None:
    """The same for the memos the typed read keys by JSON text (identities and resources of 1 MiB)."""
    assert CLOUDTRAIL.fast is not None
    base = _read(sorted((SAMPLES / "cloudtrail" / "logs").glob("*.json.gz"))[0])[0]
    enrichment = _enrichment()
    fast = CLOUDTRAIL.fast(enrichment)
    assert isinstance(fast, cloudtrail_fast.CloudTrailFast)
    for number in range(20):
        identity = {**base["userIdentity"], "padding": f"{number:04d}" + "x" * (1 << 20)}
        arn = f"arn:aws:s3:::bucket-{number}/" + "k" * (1 << 20)
        record = {**base, "userIdentity": identity, "resources": [{"ARN": arn}], "requestParameters": None}
        path = tmp_path / f"big-{number}.json.gz"
        path.write_bytes(gzip.compress(orjson.dumps({"Records": [record]})))
        answer = fast.whole_file(path, record_keys("Records"))
        assert answer is not None and answer.records == 1 and len(answer.data) == 1
        for memo in (fast._raw_actors, fast._raw_resolved, fast._named, fast._resources, enrichment._resources):
            assert memo.size <= MEMO_BYTES and len(memo) <= 8
