"""Fast path for replay: typed msgspec decoding and a cache of what each shape of event breaks.

Most events in a real log repeat a few shapes (who, from where, what category, which
store, which approval). This module decodes each verified line with msgspec into
:class:`FastEvent` - the same shape and constraints as :class:`~audit.models.AccessEvent`,
but for country codes, which are key facts (:data:`_Country`) - and looks up a
verdict keyed on exactly the facts the full engine reads. A cached *clean* verdict
costs a decode and a dict lookup. A cached *plan* replays the engine's outcomes for
that key (rule, deciding row, detail, approval), explained with the event's own
names and emitted through :mod:`audit.replay.emit`, as the engine emits them.
Everything else - a cache miss, an outcome naming a party the key does not fix, a
line msgspec rejects - goes to pydantic and
:class:`~audit.replay.engine.ReplayEngine`, so decisions and error messages are
made in one place only. It does not verify logs, with one exception:
when the log verifier leaves the records' RFC 8785 form to the replay
(``defer_canonical``, ADR 0016), the loop checks each line as it decodes it, so a
line is decoded once.

Ordering rules of the loop (each relies on the one before):

0. with ``check_canonical``, a line is used only once it is proven canonical: the
   decoded event re-encodes to its very bytes (:data:`_ENCODE`), or else the exact
   check says so; a line that is not raises :class:`NonCanonicalRecord` before it
   is judged, and an input error met in the segment gives way to it. Lines are
   decoded and proven :data:`CHUNK` at a time: a chunk whose events re-encode to its
   very bytes is proven whole, else it is checked line by line, so the error names
   the first line that is not canonical;
1. a line msgspec rejects, or whose time is not in :data:`TIME_FORM`, goes to the
   full path before anything else is read;
2. the verdict key holds every fact the engine reads, and every fact
   :func:`needs_full_path` reads, so a key with a cached verdict never needs the
   full path for any other reason: that function runs on a cache miss only. The
   pack in force and the deadlines passed are one fact, the event's span between
   :func:`epochs`. A field with a model default is keyed as the line gives it
   (``UNSET`` when absent): a finer key than the default would give, never a coarser;
3. only a verdict the full path reached for an event that needed nothing else is
   cached, so a cached verdict is the engine's own for that key: *clean* (kept as
   the actor's location class, which the key fixes) when it found nothing, a *plan*
   when every outcome's inputs are key facts (a related party may only be the
   event's recipient, filled in per event), else *full*. A key whose events make
   the engine defer proxy judgements (a colleague named by ``on_behalf_of`` or as an
   employee recipient) is never clean: its plan defers them as the engine does, with
   each event's own colleague, time, position and verified line.

Times are decoded as text and parsed by :func:`event_time`, not by msgspec's
datetime decoder: msgspec rounds fractions beyond microseconds, pydantic truncates
them, and a time rounded across a deadline or an approval's bounds would let the
two paths disagree (a crafted time could be judged clean from another event's cached
verdict).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import UNSET, UnsetType

from audit.errors import InputError, IntegrityError
from audit.logs.approvals import ApprovalSet
from audit.logs.verify.records import is_canonical_line, non_canonical_lines
from audit.models import (
    AccessEvent,
    Action,
    ActorKind,
    Finding,
    LegalBasisKind,
    LogPosition,
    Provider,
    RecipientKind,
    StoreKind,
    country_or_region,
)
from audit.policy import Decision, PolicyHistory, PolicyPack
from audit.records import parse_json_line, validate
from audit.replay.emit import Judgement, Outcome, decoded
from audit.replay.engine import ReplayEngine
from audit.replay.facts import Handoff, proxy_handoffs
from audit.replay.rules import RuleMetadata, load_rules
from audit.report.findings import EncodedFinding

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_Country = str
"""A :data:`audit.models.CountryOrRegion`, checked by :func:`needs_full_path` rather than by msgspec.

