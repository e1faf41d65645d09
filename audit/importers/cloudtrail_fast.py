"""The fast path of the CloudTrail importer: a record's canonical event bytes without pydantic.

:func:`audit.importers.cloudtrail.convert` builds each event as a pydantic
:class:`~audit.models.AccessEvent` and the import then writes its canonical bytes. For a
record on the happy path, :class:`CloudTrailFast` builds the same bytes directly: the
dict ``AccessEvent.model_dump(mode="json", exclude_none=True)`` would give, dumped with
sorted keys as :func:`audit.canonical.canonical_bytes` dumps an ``AccessEvent``. It
works out everything the general converter does with the same functions (scope,
action, principals, resource ARNs and groups, enrichment), and memoises the JSON
bytes of what depends only on a few of the record's values, per import:

- the event time, by its text: :func:`~audit.importers.base.parse_time` and the
  ``UtcDatetime`` serialiser;
- out of scope, or the action and ``source_system``, by ``(eventCategory,
  managementEvent, errorCode, eventSource, eventName)``;
- the actor (its JSON and whether it was resolved), by the orjson bytes of
  ``userIdentity``: equal bytes are equal JSON values. NaN and infinities dump as
  ``null``, so an identity whose bytes hold ``null`` is resolved without the memo;
- the resources (each one's JSON, or not user data, and whether it was resolved), by
  the ARNs the record lists and requests, its event source and region.

For a one-line array file, :meth:`CloudTrailFast.whole_file` reads the same members
from msgspec's typed decode (:class:`TypedRecord`, ADR 0015) where
:func:`~audit.importers.typed_file.typed_records` proves them orjson's, and answers for
the whole file or not at all. Its memos are keyed by the JSON texts of ``userIdentity``,
``resources`` and ``requestParameters`` (equal texts are equal values), which are
parsed only on a miss.

Each memo starts over when it holds 16,384 answers or 8 MiB of keys and answers:
records are untrusted, and one key may be megabytes.

The event's bytes are these pieces joined in the order of its sorted keys, the
strings that vary per record (ids, file name) dumped by orjson as it dumps them
inside an object, the file index written as orjson writes an integer.

It returns ``None``, and the record is converted the general way (errors and their
messages included), unless every value is provably valid: a JSON object record, a
non-empty string ``eventID``, an RFC 3339 string ``eventTime`` that
``parse_time`` accepts, non-blank string ``eventName``, ``eventSource`` and
``awsRegion``, ``eventCategory`` and ``errorCode`` strings or absent,
``managementEvent`` a boolean or absent, ``userIdentity`` an object or absent, and
nothing raising a :class:`~audit.errors.RecordError` or pydantic ``ValidationError``
on the way. Actors and resources are the enrichment's validated models; the other
fields are built from strings whose validity these checks establish, except lone
surrogates, which pydantic refuses and orjson cannot dump: orjson's error sends the
record to the general path too. ``tests/test_import_fast_path.py`` holds both paths
equal on the fixtures, the public corpus and generated records.

This module holds no CloudTrail rules; the converter's functions are passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import msgspec
import orjson
from pydantic import TypeAdapter, ValidationError

from audit.errors import RecordError
from audit.importers.base import Encoded, FileEvents, OutOfScope, RawRecord, parse_time
from audit.importers.enrichment import Directory, Enrichment, Memo
from audit.importers.typed_file import typed_records
from audit.models import Action, UtcDatetime

_ACTIONS = frozenset(get_args(Action)) - {"disclose"}
"""Actions an event without a recipient may have (a disclosure must name its recipient)."""
_TIME: TypeAdapter[Any] = TypeAdapter(UtcDatetime)
_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
"""As :func:`audit.canonical.plain_canonical_bytes` dumps an AccessEvent (its error: the general path)."""
_SAFE_INDEX = 2**53
_UNRESOLVED: dict[tuple[bool, bool], tuple[str, ...]] = {
    (actor_ok, resource_ok): tuple(k for k, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok)
    for actor_ok in (True, False)
    for resource_ok in (True, False)
}
_UNRESOLVED_JSON = {key: orjson.dumps(value) for key, value in _UNRESOLVED.items()}
_NO_IDENTITY = b""
"""Memo key of a record without ``userIdentity`` (orjson never dumps an object as empty bytes)."""

# An AccessEvent's canonical bytes, members in sorted order, around the parts that vary:
# {"action":A,"actor":B,"approval_ids":[],"break_glass":false,"event_id":C,"resource":D,
#  "source_record":{"file":E,"index":F,"source":G,"unresolved":H,"vendor_event_id":I},"source_system":J,"time":K}
_ACTION = b'{"action":'
_ACTOR = b',"actor":'
_EVENT_ID = b',"approval_ids":[],"break_glass":false,"event_id":'
_RESOURCE = b',"resource":'
_FILE = b',"source_record":{"file":'
_INDEX = b',"index":'
_SOURCE = b',"source":'
_UNRESOLVED_KEY = b',"unresolved":'
_VENDOR_ID = b',"vendor_event_id":'
_SYSTEM = b'},"source_system":'
_TIME_KEY = b',"time":'
_END = b"}"
_UNRESOLVED_THEN_VENDOR = {key: _UNRESOLVED_KEY + value + _VENDOR_ID for key, value in _UNRESOLVED_JSON.items()}


class TypedRecord(msgspec.Struct, gc=False):
    """The members of a CloudTrail record the fast path reads, typed as it needs them (else the file is refused).

    ``None``: absent or null, as ``dict.get`` gives both; a ``Raw`` member is its JSON text
    (empty: absent).
    """

    eventID: str | None = None
    eventName: str | None = None
    eventSource: str | None = None
    awsRegion: str | None = None
    eventTime: str | None = None
    eventCategory: str | None = None
    eventType: str | None = None
    managementEvent: bool | None = None
    errorCode: str | None = None
    userIdentity: msgspec.Raw = msgspec.Raw()
    resources: msgspec.Raw = msgspec.Raw()
    requestParameters: msgspec.Raw = msgspec.Raw()


_DECODER = msgspec.json.Decoder(list[TypedRecord])


@dataclass(frozen=True)
class Rules:
    """The CloudTrail converter's functions the fast path applies."""

    name: str
    insight: OutOfScope
    not_user_data: OutOfScope
    scope: Callable[[dict[str, Any], str, str], OutOfScope | None]
    action: Callable[[str, str], str]
    principals: Callable[[Any, Directory], list[str]]
    resource_arns: Callable[[dict[str, Any]], tuple[list[str], list[str]]]
    groups_of: Callable[[list[str], list[str], Any], list[list[str]]]


