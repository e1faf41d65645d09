"""Findings emitted as lines equal the canonical bytes of the Finding model built field by field."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audit.replay.fast as fast_module
from audit import models
from audit.logs.approvals import ApprovalSet, load_approvals
from audit.models import AccessEvent, Finding, LogPosition
from audit.policy import load_policy
from audit.replay.emit import Judgement, Outcome, decoded
from audit.replay.engine import ReplayEngine
from audit.replay.fast import _FULL, FastReplay, _Plan, decode
from audit.replay.rules import load_rules
from audit.report.findings import EncodedFinding, encode_finding
from tests.conftest import FIXTURES, POLICIES

LINES = (FIXTURES / "events.jsonl").read_bytes().splitlines()
POLICY = load_policy(POLICIES)
APPROVALS = load_approvals(FIXTURES / "approvals.jsonl", None)
RULES = load_rules()


def _model_finding(judgement: Judgement, outcome: Outcome, event: AccessEvent, position: LogPosition | None) -> Finding:
    """The finding as the engine built it before it emitted lines: a pydantic Finding, field by field."""
    row = outcome.decision.row
    meta = outcome.rule.metadata
    return Finding(
        rule_id=meta.id,
        commitment=outcome.decision.commitment,
        severity=meta.severity,
        title=meta.title,
        message=outcome.rule.explain(judgement.context(event, outcome, outcome.related)),
        remediation=meta.remediation,
        event_ids=(event.event_id,),
        approval_ids=(outcome.approval_id,) if outcome.approval_id else (),
        time=event.time,
        actor_id=event.actor.id,
        policy_row=row.ref() if row is not None else None,
        position=position,
        store=event.resource.store,
        region=event.resource.region,
        actor_country=event.actor.physical_country or event.actor.office_country,
    )


def _emitted_and_model(body: dict[str, Any], position: LogPosition | None) -> tuple[list[EncodedFinding], list[bytes]]:
    event = AccessEvent.model_validate(body)
    engine = ReplayEngine(POLICY, APPROVALS, RULES)
    found, judgement = engine.evaluate_encoded(event, position)
    expected = [encode_finding(_model_finding(judgement, o, event, position)) for o in judgement.outcomes]
    return found, [line for _, line in expected] + [b"keys"] + [orjson.dumps(k) for k, _ in expected]


def _finding_lines() -> list[bytes]:
    engine = ReplayEngine(POLICY, APPROVALS, RULES)
    return [raw for raw in LINES if engine.evaluate_encoded(AccessEvent.model_validate_json(raw))[0]]


FINDING_LINES = _finding_lines()
"""Fixture events with findings of their own (not only proxy ones, which come from ``finish``)."""

_NAMES = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)  # utf-8: no lone surrogates


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    line=st.sampled_from(FINDING_LINES),
    names=st.fixed_dictionaries(
        {"actor": _NAMES, "dataset": _NAMES, "store": _NAMES, "event": _NAMES, "resource": _NAMES}
    ),
    microsecond=st.sampled_from([0, 1, 500_000, 999_999]),
    offset=st.sampled_from([0, 1, -330, 59, 23 * 60 + 59]),
    position=st.sampled_from([None, ("segments/00000001.jsonl", 1), ("s\u00e9g", 10**6)]),
)
def test_emitted_lines_are_the_models_canonical_bytes(
    line: bytes, names: dict[str, str], microsecond: int, offset: int, position: tuple[str, int] | None
) -> None:
    """Every field the emitter writes: names in any script, times at any offset and fraction, any position."""
    body = orjson.loads(line)
    body["event_id"] = names["event"]
    body["actor"]["id"] = names["actor"]
    body["resource"].update(
        dataset=names["dataset"], store=names["store"], id=names["resource"]
    )  # not the region: a fact
    when = AccessEvent.model_validate(body).time.replace(microsecond=microsecond)
    body["time"] = when.astimezone(timezone(timedelta(minutes=offset))).isoformat()
    at = LogPosition(segment=position[0], line=position[1]) if position is not None else None
    found, expected = _emitted_and_model(body, at)
    assert found
    assert [line for _, line in found] + [b"keys"] + [orjson.dumps(k) for k, _ in found] == expected


def test_every_fixture_event_emits_the_models_bytes() -> None:
    total = 0
    for number, line in enumerate(LINES, start=1):
        found, expected = _emitted_and_model(orjson.loads(line), LogPosition(segment="s", line=number))
        assert [line for _, line in found] + [b"keys"] + [orjson.dumps(k) for k, _ in found] == expected
        total += len(found)
    assert total >= 60  # the fixture log's findings, but its proxy ones (those come from finish)


def _first_finding() -> EncodedFinding:
    engine = ReplayEngine(POLICY, APPROVALS, RULES)
    for raw in LINES:
        found, _ = engine.evaluate_encoded(AccessEvent.model_validate_json(raw))
        if found:
            return found[0]
    raise AssertionError("the fixture log has findings")


def test_decoded_findings_check_their_stated_ids() -> None:
    """Lines read back as findings go through the model's validation, stated id included."""
    found = _first_finding()
    key, line = found
    assert decoded([found])[0].id == orjson.loads(line)["id"]
    forged = line.replace(orjson.loads(line)["id"].encode(), b"F-00000000000000000000")
    with pytest.raises(ValueError, match="finding id"):
        decoded([(key, forged)])


