"""The replay fast path agrees with the full pydantic + engine path."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from audit import models
from audit.errors import InputError
from audit.logs.approvals import load_approvals
from audit.models import AccessEvent, Finding, LogPosition
from audit.policy import load_policy
from audit.records import parse_json_line, validate
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
from tests.conftest import FIXTURES, POLICIES

LINES = (FIXTURES / "events.jsonl").read_bytes().splitlines()

MIRRORS: list[tuple[type[msgspec.Struct], type[BaseModel]]] = [
    (FastEvent, models.AccessEvent),
    (FastActor, models.Actor),
    (FastResource, models.Resource),
    (FastRecipient, models.Recipient),
    (FastLegalBasis, models.LegalBasis),
]


@pytest.mark.parametrize(("fast", "model"), MIRRORS)
def test_mirror_has_the_same_fields_and_defaults(fast: type[msgspec.Struct], model: type[BaseModel]) -> None:
    fast_fields = {f.name: f for f in msgspec.structs.fields(fast)}
    model_fields = dict(model.model_fields)
    model_fields.pop("source_record", None)  # imported events take the full path
    assert set(fast_fields) == set(model_fields)
    for name, info in model_fields.items():
        required = info.is_required()
        assert (fast_fields[name].required) == required, name
        if not required:
            assert fast_fields[name].default == info.default, name


def test_every_fixture_event_decodes_to_the_same_model() -> None:
    for raw in LINES:
        fast = decode(raw)
        assert AccessEvent.model_validate(msgspec.to_builtins(fast)) == AccessEvent.model_validate_json(raw)


def _mutations(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(draw(st.sampled_from(LINES)))
    target = record
    path = draw(st.sampled_from(["", "actor", "resource"]))
    if path:
        target = record[path]
    key = draw(st.sampled_from(sorted(target)))
    op = draw(st.sampled_from(["drop", "null", "int", "empty", "extra", "naive-time", "bool-str"]))
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
    else:
        record["break_glass"] = "true"
    return record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.composite(_mutations)())
def test_fast_decoder_never_accepts_what_pydantic_rejects(record: dict[str, Any]) -> None:
    raw = orjson.dumps(record)
    try:
        fast = decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return  # the fast path hands such lines to pydantic, which decides
    if event_time(fast.time) is None or needs_full_path(fast):
        return  # the fast path hands these to pydantic too
    try:
        expected = AccessEvent.model_validate_json(raw)
    except ValidationError:
        pytest.fail(f"fast decoder accepted a record pydantic rejects: {record}")
    assert AccessEvent.model_validate(msgspec.to_builtins(fast)) == expected


def _full(lines: list[bytes]) -> list[Finding]:
    policy = load_policy(POLICIES)
    engine = ReplayEngine(policy, load_approvals(FIXTURES / "approvals.jsonl", None), load_rules())
    events = (
        (AccessEvent.model_validate_json(raw), LogPosition(segment="s", line=n)) for n, raw in enumerate(lines, start=1)
    )
    return list(engine.replay(events))


def _fast(lines: list[bytes]) -> tuple[list[Finding], int]:
    policy = load_policy(POLICIES)
    approvals = load_approvals(FIXTURES / "approvals.jsonl", None)
    fast = FastReplay.for_policy(policy, approvals)
    found = fast.evaluate_segment(lines, "s", Path("s"))
    return found + fast.engine.finish(), fast.fast_hits


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_fast_and_full_paths_find_the_same(seed: int | None) -> None:
    lines = list(LINES)
    if seed is not None:
        random.Random(seed).shuffle(lines)
    fast, hits = _fast(lines)
    assert fast == _full(lines)
    assert hits > len(lines) // 2  # the cache really is used


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
    fast, hits = _fast(lines)
    assert fast == _full(lines)
    assert {f.event_ids[0] for f in fast} == {"rounded-in"}
    assert hits == 1  # the cache is in use: the second in-window event took the first one's verdict


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


@pytest.mark.parametrize("field", ["office_country", "physical_country"])
def test_country_code_with_a_trailing_newline_is_refused_by_the_fast_decoder(field: str) -> None:
    """Regression: msgspec's ``pattern`` is a ``re.search``, and ``$`` matches before a final newline.

    ``"US\\n"`` (canonical JSON ``"US\\\\n"``) decoded on the fast path while pydantic
    refuses it; the verdict key holds the code as written, so it never met a cached
    verdict, but the mirror must not accept what the model refuses.
    """
    body = orjson.loads(_us_read("nl", "2021-10-10T10:00:00Z"))
    body["actor"][field] = "US\n"
    raw = orjson.dumps(body)
    with pytest.raises(ValidationError):
        AccessEvent.model_validate_json(raw)
    with pytest.raises(msgspec.ValidationError):
        decode(raw)


@settings(max_examples=400, deadline=None)
@given(
    st.from_regex(TIME_FORM, fullmatch=True)
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.text(alphabet="0123456789-:.TZ+ tWz", max_size=40)
)
def test_event_time_agrees_with_pydantic(text: str) -> None:
    """Every time the fast path parses itself, pydantic parses to the same instant (and to an aware time)."""
    parsed = event_time(text)
    if parsed is None:
        return  # the full path decides
    assert parsed.tzinfo is not None
    expected = TypeAdapter(models.UtcDatetime).validate_python(text)
    assert parsed == expected


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
