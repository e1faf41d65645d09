"""The replay fast path agrees with the full pydantic + engine path."""

from __future__ import annotations

import contextlib
import random
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import hypothesis
import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

import audit.replay.fast as fast_module
from audit import models
from audit.errors import InputError
from audit.logs.approvals import ApprovalSet, load_approvals
from audit.models import AccessEvent, Finding, LogPosition
from audit.policy import PolicyHistory, load_policy
from audit.records import parse_json_line, validate
from audit.replay.emit import stamps
from audit.replay.engine import ReplayEngine
from audit.replay.fast import (
    TIME_FORM,
    FastActor,
    FastEvent,
    FastLegalBasis,
    FastRecipient,
    FastReplay,
    FastResource,
    decode,
    event_time,
    needs_full_path,
)
from audit.replay.rules import load_rules
from audit.report.findings import EncodedFinding
from tests.conftest import FIXTURES, POLICIES

LINES = (FIXTURES / "events.jsonl").read_bytes().splitlines()

MIRRORS: list[tuple[type[msgspec.Struct], type[BaseModel]]] = [
    (FastEvent, models.AccessEvent),
    (FastActor, models.Actor),
    (FastResource, models.Resource),
    (FastRecipient, models.Recipient),
    (FastLegalBasis, models.LegalBasis),
]


_SAMPLES: dict[type[msgspec.Struct], Any] = {
    FastEvent: lambda: orjson.loads(LINES[0]),
    FastActor: lambda: orjson.loads(LINES[0])["actor"],
    FastResource: lambda: orjson.loads(LINES[0])["resource"],
}
"""A valid record of each mirror with a field whose default is supplied by a property."""


@pytest.mark.parametrize(("fast", "model"), MIRRORS)
def test_mirror_has_the_same_fields_and_defaults(fast: type[msgspec.Struct], model: type[BaseModel]) -> None:
    fast_fields = {f.encode_name: f for f in msgspec.structs.fields(fast)}
    model_fields = dict(model.model_fields)
    model_fields.pop("source_record", None)  # imported events take the full path
    assert set(fast_fields) == set(model_fields)
    assert list(fast_fields) == sorted(fast_fields)  # the order RFC 8785 writes them: see canonical_event
    for name, info in model_fields.items():
        required = info.is_required()
        field = fast_fields[name]
        assert field.required == required, name
        if required:
            continue
        if field.default is msgspec.UNSET:  # kept as given; the property supplies the model's default
            assert field.name == f"{name}_", name
            sample = _SAMPLES[fast]()
            sample.pop(name, None)  # what the property reads for an absent key
            assert getattr(msgspec.convert(sample, fast), name) == info.default, name
        else:
            assert field.default is None is info.default, name


def test_every_fixture_event_decodes_to_the_same_model() -> None:
    for raw in LINES:
        fast = decode(raw)
        assert AccessEvent.model_validate(msgspec.to_builtins(fast)) == AccessEvent.model_validate_json(raw)


_STRANGE_TEXT = [
    "",
    " ",
    "US\n",
    "\nUS",
    "us",
    "Us",
    "\x00",
    "US\x00",
    "\u00a0",
    "\u3000",
    "\u00e9",
    "\U0001f600",
    "\uff35\uff33",  # full-width US
    "u\u017f",  # "u\u017f".upper() == "US"
    "x" * 5000,
    "NAM",
    "EU",
    "ZZ",
    "ABCDEFGHI",
]
"""Strings where msgspec's constraints and pydantic's validators could part: whitespace,
newlines, NUL, non-ASCII letters and digits, case, length, region and unknown codes."""

_STRANGE_TIMES = [
    "2021-10-10T10:00:00",
    "2021-10-10T10:00:00+00:60",
    "2021-10-10T10:00:00-05:99",
    "2021-10-10T10:00:00+24:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+00:01",
    "0001-01-01T00:00:00Z",
    "2021-10-10T10:00:00.9999996Z",
    "2021-10-10T10:00:00.1234567890Z",
    "2021-10-10T23:59:60Z",
    "2021-10-10T24:00:00Z",
    "2021-02-29T10:00:00Z",
    "2021-10-10t10:00:00z",
    "2021-10-10 10:00:00Z",
    "2021-10-10T10:00Z",
    "2021-10-10T10:00:00+0100",
    "2021-10-10T10:00:00,5Z",
    "2021-10-10T10:00:00.Z",
    "2021-10-10T10:00:00Z\n",
]

_APPROVAL_IDS: list[Any] = [[], ["A"], ["A", "A"], ["", "A"], ["A", " "], "A", [7], [None], None, {}]
_BOOLS: list[Any] = [True, False, 0, 1, "true", "false", None, [], 1.0]


