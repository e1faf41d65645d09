"""Replay engine unit tests: cross-event proxy resolution at the event's own time."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from audit.logs.approvals import ApprovalSet
from audit.models import AccessEvent, Finding, LogPosition
from audit.policy import load_policy
from audit.replay import engine as engine_module
from audit.replay.engine import PendingStore, ReplayEngine, Whereabouts, _Pending
from audit.replay.rules import load_rules
from tests.conftest import POLICIES


def _event(eid: str, time: str, actor: str, country: str | None, **over: Any) -> AccessEvent:
    body: dict[str, Any] = {
        "event_id": eid,
        "time": time,
        "action": "read",
        "actor": {"id": actor, "office_country": country, "physical_country": country},
        "resource": {
            "id": "r",
            "dataset": "us-videos",
            "category": "public_video",
            "store": "oci",
            "provider": "oci",
            "region": "us-ashburn-1",
        },
    }
    body.update(over)
    return AccessEvent.model_validate(body)


def _replay(*events: AccessEvent) -> list[Finding]:
    engine = ReplayEngine(load_policy(POLICIES), ApprovalSet({}, Path("none"), False, "0" * 64), load_rules())
    return list(engine.replay((e, None) for e in events))


def _proxy_events(findings: list[Finding]) -> set[str]:
    return {f.event_ids[0] for f in findings if f.rule_id == "proxy-access"}


US = "US"


def test_proxy_uses_the_colleagues_location_at_the_time_not_the_last_one() -> None:
    findings = _replay(
        _event("e1", "2021-10-01T00:00:00Z", "colleague", "CN"),
        _event("e2", "2021-10-02T00:00:00Z", "us-1", US, on_behalf_of="colleague"),
        _event("e3", "2021-10-09T00:00:00Z", "colleague", US),  # later moved to the US
    )
    assert _proxy_events(findings) == {"e2"}


def test_proxy_for_a_colleague_who_was_in_the_us_at_the_time_is_clean() -> None:
    findings = _replay(
        _event("e1", "2021-10-01T00:00:00Z", "colleague", US),
        _event("e2", "2021-10-02T00:00:00Z", "us-1", US, on_behalf_of="colleague"),
        _event("e3", "2021-10-09T00:00:00Z", "colleague", "CN"),  # travelled abroad later
    )
    assert _proxy_events(findings) == set()


def test_proxy_for_a_colleague_first_seen_later_in_the_log() -> None:
    findings = _replay(
        _event("e1", "2021-10-02T00:00:00Z", "us-1", US, on_behalf_of="late"),
        _event("e2", "2021-10-20T00:00:00Z", "late", "CN"),
    )
    assert _proxy_events(findings) == {"e1"}


def test_proxy_for_a_colleague_never_seen_fails_closed() -> None:
    findings = _replay(_event("e1", "2021-10-02T00:00:00Z", "us-1", US, on_behalf_of="ghost"))
    [finding] = [f for f in findings if f.rule_id == "proxy-access"]
    assert "never seen" in finding.message and finding.commitment == "C8"


@pytest.mark.parametrize(
    ("country", "seen", "flagged"), [("CN", None, True), ("US", None, False), (None, "CN", True), (None, US, False)]
)
def test_hand_over_to_an_employee(country: str | None, seen: str | None, flagged: bool) -> None:
    events = [_event("e0", "2021-10-01T00:00:00Z", "peer", seen)] if seen else []
    recipient: dict[str, Any] = {"kind": "employee", "id": "peer"}
    if country is not None:
        recipient["country"] = country
    events.append(_event("e1", "2021-10-02T00:00:00Z", "us-1", US, action="export", recipient=recipient))
    assert (_proxy_events(_replay(*events)) == {"e1"}) is flagged


def test_whereabouts_handles_out_of_order_sightings() -> None:
    from datetime import UTC, datetime

    w = Whereabouts()
    w.record("a", datetime(2021, 10, 10, tzinfo=UTC), "foreign_staff")
    w.record("a", datetime(2021, 10, 1, tzinfo=UTC), "us_staff")
    assert w.at("a", datetime(2021, 10, 5, tzinfo=UTC)) == "us_staff"
    assert w.at("a", datetime(2021, 10, 11, tzinfo=UTC)) == "foreign_staff"
    assert w.at("a", datetime(2021, 9, 1, tzinfo=UTC)) == "us_staff"
    assert w.at("b", datetime(2021, 9, 1, tzinfo=UTC)) is None


def test_pending_proxy_events_spill_to_disk_and_come_back_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    events = [_event("c", "2021-10-01T00:00:00Z", "colleague", "CN")]
    events += [_event(f"p{i}", f"2021-10-02T00:00:{i:02d}Z", "us-1", US, on_behalf_of="colleague") for i in range(5)]
    events.append(
        _event(
            "h",
            "2021-10-03T00:00:00Z",
            "us-1",
            US,
            recipient={"kind": "employee", "id": "colleague", "country": "CN"},
            action="disclose",
        )
    )
    in_memory = _replay(*events)
    spills: list[IO[bytes]] = []
    make = tempfile.TemporaryFile

    def temporary_file() -> IO[bytes]:
        spills.append(make())
        return spills[-1]

    monkeypatch.setattr(engine_module, "PENDING_IN_MEMORY", 2)
    monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)  # the module replay's engine spills with
    spilled = _replay(*events)
    assert spilled == in_memory
    assert len(spills) == 1 and spills[0].closed  # four spilled, the file closed at the end
    assert _proxy_events(spilled) == {"p0", "p1", "p2", "p3", "p4", "h"}


def test_pending_store_round_trips_every_field() -> None:
    store = PendingStore(in_memory=1)
    events = [
        _Pending.of(
            _event("a", "2021-10-02T00:00:00Z", "us-1", US),
            LogPosition(segment="s", line=3),
            "us",
            "colleague",
            "on behalf of",
            "foreign",
        ),
        _Pending.of(_event("b", "2021-10-02T01:00:00+02:00", "us-1", US), None, "us", "c2", "handed to"),
    ]
    for pending in events:
        store.add(pending)
    assert list(store) == events and store.count == 2
    store.clear()
    assert list(store) == [] and store.count == 0


def test_an_event_both_handed_to_and_on_behalf_of_a_colleague_is_one_finding_per_rule() -> None:
    both = _event(
        "b",
        "2021-10-03T00:00:00Z",
        "us-1",
        US,
        recipient={"kind": "employee", "id": "colleague", "country": "CN"},
        on_behalf_of="colleague",
        action="disclose",
    )
    findings = _replay(_event("c", "2021-10-01T00:00:00Z", "colleague", "CN"), both)
    proxy = [f for f in findings if f.event_ids == ("b",) and f.rule_id == "proxy-access"]
    assert len(proxy) == 1 and "handed to" in proxy[0].message  # the first proxy event of the two wins


def test_proxy_findings_stream_out_one_event_at_a_time() -> None:
    """finish() holds one event's findings, not every proxy finding (regression: a 10M-event log held them all)."""
    engine = ReplayEngine(load_policy(POLICIES), ApprovalSet({}, Path("none"), False, "0" * 64), load_rules())
    engine.evaluate(_event("c", "2021-10-01T00:00:00Z", "colleague", "CN"))
    for i in range(50):
        engine.evaluate(_event(f"p{i}", f"2021-10-02T00:00:{i:02d}Z", "us-1", US, on_behalf_of="colleague"))
    read = 0

    class Counted(PendingStore):
        def __iter__(self) -> Iterator[_Pending]:
            nonlocal read
            for pending in super().__iter__():
                read += 1
                yield pending

    store = Counted()
    for pending in engine._pending:
        store.add(pending)
    engine._pending = store
    findings = engine.finish()
    first = next(findings)
    assert first.event_ids == ("p0",) and read <= 2
    rest = list(findings)
    assert [f.event_ids for f in rest] == [(f"p{i}",) for i in range(1, 50)] and read == 50
    assert store.count == 0  # cleared once drained
