"""Fast path for replay: typed msgspec decoding and a cache of "this event is clean".

Most events in a real log repeat a few shapes (who, from where, what category, which
store, which approval). This module decodes each verified line with msgspec into
:class:`FastEvent` - the same shape and constraints as :class:`~audit.models.AccessEvent`
- and looks up a verdict keyed on exactly the facts the full engine reads. A cached
*clean* verdict costs a decode and a dict lookup. Everything else - a cache miss, an
event with findings, a proxy event (it needs the whole log), a line msgspec rejects -
goes to pydantic and :class:`~audit.replay.engine.ReplayEngine`, so findings, and
error messages, are produced in one place only. It does not verify logs.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from audit.models import AccessEvent, Finding, LogPosition
from audit.policy import PolicyHistory, PolicyPack
from audit.records import parse_json_line, validate
from audit.replay.approvals import ApprovalSet
from audit.replay.engine import ReplayEngine
from audit.replay.facts import location_or_kind_class

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class FastActor(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Mirror of :class:`audit.models.Actor`."""

    id: _NonEmpty
    kind: Literal["employee", "contractor", "vendor", "advertiser", "service"] = "employee"
    employer: str | None = None
    office_country: str | None = None
    physical_country: str | None = None
    team: str | None = None
    role: str | None = None


class FastResource(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Mirror of :class:`audit.models.Resource`."""

    id: _NonEmpty
    dataset: _NonEmpty
    category: _NonEmpty
    store: _NonEmpty
    provider: Literal["oci", "aws", "gcp", "azure", "own_dc", "other"]
    region: _NonEmpty
    store_kind: Literal["primary", "replica", "backup", "cache"] = "primary"


class FastRecipient(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Mirror of :class:`audit.models.Recipient`."""

    kind: Literal["employee", "law_enforcement", "government", "vendor", "advertiser"]
    id: _NonEmpty
    country: str | None = None


class FastLegalBasis(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Mirror of :class:`audit.models.LegalBasis`."""

    kind: Literal["subpoena", "court_order", "search_warrant", "exigent"]
    reference: _NonEmpty


class FastEvent(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Mirror of :class:`audit.models.AccessEvent` (a test keeps the two in step).

    Imported events (with a ``source_record``) take the full path.
    """

    event_id: _NonEmpty
    time: datetime
    actor: FastActor
    action: Literal["read", "query", "export", "copy", "download", "write", "delete", "disclose"]
    resource: FastResource
    approval_ids: tuple[_NonEmpty, ...] = ()
    on_behalf_of: str | None = None
    recipient: FastRecipient | None = None
    legal_basis: FastLegalBasis | None = None
    justification: str | None = None
    break_glass: bool = False
    source_system: str | None = None


_DECODER = msgspec.json.Decoder(FastEvent)


class FastReplay:
    """Feed raw verified lines to a :class:`ReplayEngine`, skipping work for known-clean shapes."""

    def __init__(self, engine: ReplayEngine, policy: PolicyHistory, approvals: ApprovalSet):
        self.engine = engine
        self._policy = policy
        self._approvals = approvals
        self._verdicts: dict[Hashable, bool] = {}
        self._classes: dict[tuple[int, str, str | None, str | None], str] = {}
        self.fast_hits = 0

    def evaluate_line(self, raw: bytes, segment: str, line: int, path: Path) -> list[Finding]:
        """Findings for one verified line (proxy findings come from ``engine.finish()``)."""
        try:
            event = _DECODER.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return self._full(raw, segment, line, path)
        if needs_full_path(event):
            return self._full(raw, segment, line, path)
        pack = self._policy.at(event.time)
        key = self._key(event, pack)
        verdict = self._verdicts.get(key)
        if verdict is None:
            findings = self._full(raw, segment, line, path)
            self._verdicts[key] = not findings
            return findings
        if not verdict:
            return self._full(raw, segment, line, path)
        actor = event.actor
        ckey = (id(pack), actor.kind, actor.physical_country, actor.office_country)
        cls = self._classes.get(ckey)
        if cls is None:
            cls = self._classes[ckey] = location_or_kind_class(
                actor.kind, actor.physical_country, actor.office_country, pack.config
            )
        self.engine.note_clean(actor.id, event.time, cls, pack.config.name)
        self.fast_hits += 1
        return []

    def _full(self, raw: bytes, segment: str, line: int, path: Path) -> list[Finding]:
        event = validate(AccessEvent, parse_json_line(raw, path=path, line=line), path=path, line=line)
        return self.engine.evaluate(event, LogPosition(segment=segment, line=line))

    def _key(self, e: FastEvent, pack: PolicyPack) -> Hashable:
        """Everything the full engine reads to decide, and nothing else."""
        res, actor, cfg = e.resource, e.actor, pack.config
        day = e.time.astimezone(UTC).date()  # deadlines are UTC dates, as in the engine
        recipient = (e.recipient.kind, e.recipient.country) if e.recipient is not None else None
        return (
            id(pack), actor.kind, actor.physical_country, actor.office_country,
            res.provider, res.region, res.store_kind, res.category, e.action,
            day >= cfg.singapore_backup_deletion_deadline, day >= cfg.own_dc_phase_out,
            recipient, e.legal_basis.kind if e.legal_basis is not None else None,
            self._approvals_key(e) if e.approval_ids else (),
        )

    def _approvals_key(self, e: FastEvent) -> tuple[Hashable, ...]:
        parts: list[Hashable] = []
        justified = bool((e.justification or "").strip())
        for aid in dict.fromkeys(e.approval_ids):
            approval = self._approvals.get(aid)
            if approval is None:
                parts.append((aid,))
                continue
            t = e.time
            phase = (
                approval.revoked_at is not None and t >= approval.revoked_at,
                t < approval.not_before,
                t > approval.not_after,
                len({a.id for a in approval.approvers if a.approved_at <= t}),
            )
            resource_id = e.resource.id if approval.scope.resource_ids else None
            parts.append((aid, e.actor.id, e.resource.dataset, resource_id, justified, phase))
        return tuple(parts)


def needs_full_path(event: FastEvent) -> bool:
    """Events the fast path must hand to pydantic and the engine.

    Proxy events need the whole log; naive times and a disclosure without a
    recipient are rejected by the pydantic model's validators, which msgspec does
    not mirror, so pydantic must see them to report the error.
    """
    recipient = event.recipient
    return (
        event.time.tzinfo is None
        or event.on_behalf_of is not None
        or (recipient is not None and recipient.kind == "employee")
        or (event.action == "disclose" and recipient is None)
    )


def decode(raw: bytes) -> FastEvent:
    """Decode one line with the fast decoder (raises msgspec errors)."""
    return _DECODER.decode(raw)