Every country an event names is a verdict-key fact, so an event whose country the
model refuses has a key no cached verdict can have (the full path refused the same
string): it is looked at on a cache miss only, which saves a regular expression per
code and event (msgspec runs a ``pattern`` through Python's ``re``)."""


class FastActor(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Mirror of :class:`audit.models.Actor`."""

    employer: str | None = None
    id: _NonEmpty
    kind_: ActorKind | UnsetType = msgspec.field(default=UNSET, name="kind")
    office_country: _Country | None = None
    physical_country: _Country | None = None
    role: str | None = None
    team: str | None = None

    @property
    def kind(self) -> ActorKind:
        kind = self.kind_
        return "employee" if kind is UNSET else kind


class FastResource(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Mirror of :class:`audit.models.Resource`."""

    category: _NonEmpty
    dataset: _NonEmpty
    id: _NonEmpty
    provider: Provider
    region: _NonEmpty
    store: _NonEmpty
    store_kind_: StoreKind | UnsetType = msgspec.field(default=UNSET, name="store_kind")

    @property
    def store_kind(self) -> StoreKind:
        kind = self.store_kind_
        return "primary" if kind is UNSET else kind


class FastRecipient(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True, gc=False
):
    """Mirror of :class:`audit.models.Recipient`."""

    country: _Country | None = None
    id: _NonEmpty
    kind: RecipientKind


class FastLegalBasis(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True, gc=False
):
    """Mirror of :class:`audit.models.LegalBasis`."""

    kind: LegalBasisKind
    reference: _NonEmpty


class FastEvent(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Mirror of :class:`audit.models.AccessEvent` (a test keeps the two in step; ``Literal`` types are shared).

    Imported events (with a ``source_record``) take the full path. Every mirror is
    ``forbid_unknown_fields``, ``frozen``, ``kw_only``, ``omit_defaults`` and not tracked by
    the garbage collector (none is part of a reference cycle). Fields are declared in
    sorted order and a ``None`` default is omitted, as a sealed record's RFC 8785 bytes
    have them, so a decoded event re-encodes to the very line it came from for every
    line ``seal`` writes, and only for a canonical line (:data:`_ENCODE`). A field whose model default is not
    ``None`` is stored as given (:data:`msgspec.UNSET` when absent, so it is not written
    back either) and read through a property that supplies the default.
    """

    action: Action
    actor: FastActor
    approval_ids_: tuple[_NonEmpty, ...] | UnsetType = msgspec.field(default=UNSET, name="approval_ids")
    break_glass_: bool | UnsetType = msgspec.field(default=UNSET, name="break_glass")
    event_id: _NonEmpty
    justification: str | None = None
    legal_basis: FastLegalBasis | None = None
    on_behalf_of: str | None = None
    recipient: FastRecipient | None = None
    resource: FastResource
    source_system: str | None = None
    time: str
    """Parsed by :func:`event_time`; a time it refuses takes the full path."""

    @property
    def approval_ids(self) -> tuple[str, ...]:
        ids = self.approval_ids_
        return () if ids is UNSET else ids

    @property
    def break_glass(self) -> bool:
        flag = self.break_glass_
        return False if flag is UNSET else flag


_DECODER = msgspec.json.Decoder(FastEvent)
_ENCODE = msgspec.json.Encoder().encode
"""Re-encodes a decoded event: the very line it came from only if that line is RFC 8785 (see :class:`FastEvent`).

msgspec writes a mirror's keys in their declared order - sorted, ASCII, without
duplicates - and escapes every string exactly as RFC 8785 does (a test holds it so for
every code point); an event holds no number but ``true`` and ``false``. So equal bytes
prove the line canonical, and only a line they do not prove needs the exact check."""
_DECODE_LINES = _DECODER.decode_lines
_ENCODE_LINES = msgspec.json.Encoder().encode_lines
CHUNK = 128
"""Lines decoded, re-encoded and compared at once (:meth:`FastReplay._decoded_chunk`): fewer calls, and
the events of a chunk are still in the CPU's cache when judged (a whole segment's are not)."""


class NonCanonicalRecord(IntegrityError):
    """A sealed record line is not its RFC 8785 form (a replay that checks it itself, ``defer_canonical``)."""


def _non_canonical(segment: str, line: int, path: Path) -> NonCanonicalRecord:
    return NonCanonicalRecord(f"line {line} of {segment} is not its RFC 8785 canonical form", path=path, line=line)


MAX_SHAPES = 100_000
"""Verdicts cached per replay (a real log has hundreds or thousands of shapes)."""
CACHE_BUDGET = 32 * 2**20
"""Bytes the cached verdicts may take, as :meth:`FastReplay._remember` counts them (each key's text and
objects; a plan's objects, detail texts and finding fields). A log's author chooses how long the strings
of a key are, and how long details are (an approval's scope is listed in one): past this budget, or past
:data:`MAX_SHAPES` keys, new keys are not cached and their events take the full path (same findings, slower).
The counts are over-estimates (a test compares them with tracemalloc)."""
_KEY_BYTES = 512
"""What a cached key's own objects (its tuple, the dict entry) are counted as, besides twice its JSON text."""
_PLAN_BYTES = 1024
"""What a plan's own objects (the plan, its judgement and steps tuple) are counted as."""
_STEP_BYTES = 768
"""What one step's objects (the step and its outcome) are counted as, besides its detail text."""


_Shared = tuple[RuleMetadata, Decision, str | None]


@dataclass(frozen=True)
class _Step:
    """One outcome of a plan, with the finding fields it fixes computed once."""

    outcome: Outcome
    fields: dict[str, Any]
    names_recipient: bool
    """The outcome's related party is the event's recipient (a disclosure or transfer); else there is none."""
    shared: _Shared
    """What ``fields`` depend on: steps with the same rule, row and approval share them."""


@dataclass(frozen=True)
class _Plan:
    """What the engine decided for every event of one verdict key: replayed with each event's own names.

    ``handoffs`` are the proxy judgements the engine defers for such an event
    (:func:`~audit.replay.facts.proxy_handoffs`); each event's own colleague, line and
    position go with them.
    """

    judgement: Judgement
    steps: tuple[_Step, ...]
    handoffs: tuple[Handoff, ...] = ()


_FULL = False
"""The cached verdict of a key whose findings cannot be planned: every such event takes the full path."""
_Verdict = str | bool | _Plan
"""A key's cached verdict: *clean* (the actor's location class, which the key fixes), a plan, or :data:`_FULL`."""


class FastReplay:
    """Feed raw verified lines to a :class:`ReplayEngine`, skipping work for known shapes."""

    def __init__(self, engine: ReplayEngine, policy: PolicyHistory, approvals: ApprovalSet):
        self.engine = engine
        self._policy = policy
        self._approvals = approvals
        self._verdicts: dict[Hashable, _Verdict] = {}
        self._epochs, self._spans = epochs(policy)
        self._fields: dict[_Shared, dict[str, Any]] = {}
        self.cache_bytes = 0
        """Bytes the cached verdicts take, as :meth:`_remember` counts them (at most :data:`CACHE_BUDGET`)."""
        self.fast_hits = 0
        self.planned = 0

    @classmethod
    def for_policy(cls, policy: PolicyHistory, approvals: ApprovalSet) -> FastReplay:
        """A fast replay over a fresh engine with every rule loaded."""
        return cls(ReplayEngine(policy, approvals, load_rules()), policy, approvals)

    def evaluate_segment(self, lines: Sequence[bytes], segment: str, path: Path) -> list[Finding]:
        """Findings for a verified segment's lines (proxy findings come from ``engine.finish()``)."""
        return decoded(self.encoded_segment(lines, segment, path))

    def encoded_segment(
        self, lines: Sequence[bytes], segment: str, path: Path, *, check_canonical: bool = False
    ) -> list[EncodedFinding]:
        """:meth:`evaluate_segment`'s findings as the spool takes them.

        ``check_canonical``: the log verifier left the records' RFC 8785 form to this
        replay (``defer_canonical``); :class:`NonCanonicalRecord` if one is not, raised
        before that line is judged and in preference to an input error of the segment.
        """
        try:
            return self._encoded_segment(lines, segment, path, check_canonical)
        except InputError:
            if check_canonical:
                bad = non_canonical_lines(list(lines))
                if bad:  # the producer sealed a malformed record: an integrity failure first
                    raise _non_canonical(segment, bad[0], path) from None
            raise

    def _encoded_segment(self, lines: Sequence[bytes], segment: str, path: Path, check: bool) -> list[EncodedFinding]:
        """One loop with everything inlined: this is the hot path of a replay.

        The ordering rules are in the module docstring. Lines are decoded :data:`CHUNK`
        at a time (:meth:`_decoded_chunk`).
        """
        findings: list[EncodedFinding] = []
        verdicts, epochs, spans = self._verdicts, self._epochs, self._spans
        record = self.engine.whereabouts.record
        fullmatch, from_iso, text = _FULLMATCH, datetime.fromisoformat, str
        decoded_chunk = self._decoded_chunk
        stats = self.engine.stats
        versions = stats.policy_versions
        clean, last_pack = 0, None
        times: list[datetime] = []
        seen = times.append
        for start in range(0, len(lines), CHUNK):
            part = lines[start : start + CHUNK]
            for number, raw, e in zip(
                range(start + 1, start + 1 + len(part)),
                part,
                decoded_chunk(part, segment, start, path, check),
                strict=True,
            ):
                if e is None:  # msgspec refused it (rule 1)
                    findings += self._full(raw, segment, number, path)[0]
                    continue
                stamp = e.time
                try:  # event_time(), inlined
                    t = from_iso(stamp) if fullmatch(stamp) is not None else None
                except ValueError:
                    t = None
                if t is None:
                    findings += self._full(raw, segment, number, path)[0]
                    continue
                recipient = e.recipient
                span = bisect_right(epochs, t)
                actor, res, legal, ids = e.actor, e.resource, e.legal_basis, e.approval_ids_
                key = (  # a field with a default is keyed as given (UNSET when absent): finer, never coarser
                    span,
                    actor.kind_,
                    actor.physical_country,
                    actor.office_country,
                    res.provider,
                    res.region,
                    res.store_kind_,
                    res.category,
                    e.action,
                    (recipient.kind, recipient.country) if recipient is not None else None,
                    legal.kind if legal is not None else None,
                    self._approvals_key(e, t) if ids else (),
                    e.on_behalf_of is not None,
                )
                verdict = verdicts.get(key)
                pack = spans[span]
                if verdict.__class__ is not text:  # not clean: a miss, a plan or full
                    findings += self._not_clean(verdict, key, e, t, pack, raw, (segment, number, path))
                    continue
                if pack is not last_pack:
                    versions.add(pack.config.name)
                    last_pack = pack
                record(actor.id, t, verdict)  # a clean verdict is the actor's location class
                seen(t)
                clean += 1
        stats.events += clean
        if times:
            stats.note_times(min(times), max(times))
        self.fast_hits += clean
        return findings

    @staticmethod
    def _decoded_chunk(
        part: Sequence[bytes], segment: str, start: int, path: Path, check: bool
    ) -> Sequence[FastEvent | None]:
        """Each line of ``part`` decoded, None where msgspec refuses it; checked first if ``check`` (rule 0).

        One decode and one encode for the chunk when it decodes to one event per line
        and the events re-encode to its very bytes. Together these prove every line
        canonical and the events one per line, in order: msgspec writes one newline per
        event and none inside one, so the chunk holds no newline but those that end its
        lines. Else line by line, as the loop did: a line equal to the encoding of the
        event decoded at its place is that event, any other line is decoded on its own,
        and :class:`NonCanonicalRecord` names the first line of the chunk that is not
        canonical.
        """
        blob = b"\n".join(part) + b"\n"
        try:
            events: list[FastEvent] | None = _DECODE_LINES(blob)
        except (msgspec.ValidationError, msgspec.DecodeError):
            events = None
        if events is not None and len(events) != len(part):  # a lenient reading: nothing it says is used
            events = None
        known: list[FastEvent] = []
        encoded: list[bytes] = []
        if events is not None:
            whole = _ENCODE_LINES(events)
            if whole == blob:
                return events
            known, encoded = events, whole.split(b"\n")  # encoded[i] encodes known[i]: no newline inside one
        checked: list[FastEvent | None] = []
        for offset, raw in enumerate(part):
            if encoded and encoded[offset] == raw:  # the very line of the event decoded at its place
                checked.append(known[offset])
                continue
            try:
                e: FastEvent | None = _DECODER.decode(raw)
            except (msgspec.ValidationError, msgspec.DecodeError):
                e = None
            if check and (e is None or _ENCODE(e) != raw) and not is_canonical_line(raw):
                raise _non_canonical(segment, start + offset + 1, path)
            checked.append(e)
        return checked

    def _not_clean(
        self,
        verdict: _Verdict | None,
        key: Hashable,
        e: FastEvent,
        t: datetime,
        pack: PolicyPack,
        raw: bytes,
        where: tuple[str, int, Path],
    ) -> list[EncodedFinding]:
        """An event whose key has no clean verdict: judged and remembered (a miss), planned, or judged (full)."""
        segment, line, path = where
        if verdict is None:
            found, judgement = self._full(raw, segment, line, path)
            self._remember(key, e, judgement, pack)
            return found
        if isinstance(verdict, _Plan):
            return self._planned(verdict, e, t, pack.config.name, raw, (segment, line))
        return self._full(raw, segment, line, path)[0]  # _FULL

    def _remember(self, key: Hashable, e: FastEvent, judgement: Judgement, pack: PolicyPack) -> None:
        """Cache the full path's verdict for ``key``, unless the event needed the full path anyway or the cache is full.

        No outcome and no proxy judgement deferred: the key is clean. Outcomes whose
        related party is none or the event's recipient, and deferred proxy judgements:
        a plan. Anything else: the key always takes the full path.
        The log's author chooses how many shapes it holds and how long their strings
        are, so at most :data:`MAX_SHAPES` keys and :data:`CACHE_BUDGET` bytes are kept;
        events of shapes beyond them take the full path (same findings, slower).
        """
        if len(self._verdicts) >= MAX_SHAPES or needs_full_path(e):
            return
        cost = _KEY_BYTES + 2 * len(orjson.dumps(key, default=str))  # its strings and tuples as objects (UNSET as text)
        verdict: _Verdict = judgement.actor_class  # clean
        handoffs = proxy_handoffs(e.recipient, e.on_behalf_of, pack.config)
        if judgement.outcomes or handoffs:
            verdict, plan_cost = self._plan(judgement, e, handoffs)
            if self.cache_bytes + cost + plan_cost > CACHE_BUDGET:
                verdict, plan_cost = _FULL, 0
            if isinstance(verdict, _Plan):
                self._fields.update((s.shared, s.fields) for s in verdict.steps)
            cost += plan_cost
        if self.cache_bytes + cost <= CACHE_BUDGET:
            self.cache_bytes += cost
            self._verdicts[key] = verdict

    def _plan(self, judgement: Judgement, e: FastEvent, handoffs: tuple[Handoff, ...] = ()) -> tuple[_Verdict, int]:
        """A plan replaying ``judgement`` for every event with ``e``'s verdict key (or :data:`_FULL`), and its cost.

        Every input of an outcome is a fact of the key but its related party, which for a
        base fact is the event's recipient (its id is not in the key): an outcome naming
        anyone else cannot be replayed. Steps of the same rule, row and approval share
        their finding fields (counted once).
        """
        recipient = e.recipient.id if e.recipient is not None else None
        steps = []
        new: dict[_Shared, dict[str, Any]] = {}
        cost = _PLAN_BYTES
        for outcome in judgement.outcomes:
            if outcome.related is not None and outcome.related != recipient:
                return _FULL, 0
            shared = (outcome.rule.metadata, outcome.decision, outcome.approval_id)
            fields = self._fields.get(shared) or new.get(shared)
            if fields is None:
                fields = new[shared] = outcome.fields()
                cost += len(orjson.dumps(fields))
            cost += _STEP_BYTES + len(outcome.detail)
            steps.append(_Step(outcome, fields, outcome.related is not None, shared))
        return _Plan(judgement, tuple(steps), handoffs), cost

    def _full(self, raw: bytes, segment: str, line: int, path: Path) -> tuple[list[EncodedFinding], Judgement]:
        event = validate(AccessEvent, parse_json_line(raw, path=path, line=line), path=path, line=line)
        return self.engine.evaluate_encoded(event, LogPosition(segment=segment, line=line))

    def _planned(
        self, plan: _Plan, e: FastEvent, t: datetime, version: str, raw: bytes, at: tuple[str, int]
    ) -> list[EncodedFinding]:
        """The findings the engine would make for ``e``: the plan's outcomes, explained with ``e``'s own names.

        Emitted and counted as the engine emits and counts its own (:meth:`ReplayEngine.emit_outcomes`);
        its proxy judgements deferred as the engine defers them (the event as its verified line).
        """
        judgement, engine = plan.judgement, self.engine
        recipient = e.recipient.id if e.recipient is not None else None
        engine.note_event(version, e.actor.id, t, judgement.actor_class)
        if plan.handoffs:
            position, when = LogPosition(segment=at[0], line=at[1]), t.astimezone(UTC)  # the model's UTC time
            for how, to_recipient, stated in plan.handoffs:
                colleague = recipient if to_recipient else e.on_behalf_of
                assert colleague is not None  # the key fixes whether the event names one
                engine.defer_proxy(raw, when, e.action, position, judgement.actor_class, colleague, how, stated)
        steps = ((s.outcome, s.fields, recipient if s.names_recipient else None) for s in plan.steps)
        found = engine.emit_outcomes(judgement, e, t, at, steps, e.time)
        self.planned += 1
        return found

    def _approvals_key(self, e: FastEvent, t: datetime) -> tuple[Hashable, ...]:
        """Each approval's bearing on the decision at the event's time ``t``."""
        parts: list[Hashable] = []
        justified = bool((e.justification or "").strip())
        for aid in dict.fromkeys(e.approval_ids):
            approval = self._approvals.get(aid)
            if approval is None:
                parts.append((aid,))
                continue
            phase = (
                approval.revoked_at is not None and t >= approval.revoked_at,
                t < approval.not_before,
                t > approval.not_after,
                len({a.id for a in approval.approvers if a.approved_at <= t}),
            )
            resource_id = e.resource.id if approval.scope.resource_ids else None
            parts.append((aid, e.actor.id, e.resource.dataset, resource_id, justified, phase))
        return tuple(parts)


def epochs(policy: PolicyHistory) -> tuple[list[datetime], list[PolicyPack]]:
    """The instants at which the pack in force or the deadlines passed change, and what is in force between.

    With ``points, packs = epochs(policy)``, an instant ``t`` (timezone-aware) is in
    span ``i = bisect_right(points, t)``: ``packs[i]`` is ``policy.at(t)``, and every
    transitional store's deadline is passed or not alike for all instants of a span.
    So the span is a verdict-key fact standing for both. The points are each pack's
    ``effective_from`` and each deadline, at 00:00 UTC (both are judged on the UTC date).
    """
    points = sorted(
        {_utc_midnight(pack.config.effective_from) for pack in policy.packs}
        | {_utc_midnight(store.deadline) for pack in policy.packs for store in pack.config.transitional_stores}
    )
    return points, [policy.packs[0], *(policy.at(point) for point in points)]


def _utc_midnight(day: date) -> datetime:
    """Start of ``day`` in UTC: an event is on or after ``day`` (UTC) iff its time is on or after this."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def needs_full_path(event: FastEvent) -> bool:
    """Events the fast path must hand to pydantic and the engine, whatever their verdict key.

    A disclosure without a recipient and a country the model refuses
    (:func:`~audit.models.country_or_region`: not upper-case ASCII letters, or two
    letters outside ISO 3166) are rejected by the pydantic model's validators, which
    msgspec does not mirror, so pydantic must see them to report the error. Every
    field read here is in the verdict key, so events with equal keys agree. (Proxy
    events no longer need the full path: a plan defers their proxy judgements as the
    engine does, see :func:`~audit.replay.facts.proxy_handoffs`.)
    """
    recipient = event.recipient
    return (event.action == "disclose" and recipient is None) or not _known_countries(
        event.actor.office_country,
        event.actor.physical_country,
        recipient.country if recipient is not None else None,
    )


TIME_FORM = re.compile(
    r"(?!0001|9999)[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-5][0-9])"
)
"""RFC 3339 times the fast path parses itself: a date, ``T``, seconds, an optional
fraction of up to nine digits, and ``Z`` or a ``+HH:MM`` offset. On these,
:meth:`datetime.fromisoformat` and pydantic agree (both truncate a fraction to
microseconds; a property test holds them equal); anything else takes the full path.
Two exclusions keep it so: offset minutes past 59 (``fromisoformat`` reads ``+00:60``
as ``+01:00``, pydantic refuses it), and the years 0001 and 9999, where an offset can
put the UTC instant outside the calendar (pydantic refuses it; the fast path never
converts to UTC, so it would not notice)."""

_FULLMATCH = TIME_FORM.fullmatch


def event_time(text: str) -> datetime | None:
    """``text`` as a timezone-aware datetime, or None if it is not in :data:`TIME_FORM` or not a real time."""
    if _FULLMATCH(text) is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:  # e.g. month 13, hour 24, an offset of 24 hours
        return None


def _known_countries(*codes: str | None) -> bool:
    for code in codes:
        if code is not None:
            try:
                country_or_region(code)
            except ValueError:
                return False
    return True


def decode(raw: bytes) -> FastEvent:
    """Decode one line with the fast decoder (raises msgspec errors)."""
    return _DECODER.decode(raw)


def decode_chunk(lines: bytes) -> list[FastEvent]:
    """Decode newline-delimited lines with the fast decoder, leniently: see :meth:`FastReplay._decoded_chunk`."""
    return _DECODE_LINES(lines)