Decision = tuple[OutOfScope | None, bytes, bytes]
"""Out of scope, or the bytes up to the actor (``{"action":...,"actor":``) and from ``source_system`` to the time."""
Resolved = list[tuple[bytes | None, bool]]
"""Per resource group: its JSON (None: not user data) and whether the catalogue resolved it."""


def _non_blank(name: str | None, source: str | None, region: str | None) -> bool:
    return (
        name is not None
        and source is not None
        and region is not None
        and bool(name.strip())
        and bool(source.strip())
        and bool(region.strip())
    )


def _named(record: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """A non-empty string ``eventID`` and non-blank strings ``eventName``, ``eventSource``, ``awsRegion``."""
    vendor_id, name = record.get("eventID"), record.get("eventName")
    source, region = record.get("eventSource"), record.get("awsRegion")
    if type(vendor_id) is not str or not vendor_id or type(name) is not str:
        return None
    if type(source) is str and type(region) is str and _non_blank(name, source, region):
        return vendor_id, name, source, region
    return None


def _flags(record: dict[str, Any], category: Any) -> tuple[str | None, bool | None, str | None] | None:
    """``eventCategory``, ``managementEvent`` and ``errorCode``, when each is absent, null or of its type."""
    management, code = record.get("managementEvent"), record.get("errorCode")
    if (
        (category is None or type(category) is str)
        and (management is None or type(management) is bool)
        and (code is None or type(code) is str)
    ):
        return category, management, code
    return None


def _encoded(data: bytes, event_id: str, unresolved: tuple[bool, bool]) -> tuple[bytes, str, tuple[str, ...]]:
    return data, event_id, _UNRESOLVED[unresolved]


def _json(value: Any) -> bytes | None:
    """Canonical bytes of a JSON value holding no float, as an AccessEvent's are made; None if orjson refuses it."""
    try:
        return orjson.dumps(value, option=_CANONICAL)
    except orjson.JSONEncodeError:
        return None


@dataclass
class _Events:
    """What the records converted so far give: events' bytes, ids and (actor resolved, resource resolved), in order,
    and out-of-scope reasons counted."""

    data: list[bytes] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    unresolved: list[tuple[bool, bool]] = field(default_factory=list)
    out_of_scope: Counter[str] = field(default_factory=Counter)


class CloudTrailFast:
    """The fast path of one import: see the module docstring."""

    def __init__(self, enrichment: Enrichment, rules: Rules) -> None:
        self._enrichment = enrichment
        self._rules = rules
        self._prefix = f"{rules.name}:"
        self._id_json = orjson.dumps(self._prefix)[:-1]
        self._source = _SOURCE + orjson.dumps(rules.name)
        self._times = Memo()
        """Event time text -> its JSON."""
        self._decisions = Memo()
        """(category, management, error code, source, name) -> :data:`Decision`."""
        self._named = Memo()
        """(category, management, error code, name, source, region) of a typed record -> :data:`Decision`."""
        self._actors = Memo()
        """orjson bytes of ``userIdentity`` -> (actor JSON, resolved)."""
        self._raw_actors = Memo()
        """JSON text of ``userIdentity`` (a typed record's) -> (actor JSON, resolved)."""
        self._raw_resolved = Memo()
        """(source, region, JSON texts of ``resources`` and ``requestParameters``) -> :data:`Resolved`."""
        self._resources = Memo()
        """(source, region, how many ARNs listed, the ARNs listed, the ARNs requested) -> :data:`Resolved`."""
        self._path: Path | None = None
        self._file = b""

    def __call__(self, raw: RawRecord) -> list[Encoded | OutOfScope] | None:
        record = raw.value
        if type(record) is not dict:
            return None
        category = record.get("eventCategory")
        if category == "Insight" or record.get("eventType") == "AwsCloudTrailInsight":
            return [self._rules.insight]
        named, flags = _named(record), _flags(record, category)
        if named is None or flags is None:
            return None
        vendor_id, name, source, region = named
        time = self._time(record.get("eventTime"))
        decided = self._decide(*flags, name, source)
        if time is None or decided is None:
            return None
        if decided[0] is not None:
            return [decided[0]]
        actor = self._actor(record.get("userIdentity"))
        resolved = self._resolve_arns(record, source, region) if actor is not None else None
        events, file = _Events(), self._file_json(raw.path, raw.index)
        if actor is None or resolved is None or file is None:
            return None
        if not self._events(events, file, raw.index, vendor_id, decided, actor, resolved, time):
            return None
        return self._answer(events, resolved)

    def _answer(self, events: _Events, resolved: Resolved) -> list[Encoded | OutOfScope]:
        """One record's ``events`` as :attr:`~audit.importers.base.Source.convert` orders them: per resource group."""
        made = zip(events.data, events.ids, events.unresolved, strict=True)
        return [
            self._rules.not_user_data if resource is None else Encoded(*_encoded(*next(made)))
            for resource, _ in resolved
        ]

    def _resolve_arns(self, record: dict[str, Any], source: str, region: str) -> Resolved | None:
        try:
            listed, requested = self._rules.resource_arns(record)
        except RecordError:
            return None
        return self._resolve(listed, requested, source, region)

    def whole_file(self, path: Path, keys: tuple[str, ...]) -> FileEvents | None:
        """What :meth:`__call__` gives the records of a one-line array file, added up, with the file read by msgspec
        (:func:`~audit.importers.typed_file.typed_records`); None unless every record is answered."""
        records = typed_records(path, keys, _DECODER)
        if records is None:
            return None
        events, file = _Events(), self._file_json(path, 1)
        if file is None or len(records) >= _SAFE_INDEX:
            return None
        for index, record in enumerate(records, start=1):  # 1 <= index < 2**53, as _file_json requires
            if not self._typed(events, file, index, record):
                return None
        kinds = Counter(events.unresolved)
        unresolved = {
            kind: count
            for kind, count in (
                ("principal", kinds[False, True] + kinds[False, False]),
                ("resource", kinds[True, False] + kinds[False, False]),
            )
            if count
        }
        return FileEvents(len(records), events.data, events.ids, unresolved, events.out_of_scope)

    def _typed(self, events: _Events, file: bytes, index: int, record: TypedRecord) -> bool:
        """:meth:`__call__` of a record whose members it reads are ``record``'s (typed by msgspec), into ``events``."""
        category = record.eventCategory
        if category == "Insight" or record.eventType == "AwsCloudTrailInsight":
            events.out_of_scope[self._rules.insight.reason] += 1
            return True
        vendor_id, source, region = record.eventID, record.eventSource, record.awsRegion
        named = (category, record.managementEvent, record.errorCode, record.eventName, source, region)
        decided = self._named.get(named) or self._decide_named(named)
        time = self._times.get(record.eventTime) or self._time(record.eventTime)
        if not vendor_id or decided is None or time is None or source is None or region is None:
            return False  # (a decision is made only for a non-blank source and region: for mypy)
        if decided[0] is not None:
            events.out_of_scope[decided[0].reason] += 1
            return True
        identity = bytes(record.userIdentity)
        actor = self._raw_actors.get(identity) or self._raw_actor(identity)
        if actor is None:
            return False
        listed, params = bytes(record.resources), bytes(record.requestParameters)
        resolved = self._raw_resolved.get((source, region, listed, params)) or self._raw_resources(
            listed, params, source, region
        )
        return resolved is not None and self._events(events, file, index, vendor_id, decided, actor, resolved, time)

    def _decide_named(
        self, named: tuple[str | None, bool | None, str | None, str | None, str | None, str | None]
    ) -> Decision | None:
        """:meth:`_decide` of a typed record's members, memoised with the check that name, source and region are
        not blank; None (not memoised) when they are, or when :meth:`_decide` declines."""
        category, management, code, name, source, region = named
        if not _non_blank(name, source, region):
            return None
        assert name is not None and source is not None
        decided = self._decide(category, management, code, name, source)
        if decided is not None:
            self._named.remember(
                named, decided, sum(len(part or "") for part in (category, code, name, source, region))
            )
        return decided

    def _events(
        self,
        events: _Events,
        file: bytes,
        index: int,
        vendor_id: str,
        decided: Decision,
        actor: tuple[bytes, bool],
        resolved: Resolved,
        time: bytes,
    ) -> bool:
        """Add the record's events (and its resources that hold no user data) to ``events``; False (nothing added)
        if a part cannot be dumped. ``file``: :meth:`_file_json` of the record's file and index."""
        vendor = _json(vendor_id)
        if vendor is None:
            return False
        # orjson escapes each character on its own: the id's JSON is the prefix's, then the vendor id's.
        first_id = self._id_json + vendor[1:]
        number_bytes = b"%d" % index
        for number, (resource, resource_ok) in enumerate(resolved, start=1):
            if resource is None:
                events.out_of_scope[self._rules.not_user_data.reason] += 1
                continue
            suffix = "" if number == 1 else f"#resource-{number}"
            unresolved = (actor[1], resource_ok)
            events.data.append(
                b"".join(
                    (
                        decided[1],
                        actor[0],
                        _EVENT_ID,
                        first_id if number == 1 else first_id[:-1] + suffix.encode() + b'"',
                        _RESOURCE,
                        resource,
                        file,
                        number_bytes,
                        self._source,
                        _UNRESOLVED_THEN_VENDOR[unresolved],
                        vendor,
                        decided[2],
                        time,
                        _END,
                    )
                )
            )
            events.ids.append(self._prefix + vendor_id + suffix)
            events.unresolved.append(unresolved)
        return True

    def _file_json(self, path: Path, index: Any) -> bytes | None:
        """``,"source_record":{"file":NAME,"index":`` (None: an empty name, or an index RFC 8785 cannot hold)."""
        if path is not self._path:
            self._path = path
            name = _json(path.name)
            self._file = _FILE + name + _INDEX if name is not None and name != b'""' else b""
        if not self._file or type(index) is not int or not 1 <= index < _SAFE_INDEX:
            return None
        return self._file

    def _time(self, when: Any) -> bytes | None:
        """The JSON of the event time, as the ``UtcDatetime`` field writes it; None: not a string it accepts."""
        if type(when) is not str:
            return None
        known = self._times.get(when)
        if known is None:
            try:
                text = _TIME.dump_python(_TIME.validate_python(parse_time(when, "eventTime")), mode="json")
            except (RecordError, ValidationError):
                return None
            known = _json(text)
            if known is None:
                return None
            self._times.remember(when, known, len(when) + len(known))
        return known

    def _decide(
        self, category: str | None, management: bool | None, code: str | None, name: str, source: str
    ) -> Decision | None:
        """Out of scope, or the action and source system; None when the fast path cannot build the event."""
        key = (category, management, code, source, name)
        decided = self._decisions.get(key)
        if decided is None:
            # scope reads these three members (absent and null alike) besides the source and name.
            record = {"eventCategory": category, "managementEvent": management, "errorCode": code}
            out_of_scope, action = self._rules.scope(record, source, name), self._rules.action(source, name)
            system = _json(f"aws-cloudtrail:{source}")
            if system is None or (out_of_scope is None and action not in _ACTIONS):
                return None
            decided = (out_of_scope, _ACTION + orjson.dumps(action) + _ACTOR, _SYSTEM + system + _TIME_KEY)
            size = len(category or "") + len(code or "") + len(source) + len(name) + len(decided[1]) + len(system)
            self._decisions.remember(key, decided, size)
        return decided

    def _actor(self, identity: Any) -> tuple[bytes, bool] | None:
        """The actor's JSON and whether it was resolved; None when not provable."""
        if identity is None:
            key: bytes | None = _NO_IDENTITY
        elif type(identity) is dict:
            try:
                key = orjson.dumps(identity)
            except orjson.JSONEncodeError:
                return None
            if b"null" in key:
                key = None  # NaN and infinities dump as null too: not a key
        else:
            return None
        known = self._actors.get(key) if key is not None else None
        if known is None:
            known = self._actor_of(identity)
            if known is not None and key is not None:
                self._actors.remember(key, known, len(key) + len(known[0]))
        return known

    def _raw_actor(self, text: bytes) -> tuple[bytes, bool] | None:
        """:meth:`_actor` of the ``userIdentity`` whose JSON text is ``text`` (empty: absent), memoised by the text."""
        known = self._raw_actors.get(text)
        if known is None:
            try:
                identity = orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                return None
            if identity is not None and type(identity) is not dict:
                return None
            known = self._actor_of(identity)
            if known is not None:
                self._raw_actors.remember(text, known, len(text) + len(known[0]))
        return known

    def _actor_of(self, identity: dict[str, Any] | None) -> tuple[bytes, bool] | None:
        try:
            actor, ok = self._enrichment.actor(self._rules.principals(identity, self._enrichment.directory))
        except (RecordError, ValidationError):
            return None
        dumped = _json(actor.model_dump(mode="json", exclude_none=True))
        return (dumped, ok) if dumped is not None else None

    def _raw_resources(self, listed: bytes, params: bytes, source: str, region: str) -> Resolved | None:
        """:meth:`_resolve` of the ARNs of a record whose ``resources`` and ``requestParameters`` are these JSON
        texts (empty: absent), memoised by the texts, the source and the region."""
        key = (source, region, listed, params)
        known = self._raw_resolved.get(key)
        if known is None:
            record: dict[str, Any] = {"eventSource": source}
            try:
                if listed:
                    record["resources"] = orjson.loads(listed)
                if params:
                    record["requestParameters"] = orjson.loads(params)
                arns = self._rules.resource_arns(record)
            except (orjson.JSONDecodeError, RecordError):
                return None
            known = self._resolve(*arns, source, region)
            if known is not None:
                size = len(source) + len(region) + len(listed) + len(params)
                self._raw_resolved.remember(key, known, size + sum(len(json or b"") for json, _ in known))
        return known

    def _resolve(self, listed: list[str], requested: list[str], source: str, region: str) -> Resolved | None:
        """Each resource group's JSON (None: not user data) and whether it was resolved; None when not provable."""
        key = (source, region, len(listed), *listed, *requested)
        known = self._resources.get(key)
        if known is None:
            known = []
            for candidates in self._rules.groups_of(listed, requested, source):
                try:
                    resource, ok = self._enrichment.resource(candidates, provider="aws", region=region)
                except ValidationError:
                    return None
                dumped = _json(resource.model_dump(mode="json", exclude_none=True)) if resource is not None else None
                if resource is not None and dumped is None:
                    return None
                known.append((dumped, ok))
            size = sum(map(len, listed)) + sum(map(len, requested)) + len(source) + len(region)
            self._resources.remember(key, known, size + sum(len(json or b"") for json, _ in known))
        return known