def _mutations(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(draw(st.sampled_from(LINES)))
    record.setdefault("recipient", None)
    path = draw(st.sampled_from(["", "actor", "resource", "recipient", "legal_basis"]))
    target = record
    if path:
        if not isinstance(record.get(path), dict):
            record[path] = (
                {"kind": "vendor", "id": "v-1"} if path == "recipient" else {"kind": "subpoena", "reference": "r"}
            )
        target = record[path]
    key = draw(st.sampled_from(sorted(target)))
    op = draw(
        st.sampled_from(
            [
                "drop",
                "null",
                "int",
                "empty",
                "extra",
                "naive-time",
                "bool-str",
                "text",
                "newline",
                "time",
                "ids",
                "bool",
            ]
        )
    )
    if op == "drop":
        del target[key]
    elif op == "null":
        target[key] = None
    elif op == "int":
        target[key] = 7
    elif op == "empty":
        target[key] = ""
    elif op == "extra":
        target["unexpected"] = "x"
    elif op == "naive-time":
        record["time"] = "2021-10-10T10:00:00"
    elif op == "bool-str":
        record["break_glass"] = "true"
    elif op == "text":
        target[key] = draw(st.sampled_from(_STRANGE_TEXT))
    elif op == "newline":
        target[key] = f"{target[key]}\n" if isinstance(target[key], str) else target[key]
    elif op == "time":
        record["time"] = draw(st.sampled_from(_STRANGE_TIMES))
    elif op == "ids":
        record["approval_ids"] = draw(st.sampled_from(_APPROVAL_IDS))
    else:
        record["break_glass"] = draw(st.sampled_from(_BOOLS))
    return record


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.composite(_mutations)())
def test_fast_decoder_never_accepts_what_pydantic_rejects(record: dict[str, Any]) -> None:
    raw = orjson.dumps(record)
    try:
        fast = decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return  # the fast path hands such lines to pydantic, which decides
    time = event_time(fast.time)
    if time is None or needs_full_path(fast):
        return  # the fast path hands these to pydantic too
    try:  # as the full path validates a line
        expected = AccessEvent.model_validate(orjson.loads(raw))
    except ValidationError:
        pytest.fail(f"fast decoder accepted a record pydantic rejects: {record}")
    assert AccessEvent.model_validate(msgspec.to_builtins(fast)) == expected
    assert time == expected.time


def _full(lines: list[bytes]) -> list[Finding]:
    policy = load_policy(POLICIES)
    engine = ReplayEngine(policy, load_approvals(FIXTURES / "approvals.jsonl", None), load_rules())
    events = (
        (AccessEvent.model_validate_json(raw), LogPosition(segment="s", line=n)) for n, raw in enumerate(lines, start=1)
    )
    return list(engine.replay(events))


def _fast(lines: list[bytes]) -> tuple[list[Finding], FastReplay]:
    policy = load_policy(POLICIES)
    approvals = load_approvals(FIXTURES / "approvals.jsonl", None)
    fast = FastReplay.for_policy(policy, approvals)
    found = fast.evaluate_segment(lines, "s", Path("s"))
    return found + list(fast.engine.finish()), fast


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_fast_and_full_paths_find_the_same(seed: int | None) -> None:
    lines = list(LINES)
    if seed is not None:
        random.Random(seed).shuffle(lines)
    found, fast = _fast(lines)
    assert found == _full(lines)
    assert fast.fast_hits > len(lines) // 2  # the cache really is used
    assert fast.planned >= 10  # and so are plans, for events with findings (70 findings in all)


# ------------------------------------------------- generated logs: both paths, every dimension

_RULES = load_rules()


def _approval(approval_id: str, **fields: Any) -> models.Approval:
    body: dict[str, Any] = {
        "approval_id": approval_id,
        "requester": "u1",
        "approvers": [
            {"id": "sec-1", "team": "us-data-security", "country": "US", "approved_at": "2021-10-31T22:00:00Z"}
        ],
        "scope": {"datasets": ["us-videos"], "categories": ["public_video", "health_inferred"], "actions": ["*"]},
        "not_before": "2021-11-01T00:00:00.5Z",
        "not_after": "2021-12-31T23:59:59.999999Z",
    }
    body.update(fields)
    return models.Approval.model_validate(body)