def test_an_outcome_naming_someone_not_in_the_verdict_key_is_never_planned() -> None:
    """A plan replays outcomes whose inputs are key facts; a related party other than the recipient is not one."""
    engine = ReplayEngine(POLICY, APPROVALS, RULES)
    for raw in LINES:
        event = AccessEvent.model_validate_json(raw)
        _, judgement = engine.evaluate_encoded(event)
        if event.on_behalf_of is None and any(o.related is not None for o in judgement.outcomes):
            break
    else:
        raise AssertionError("the fixture log has a disclosure with findings")
    fast_event = decode(raw)
    plan = FastReplay.for_policy(POLICY, APPROVALS)._plan
    assert plan(judgement, fast_event)[0] is not _FULL  # its related party is the recipient, filled in per event
    outcome = judgement.outcomes[0]
    stranger = Outcome(outcome.rule, outcome.decision, outcome.detail, outcome.approval_id, related="someone-else")
    assert plan(Judgement(judgement.actor_class, judgement.home, (stranger,)), fast_event)[0] is _FULL


def test_a_planned_event_counts_as_the_engine_counts_it() -> None:
    """Counts, versions, the period and whereabouts after planned events equal the engine's."""
    key, _ = _first_finding()
    shape = orjson.loads(next(line for line in LINES if f'"event_id":"{key[1][0]}"'.encode() in line))
    assert not shape.get("approval_ids")  # no approval: times far apart keep the same verdict key
    lines = []
    for n in range(4):
        body = dict(shape, event_id=f"p-{n}", time=f"2021-10-0{n + 1}T08:00:00+05:30")
        lines.append(orjson.dumps(body))
    fast = FastReplay.for_policy(POLICY, APPROVALS)
    planned = fast.encoded_segment(lines, "s", FIXTURES / "s")
    assert fast.planned == 3  # the first event built the plan
    engine = ReplayEngine(POLICY, APPROVALS, RULES)
    full: list[EncodedFinding] = []
    for n, raw in enumerate(lines, start=1):
        full += engine.evaluate_encoded(AccessEvent.model_validate_json(raw), LogPosition(segment="s", line=n))[0]
    assert planned == full
    ours, theirs = fast.engine.stats, engine.stats
    assert (ours.events, ours.by_rule, ours.by_commitment, ours.policy_versions) == (
        theirs.events,
        theirs.by_rule,
        theirs.by_commitment,
        theirs.policy_versions,
    )
    assert (ours.first_event, ours.last_event) == (theirs.first_event, theirs.last_event)
    assert ours.first_event == datetime(2021, 10, 1, 2, 30, tzinfo=UTC)
    at = datetime(2021, 10, 3, tzinfo=UTC)
    assert fast.engine.whereabouts.at(shape["actor"]["id"], at) == engine.whereabouts.at(shape["actor"]["id"], at)