_GENERATED_APPROVALS = ApprovalSet(
    {
        a.approval_id: a
        for a in (
            _approval("A-WIN"),
            _approval(
                "A-RID",
                scope={"datasets": ["*"], "categories": ["*"], "actions": ["read"], "resource_ids": ["r1"]},
            ),
            _approval("A-REV", revoked_at="2021-11-15T12:00:00.25Z"),
            _approval(
                "A-THR",
                threshold=2,
                approvers=[
                    {"id": "sec-1", "team": "us-data-security", "country": "US", "approved_at": "2021-11-01T00:00:00Z"},
                    {
                        "id": "sec-2",
                        "team": "us-data-security",
                        "country": "US",
                        "approved_at": "2021-11-20T06:00:00.75Z",
                    },
                    {"id": "sec-2", "team": "us-data-security", "country": "US", "approved_at": "2021-11-02T00:00:00Z"},
                ],
            ),
            _approval(
                "A-BG",
                break_glass=True,
                review={"reviewer": "sec-3", "team": "us-data-security", "reviewed_at": "2021-12-02T00:00:00Z"},
            ),
            _approval(
                "A-OUT",
                approvers=[{"id": "m-1", "team": "cn-ops", "country": "CN", "approved_at": "2021-10-31T22:00:00Z"}],
            ),
        )
    },
    Path("generated-approvals.jsonl"),
    signature_verified=False,
    digest="generated",
)

_ANCHORS = [
    datetime(2021, 11, 1, 0, 0, 0, 500000, tzinfo=UTC),  # A-* not_before
    datetime(2021, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # not_after
    datetime(2021, 11, 15, 12, 0, 0, 250000, tzinfo=UTC),  # A-REV revoked_at
    datetime(2021, 11, 20, 6, 0, 0, 750000, tzinfo=UTC),  # A-THR's second sign-off
    datetime(2021, 11, 15, tzinfo=UTC),  # the second policy version
    datetime(2021, 11, 20, tzinfo=UTC),  # its Singapore deadline
    datetime(2021, 12, 1, tzinfo=UTC),  # the first version's Singapore deadline
    datetime(2022, 1, 15, tzinfo=UTC),  # own data centres' phase-out
    datetime(2021, 12, 10, 8, 30, tzinfo=UTC),
]
_NANOSECONDS = [-(10**9), -1000, -600, -500, -400, -1, 0, 1, 400, 999, 1000, 10**9, 3_600 * 10**9]
_OFFSETS = [None, 0, -120, 330, -60, 840, -(23 * 60 + 59), 23 * 60 + 59]  # minutes; None: "Z"


def _render(at: datetime, nanoseconds: int, offset: int | None) -> str:
    """``at`` plus ``nanoseconds`` as RFC 3339 text at ``offset`` minutes (fraction to the nanosecond)."""
    total = at.microsecond * 1000 + nanoseconds
    moved = at.replace(microsecond=0) + timedelta(microseconds=total // 1000)
    local = moved.replace(microsecond=0).astimezone(timezone(timedelta(minutes=offset or 0)))
    fraction = f"{moved.microsecond:06d}{total % 1000:03d}".rstrip("0")
    suffix = "Z" if offset is None else local.isoformat()[19:]
    return local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + suffix


_TIMES = st.builds(_render, st.sampled_from(_ANCHORS), st.sampled_from(_NANOSECONDS), st.sampled_from(_OFFSETS))


def _bad_minutes(text: str, minutes: str) -> str:
    return text[:-1] + f"+00:{minutes}" if text.endswith("Z") else text[:-2] + minutes


_REFUSED_TIMES = st.sampled_from(_STRANGE_TIMES) | st.builds(_bad_minutes, _TIMES, st.sampled_from(["60", "75", "99"]))
"""Times the full path refuses (or that are not RFC 3339), some of them a moment from an anchor."""
_COUNTRIES = st.sampled_from([None, "US", "CN", "SG", "NAM", "EU", "GB"])
_RESOURCES = st.sampled_from(
    [
        ("oci", "us-ashburn-1", "primary"),
        ("oci", "US-Ashburn-1", "primary"),
        ("oci", "ap-singapore-1", "backup"),
        ("oci", "ap-singapore-1", "primary"),
        ("own_dc", "singapore", "backup"),
        ("own_dc", "dc-1", "primary"),
        ("aws", "us-east-1", "replica"),
    ]
)


@st.composite
def _generated_event(draw: st.DrawFn) -> dict[str, Any]:
    provider, region, store_kind = draw(_RESOURCES)
    body: dict[str, Any] = {
        "event_id": "e",
        "time": draw(_TIMES) if draw(st.integers(0, 29)) else draw(_REFUSED_TIMES),
        "action": draw(st.sampled_from(["read", "query", "export", "disclose", "write"])),
        "actor": {
            "id": draw(st.sampled_from(["u1", "u2"])),
            "kind": draw(st.sampled_from(["employee", "contractor", "vendor", "service"])),
            "office_country": draw(_COUNTRIES),
            "physical_country": draw(_COUNTRIES),
            "team": draw(st.sampled_from([None, "t", "\u0000"])),
        },
        "resource": {
            "id": draw(st.sampled_from(["r1", "r2"])),
            "dataset": draw(st.sampled_from(["us-videos", "us-health-signals"])),
            "category": draw(st.sampled_from(["public_video", "health_inferred", "Public_Video", "mystery"])),
            "store": draw(st.sampled_from(["s1", "s2"])),
            "provider": provider,
            "region": region,
            "store_kind": store_kind,
        },
        "approval_ids": draw(
            st.lists(st.sampled_from(["A-WIN", "A-RID", "A-REV", "A-THR", "A-BG", "A-OUT", "A-NONE"]), max_size=3)
        ),
        "justification": draw(st.sampled_from([None, "", " ", "\u3000", "\u00a0", "\u0000", "ticket 7"])),
        "break_glass": draw(st.booleans()),
    }
    if draw(st.booleans()) or (body["action"] == "disclose" and draw(st.integers(0, 9))):
        body["recipient"] = {
            "kind": draw(st.sampled_from(["vendor", "advertiser", "government", "law_enforcement", "employee"])),
            "id": draw(st.sampled_from(["x-1", "u2"])),
            "country": draw(_COUNTRIES),
        }
    if draw(st.booleans()):
        body["legal_basis"] = {
            "kind": draw(st.sampled_from(["subpoena", "court_order", "standard_contractual_clauses"])),
            "reference": "ref",
        }
    if draw(st.integers(0, 9)) == 0:
        body["on_behalf_of"] = draw(st.sampled_from(["u1", "u2", ""]))
    style = draw(st.sampled_from(["any", "home", "approved"]))
    if style != "any":  # shapes that can be clean, so verdicts are cached and reused
        country = "US" if style == "home" else draw(st.sampled_from(["CN", "SG"]))  # SG: home from v2 on
        body["actor"].update(kind="employee", id="u1", physical_country=country)
        body["action"] = draw(st.sampled_from(["read", "query"]))
        body["resource"].update(dataset="us-videos", category="public_video")
        provider, region, store_kind = draw(
            st.sampled_from([("oci", "us-ashburn-1", "primary"), ("oci", "ap-singapore-1", "backup")])
            if style == "approved"
            else st.sampled_from(
                [("oci", "us-ashburn-1", "primary"), ("oci", "ap-singapore-1", "backup"), ("own_dc", "dc-1", "primary")]
            )
        )
        body["resource"].update(provider=provider, region=region, store_kind=store_kind)
        for name in ("recipient", "legal_basis", "on_behalf_of"):
            body.pop(name, None)
        if style == "approved":
            body["approval_ids"] = draw(
                st.sampled_from([["A-WIN"], ["A-THR"], ["A-REV"], ["A-RID"], ["A-BG"], ["A-WIN", "A-WIN"], ["A-OUT"]])
            )
    if draw(st.integers(0, 29)) == 0:  # a strange string where the engine reads it or where it only names things
        where, key = draw(st.sampled_from([("actor", "physical_country"), ("resource", "region"), ("actor", "id")]))
        body[where][key] = draw(st.sampled_from(_STRANGE_TEXT))
    return {k: v for k, v in body.items() if v is not None}


@st.composite
def _generated_log(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A log of a few shapes repeated at many times, with what only names things (and the approval facts) varied."""
    shapes = draw(st.lists(_generated_event(), min_size=1, max_size=3))
    events: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 16))):
        body = orjson.loads(orjson.dumps(draw(st.sampled_from(shapes))))
        body["time"] = draw(_TIMES) if draw(st.integers(0, 39)) else draw(_REFUSED_TIMES)
        variations: list[tuple[str, str, list[Any]]] = [
            ("resource", "id", ["r1", "r2"]),
            ("resource", "store", ["s1", "s2"]),
            ("actor", "id", ["u1", "u2"]),
            ("actor", "employer", ["acme", "\u0000"]),
            ("", "justification", [" ", "\u2003", "ticket 9"]),
            ("", "break_glass", [True, False]),
            ("", "approval_ids", [[], ["A-BG", "A-BG"], ["A-RID", "A-WIN"], ["A-WIN", "A-RID"], ["A-THR"]]),
            ("", "source_system", ["gw", ""]),
        ]
        for where, key, values in variations:
            if draw(st.integers(0, 5)) == 0:
                (body[where] if where else body)[key] = draw(st.sampled_from(values))
        events.append(body)
    return events


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> PolicyHistory:
    """The shipped pack, and from 2021-11-15 a version where Singapore is home and its backups are due 2021-11-20."""
    root = tmp_path_factory.mktemp("versions")
    shutil.copytree(POLICIES, root / "v1", ignore=shutil.ignore_patterns("tests"))
    shutil.copytree(POLICIES, root / "v2", ignore=shutil.ignore_patterns("tests"))
    config = root / "v2" / "pack.yaml"
    text = config.read_text()
    for old, new in [
        ("name: tiktok-us-data-2022", "name: v2"),
        ("effective_from: 2021-01-01", "effective_from: 2021-11-15"),
        ("countries: [US]", "countries: [US, SG]"),
        ("deadline: 2021-12-01", "deadline: 2021-11-20"),
    ]:
        assert old in text
        text = text.replace(old, new)
    config.write_text(text)
    return load_policy(root)


Outcome = tuple[str, int | None] | list[EncodedFinding]
"""Where a replay stopped (segment, line), or every finding it made, as the spool takes them."""


def _segments(lines: list[bytes], split: int) -> list[tuple[str, list[bytes]]]:
    return [("s1", lines[:split]), ("s2", lines[split:])]


def _replay_full(policy: PolicyHistory, lines: list[bytes], split: int) -> tuple[Outcome, ReplayEngine]:
    """Every line through pydantic and the engine, as the full path validates it."""
    engine = ReplayEngine(policy, _GENERATED_APPROVALS, _RULES)
    found: list[EncodedFinding] = []
    for name, segment in _segments(lines, split):
        for number, raw in enumerate(segment, start=1):
            try:
                event = validate(AccessEvent, parse_json_line(raw, path=name, line=number), path=name, line=number)
            except InputError as exc:
                return (str(exc.path), exc.line), engine
            found += engine.evaluate_encoded(event, LogPosition(segment=name, line=number))[0]
    return found + list(engine.finish_encoded()), engine


def _replay_fast(policy: PolicyHistory, lines: list[bytes], split: int) -> tuple[Outcome, FastReplay]:
    fast = FastReplay(ReplayEngine(policy, _GENERATED_APPROVALS, _RULES), policy, _GENERATED_APPROVALS)
    found: list[EncodedFinding] = []
    for name, segment in _segments(lines, split):
        try:
            found += fast.encoded_segment(segment, name, Path(name))
        except InputError as exc:
            return (str(exc.path), exc.line), fast
    return found + list(fast.engine.finish_encoded()), fast


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_generated_log(), data=st.data())
def test_fast_and_full_paths_agree_on_generated_logs(
    two_versions: PolicyHistory, events: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Logs over every dimension the verdict key spans, where keys repeat so cached verdicts are reused.

    Times at each approval bound, sign-off, deadline and the policy version's first day,
    a few nanoseconds either side, at offsets from -23:59 to +23:59 (and times the full path
    refuses); approvals cited twice, unknown, out of scope by resource id, revoked, under
    threshold, break-glass with blank justifications; recipients, legal bases, proxies;
    two segments sharing one cache. Findings (their bytes, planned ones too), the first
    refused line, counts, the period, policy versions and every actor's whereabouts
    must be the same on both paths.
    """
    lines = [
        orjson.dumps(dict(event, event_id=f"e-{n}"), option=orjson.OPT_SORT_KEYS) for n, event in enumerate(events)
    ]
    split = data.draw(st.integers(0, len(lines)), label="split")
    full, engine = _replay_full(two_versions, lines, split)
    fast, replay = _replay_fast(two_versions, lines, split)
    assert fast == full  # the same lines, byte for byte, and the same sort keys
    hypothesis.event(f"cache hits: {min(replay.fast_hits, 3)}+")
    hypothesis.event(f"planned: {min(replay.planned, 3)}+")
    if not isinstance(full, list):
        hypothesis.event("refused a line")
        return  # stopped at the same line: no report
    hypothesis.event(f"findings: {min(len(full), 3)}+")
    ours, theirs = replay.engine.stats, engine.stats
    assert (ours.events, ours.by_rule, ours.policy_versions) == (theirs.events, theirs.by_rule, theirs.policy_versions)
    assert (ours.first_event, ours.last_event) == (theirs.first_event, theirs.last_event)
    for event in events:
        at = AccessEvent.model_validate(dict(event, event_id="x")).time
        for actor in ("u1", "u2", event["actor"]["id"]):
            assert replay.engine.whereabouts.at(actor, at) == engine.whereabouts.at(actor, at)


def test_deadlines_are_judged_on_the_utc_date_on_both_paths() -> None:
    def sg_read(eid: str, time: str) -> bytes:
        body = orjson.loads(LINES[0])
        body.update(event_id=eid, time=time, approval_ids=[], action="read")
        body["actor"] = {"id": "us-x", "office_country": "US", "physical_country": "US"}
        body["resource"] = {
            "id": "r",
            "dataset": "us-videos",
            "category": "public_video",
            "store": "sg-backup-01",
            "provider": "own_dc",
            "region": "singapore",
            "store_kind": "backup",
        }
        return orjson.dumps(body)

    # Same local date; the second is already 2021-12-01 (the deadline) in UTC.
    lines = [sg_read("before", "2021-11-30T10:00:00Z"), sg_read("after", "2021-11-30T23:30:00-02:00")]
    fast, _ = _fast(lines)
    assert fast == _full(lines)
    assert [f.event_ids[0] for f in fast if f.rule_id == "singapore-backup-after-deadline"] == ["after"]


def _at(time: str, eid: str) -> bytes:
    body = orjson.loads(next(line for line in LINES if b'"approval_ids":["A-cn-eng-10-202109"]' in line))
    body.update(event_id=eid, time=time)
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def test_time_rounded_into_an_approval_window_is_not_judged_clean() -> None:
    """Regression: msgspec rounds a fraction past microseconds, pydantic truncates it.

    0.4 µs before the approval's ``not_before`` (2021-09-01T00:00:00Z), msgspec read
    the time as inside the window, so the event took the cached clean verdict of an
    in-window event of the same shape; the full path finds the approval not yet valid.
    """
    lines = [
        _at("2021-09-01T04:21:37Z", "in-window"),
        _at("2021-08-31T23:59:59.9999996Z", "rounded-in"),
        _at("2021-09-01T05:00:00Z", "in-window-again"),
    ]
    fast, replay = _fast(lines)
    assert fast == _full(lines)
    assert {f.event_ids[0] for f in fast} == {"rounded-in"}
    assert replay.fast_hits == 1  # the cache is in use: the second in-window event took the first one's verdict


def _us_read(eid: str, time: str) -> bytes:
    """A US employee reading public video in an approved US store: clean, and one verdict key per deadline span."""
    body = {
        "event_id": eid,
        "time": time,
        "action": "read",
        "actor": {"id": "us-x", "kind": "employee", "office_country": "US", "physical_country": "US"},
        "resource": {
            "id": "r",
            "dataset": "us-videos",
            "category": "public_video",
            "store": "oci-us-ashburn",
            "provider": "oci",
            "region": "us-ashburn-1",
            "store_kind": "primary",
        },
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _full_path_error(lines: list[bytes]) -> InputError:
    """The error the full path (pydantic, as replay validates a line) raises for the first line it refuses."""
    for number, raw in enumerate(lines, start=1):
        try:
            validate(AccessEvent, parse_json_line(raw, path="s", line=number), path="s", line=number)
        except InputError as exc:
            return exc
    pytest.fail("the full path accepted every line")


def test_offset_minutes_past_59_are_not_judged_clean() -> None:
    """Regression: ``datetime.fromisoformat`` reads an offset of ``+00:60`` as ``+01:00``; pydantic refuses it.

    The fast path parsed the time itself, so the line took the cached clean verdict of
    an earlier event of the same shape and the replay passed; the full path stops at
    it with an input error (the time is not a valid RFC 3339 time).
    """
    lines = [_us_read("clean", "2021-10-10T10:00:00Z"), _us_read("bad-offset", "2021-10-10T11:00:00+00:60")]
    assert _full_path_error(lines).line == 2
    with pytest.raises(InputError, match="time") as caught:
        _fast(lines)
    assert caught.value.line == 2
    assert event_time("2021-10-10T11:00:00+05:99") is None


@pytest.mark.parametrize("time", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:01"])
def test_time_beyond_the_utc_calendar_is_not_judged_clean(time: str) -> None:
    """Regression: a time whose UTC form falls outside years 1..9999 passed the fast path.

    ``datetime.fromisoformat`` accepts ``9999-12-31T23:59:59-01:00``; converting it to
    UTC overflows. The fast path never converts, so the line took the cached clean
    verdict of an earlier event of the same shape; pydantic's UTC conversion raised a
    bare ``OverflowError`` (an internal error, exit 4) instead of refusing the line.
    Both paths now refuse it as an input error at its line.
    """
    base = "2023-10-10T10:00:00Z" if time.startswith("9999") else "2020-10-10T10:00:00Z"
    lines = [_us_read("clean", base), _us_read("overflow", time)]
    with pytest.raises(InputError, match="time") as caught:
        _fast(lines)
    assert caught.value.line == 2
    assert _full_path_error(lines).line == 2
    with pytest.raises(ValidationError, match="outside years 1 to 9999"):
        TypeAdapter(models.UtcDatetime).validate_python(time)  # approvals' times too


@pytest.mark.parametrize("code", ["US\n", "us", "U1", "ZZ", "ABCDEFGHI", "\uff35\uff33"])
@pytest.mark.parametrize("field", ["office_country", "physical_country"])
def test_country_code_the_model_refuses_is_refused_after_a_cached_verdict(field: str, code: str) -> None:
    """Regression: a country the model refuses must never take a cached verdict.

    msgspec once checked the code's shape with a ``pattern`` (a ``re.search``, where
    ``$`` matched before a final newline, so ``"US\n"`` decoded); it no longer checks
    it at all. The code is a verdict-key fact, so such a line has a key no cached
    verdict can have: it takes the full path, which refuses it at its line, even
    right after a clean event that differs only in that code.
    """
    body = orjson.loads(_us_read("refused", "2021-10-10T11:00:00Z"))
    body["actor"][field] = code
    lines = [_us_read("clean", "2021-10-10T10:00:00Z"), orjson.dumps(body, option=orjson.OPT_SORT_KEYS)]
    assert _full_path_error(lines).line == 2
    assert needs_full_path(decode(lines[1]))
    with pytest.raises(InputError) as caught:
        _fast(lines)
    assert caught.value.line == 2


def _time_text(parts: tuple[int, int, int, int, int, int, str, str, int, int]) -> str:
    year, month, day, hour, minute, second, fraction, sign, off_hours, off_minutes = parts
    offset = "Z" if sign == "Z" else f"{sign}{off_hours:02d}:{off_minutes:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"


_TIMES_FIELD_BY_FIELD = st.tuples(
    st.sampled_from([1, 2, 1969, 2021, 2024, 9998, 9999]),
    st.integers(1, 12),
    st.integers(1, 31),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from(["", ".5", ".999999", ".9999995", ".9999999", ".000000001", ".123456789"]),
    st.sampled_from(["Z", "+", "-"]),
    st.integers(0, 24),
    st.integers(0, 99),
).map(_time_text)
"""Times with each field in or just past its range: most are real dates, so the offset,
the year's edges and the fraction are really exercised (random digits rarely make a real date)."""

_TIME_TEXTS = (
    st.from_regex(TIME_FORM, fullmatch=True)
    | _TIMES_FIELD_BY_FIELD
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.text(alphabet="0123456789-:.TZ+ tWz", max_size=40)
)
"""Times well formed and not: the fast path's own form, fields past their range, any zone, stray characters."""


@settings(max_examples=600, deadline=None)
@given(_TIME_TEXTS)
def test_event_time_agrees_with_pydantic(text: str) -> None:
    """Every time the fast path parses itself, pydantic parses to the same instant (and to an aware time)."""
    parsed = event_time(text)
    if parsed is None:
        return  # the full path decides
    assert parsed.tzinfo is not None
    expected = TypeAdapter(models.UtcDatetime).validate_python(text)
    assert parsed == expected


@pytest.fixture(scope="module")
def shared_replay() -> FastReplay:
    """One replay for many examples: each example's line first takes the full path, which caches its key."""
    return FastReplay.for_policy(load_policy(POLICIES), load_approvals(FIXTURES / "approvals.jsonl", None))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TIME_TEXTS)
def test_the_replay_loop_reads_a_time_as_event_time_does(shared_replay: FastReplay, text: str) -> None:
    """The loop inlines :func:`event_time` (a call per event costs 4-8% of a clean loop): the times it judges
    on the fast path are exactly those ``event_time`` parses, at the instant it parses them to."""
    fast = shared_replay
    line = _us_read("t", text)  # clean whenever the full path accepts its time
    try:
        first = fast.encoded_segment([line], "s", Path("s"))  # a miss: the full path judges, the key is cached
    except InputError:
        first = None
    stats = fast.engine.stats
    stats.first_event = stats.last_event = None
    before = fast.fast_hits + fast.planned
    with contextlib.suppress(InputError):
        fast.encoded_segment([line], "s", Path("s"))
    on_fast_path = fast.fast_hits + fast.planned > before
    parsed = event_time(text)
    assert on_fast_path == (parsed is not None and first == []), text
    if on_fast_path:
        assert stats.first_event == stats.last_event == parsed, text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(LINES), st.sampled_from(LINES))
def test_needs_full_path_reads_only_verdict_key_facts(donor: bytes, host: bytes) -> None:
    """Graft the key facts of one event onto another: ``needs_full_path`` follows the facts (ordering rule 2)."""
    a, b = orjson.loads(donor), orjson.loads(host)
    for name in ("action", "recipient", "legal_basis", "on_behalf_of"):
        b[name] = a.get(name)
    for name in ("kind", "office_country", "physical_country"):
        b["actor"][name] = a["actor"].get(name)
    assert needs_full_path(decode(orjson.dumps(b))) == needs_full_path(decode(donor))


def test_a_log_of_ever_new_shapes_does_not_grow_the_verdict_cache_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory attack: every event a new region, so every event a new verdict key; the cache stops at its bound."""
    monkeypatch.setattr(fast_module, "MAX_SHAPES", 5)
    lines = []
    for n in range(12):
        body = orjson.loads(LINES[0])
        body["event_id"] = f"shape-{n}"
        body["resource"]["region"] = f"region-{n}"
        lines.append(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    lines += lines[:3]  # shapes seen before: cached ones are hits again
    policy = load_policy(POLICIES)
    fast = FastReplay.for_policy(policy, load_approvals(FIXTURES / "approvals.jsonl", None))
    found = fast.evaluate_segment(lines, "s", Path("s")) + list(fast.engine.finish())
    assert len(fast._verdicts) == 5
    assert found == _full(lines)


@settings(max_examples=400, deadline=None)
@given(_TIMES | _TIMES_FIELD_BY_FIELD | st.sampled_from(["2021-10-10T10:00:00Z", "2021-10-10T10:00:00.000000Z"]))
def test_a_findings_times_cut_from_the_event_text_equal_the_formatted_ones(text: str) -> None:
    """The planned path cuts a plain UTC time's sort key and JSON time from the event's text (:func:`stamps`)."""
    at = event_time(text)
    if at is None:
        return
    assert stamps(at, text) == stamps(at)
    assert stamps(at)[0] == at.astimezone(UTC).isoformat(timespec="microseconds")


def _with_fresh_ids(lines: list[bytes], copies: int) -> list[bytes]:
    out = []
    for n in range(copies):
        for raw in lines:
            body = orjson.loads(raw)
            body["event_id"] = f"{body['event_id']}-copy-{n}"
            out.append(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return out


def test_proxy_events_are_planned_and_deferred_as_the_engine_defers_them() -> None:
    """Events naming ``on_behalf_of`` or handing data to an employee take a plan once their key is known:
    their proxy judgements are deferred with the event's own colleague, time and position, in the engine's order."""
    lines = _with_fresh_ids(LINES, 3)
    proxies = [
        n
        for n, raw in enumerate(lines, start=1)
        if (e := decode(raw)).on_behalf_of is not None or (e.recipient is not None and e.recipient.kind == "employee")
    ]
    assert len(proxies) >= 6
    policy, approvals = load_policy(POLICIES), load_approvals(FIXTURES / "approvals.jsonl", None)
    fast = FastReplay.for_policy(policy, approvals)
    planned_before = fast.planned
    found = fast.encoded_segment(lines, "s", Path("s"))
    assert fast.planned - planned_before >= len(proxies) // 2  # the copies of a proxy shape are planned
    engine = ReplayEngine(policy, approvals, load_rules())
    expected: list[EncodedFinding] = []
    for n, raw in enumerate(lines, start=1):
        expected += engine.evaluate_encoded(AccessEvent.model_validate_json(raw), LogPosition(segment="s", line=n))[0]
    assert found == expected

    def deferred(e: ReplayEngine) -> list[tuple[Any, ...]]:
        pending = list(e.drain().pending)
        return [
            (AccessEvent.model_validate_json(p.event_json), p.time, p.time.tzinfo, p.action, p.position, p.how)
            for p in pending
        ] + [(p.actor_class, p.colleague, p.stated_class) for p in pending]

    fast_pending, engine_pending = deferred(fast.engine), deferred(engine)
    assert len(fast_pending) >= len(proxies) and fast_pending == engine_pending
    again = FastReplay.for_policy(policy, approvals)
    again.encoded_segment(lines, "s", Path("s"))
    for n, raw in enumerate(lines, start=1):
        engine.evaluate_encoded(AccessEvent.model_validate_json(raw), LogPosition(segment="s", line=n))
    proxy_findings = list(again.engine.finish_encoded())
    assert proxy_findings and proxy_findings == list(engine.finish_encoded())