def _many_shapes(n: int, dataset: str) -> list[bytes]:
    """Foreign exports of sensitive data citing an approval, each at a new region: a new verdict key each."""
    lines = []
    for i in range(n):
        body = {
            "event_id": f"shape-{i}",
            "time": "2021-11-10T00:00:00Z",
            "action": "export",
            "actor": {"id": "u1", "kind": "employee", "physical_country": "CN"},
            "resource": {
                "id": "r1",
                "dataset": dataset,
                "category": "health_inferred",
                "store": "s",
                "provider": "oci",
                "region": f"region-{i}",
            },
            "approval_ids": ["A-wide"],
        }
        lines += [orjson.dumps(body), orjson.dumps(dict(body, event_id=f"again-{i}"))]
    return lines


def test_plans_stop_at_their_byte_budget_and_findings_stay_the_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory attack: an approval whose scope lists 2,000 datasets makes every out-of-scope
    finding's detail about 30 KB, and every event a new verdict key; plans used to keep
    each detail (about 47 KB a key, 4.7 GB at the key bound). Plans now stop at their
    budget; the keys past it take the full path, with the same findings."""
    monkeypatch.setattr(fast_module, "CACHE_BUDGET", 200_000)
    wide = models.Approval.model_validate(
        {
            "approval_id": "A-wide",
            "requester": "u1",
            "approvers": [
                {"id": "sec-1", "team": "us-data-security", "country": "US", "approved_at": "2021-10-31T22:00:00Z"}
            ],
            "scope": {"datasets": [f"dataset-{n:04d}" for n in range(2000)], "categories": ["*"], "actions": ["*"]},
            "not_before": "2021-11-01T00:00:00Z",
            "not_after": "2021-12-31T23:59:59Z",
        }
    )
    approvals = ApprovalSet({"A-wide": wide}, FIXTURES / "wide.jsonl", signature_verified=False, digest="wide")
    lines = _many_shapes(40, "not-listed")
    fast = FastReplay(ReplayEngine(POLICY, approvals, RULES), POLICY, approvals)
    planned = fast.encoded_segment(lines, "s", FIXTURES / "s")
    engine = ReplayEngine(POLICY, approvals, RULES)
    full: list[EncodedFinding] = []
    for n, raw in enumerate(lines, start=1):
        full += engine.evaluate_encoded(AccessEvent.model_validate_json(raw), LogPosition(segment="s", line=n))[0]
    assert planned == full
    assert 150_000 < fast.cache_bytes <= 200_000  # counted: each plan holds a detail of about 30 KB
    kinds = [type(v) for v in fast._verdicts.values()]
    assert 0 < kinds.count(_Plan) < 10 and kinds.count(bool) > 30  # the rest: full, not planned


def test_plans_share_the_fields_of_the_same_rule_row_and_approval() -> None:
    fast = FastReplay.for_policy(POLICY, APPROVALS)
    fast.encoded_segment(_many_shapes(20, "us-videos"), "s", FIXTURES / "s")
    plans = [v for v in fast._verdicts.values() if isinstance(v, _Plan)]
    assert len(plans) == 20
    assert len({id(step.fields) for plan in plans for step in plan.steps}) == len(plans[0].steps)


def test_the_cache_counts_at_least_what_it_holds() -> None:
    """The budget's counts are over-estimates: tracemalloc sees no more than they say.

    Keys of four unknown approvals and a recipient, plans of several steps each."""
    lines = []
    for n, body in enumerate(orjson.loads(line) for line in _many_shapes(300, "us-videos")):
        body["approval_ids"] = ["A-1", "A-2", "A-3", f"A-{n // 2}"]  # a shape and its repeat share a key
        body["recipient"] = {"kind": "vendor", "id": "v", "country": "CN"}
        lines.append(orjson.dumps(body))
    fast = FastReplay.for_policy(POLICY, APPROVALS)
    fast.encoded_segment(lines[:2], "s", FIXTURES / "s")  # caches of the pack and the engine, warmed
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = fast.cache_bytes
        found = fast.encoded_segment(lines[2:], "s", FIXTURES / "s")
        del found
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = fast.cache_bytes - held
    assert sum(isinstance(v, _Plan) for v in fast._verdicts.values()) == 300
    assert grown <= counted, (grown, counted)
