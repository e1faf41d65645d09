"""Google Cloud Access Transparency importer: Google staff accesses to access events.

An Access Transparency log entry says where the Google employee was
(``principalOfficeCountry``, ``principalPhysicalLocationCountry``), who employs them
(``principalEmployingEntity``), their job title, why they accessed (``reason[]``),
what they touched (``accesses[].methodName``/``resourceName``) and which Access
Approval requests covered it (``accessApprovals[]``). These map directly onto the
actor's location, the justification and the approval ids; one event is made per
entry of ``accesses[]``. The entries are read as JSON Lines or a JSON array (as
``gcloud logging read --format=json`` writes), plain or gzip.

A country field may hold ``??`` or a continent code such as ``NAM`` or ``ANY``; these
are kept as they are and are never proof of US presence (replay judges such an actor
as unlocated, i.e. foreign). The log names no individual: the actor id is the
employing entity, which approvals name as their requester and the directory may
describe further (kind, team); without a directory entry the actor is a contractor.

Event ids are ``insertId#N`` (N the 1-based index in ``accesses[]``): Cloud Logging's
``insertId`` is unique per entry, while ``eventId`` is shared by every access made under
one justification. A country field that is not a country or region code is a record
error, never a crash. Google Workspace Access Transparency records are read too, in both
of Google's forms (the Reports API ``access_transparency`` activity and the Cloud Logging
``ccc_hosted_reporting.ActivityProto`` entry): see :mod:`audit.importers.gcp_workspace`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from audit.errors import RecordError
from audit.importers.base import (
    Converted,
    OutOfScope,
    RawRecord,
    Source,
    action_for_operation,
    build_event,
    field,
    parse_time,
    text_field,
)
from audit.importers.enrichment import Enrichment
from audit.importers.gcp_workspace import UNKNOWN_PLACE, is_workspace, place, workspace_convert
from audit.models import Actor

NAME = "gcp-access-transparency"
__all__ = ["NAME", "SOURCE", "UNKNOWN_PLACE", "convert"]


_LOCATION = ("principalOfficeCountry", "principalPhysicalLocationCountry", "principalEmployingEntity")


def _location(payload: dict[str, Any]) -> dict[str, Any]:
    nested = payload.get("location")
    source = nested if isinstance(nested, dict) else payload
    values = {name: source.get(name, payload.get(name)) for name in _LOCATION}
    for name, value in values.items():
        if value is not None and not isinstance(value, str):
            raise RecordError(f"field {name} is not a string")
    if not values["principalEmployingEntity"]:
        raise RecordError("missing required field location.principalEmployingEntity")
    return values


def _justification(payload: dict[str, Any]) -> str | None:
    reasons = payload.get("reason") or []
    if not isinstance(reasons, list):
        raise RecordError("field reason is not a list")
    parts = []
    for reason in reasons:
        if not isinstance(reason, dict):
            raise RecordError("reason[] entries must be objects")
        text = ": ".join(str(reason[k]) for k in ("type", "detail") if reason.get(k))
        if text:
            parts.append(text)
    return "; ".join(parts) or None


def _approvals(payload: dict[str, Any]) -> list[str]:
    approvals = payload.get("accessApprovals") or []
    if not isinstance(approvals, list) or not all(isinstance(a, str) and a for a in approvals):
        raise RecordError("field accessApprovals is not a list of approval request names")
    return approvals


def _actor(payload: dict[str, Any], location: dict[str, Any], enrichment: Enrichment) -> tuple[Actor, bool]:
    entity = location["principalEmployingEntity"]
    return enrichment.actor(
        [entity],
        observed={
            "employer": entity,
            "office_country": place(location["principalOfficeCountry"], "principalOfficeCountry"),
            "physical_country": place(location["principalPhysicalLocationCountry"], "principalPhysicalLocationCountry"),
            "role": text_field(payload, "principalJobTitle", required=False),
        },
        defaults={"kind": "contractor"},
    )


def _payload(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The Access Transparency payload and the entry's vendor id (``insertId``, else ``eventId``)."""
    if "jsonPayload" not in record and isinstance(record.get("protoPayload"), dict):
        kind = record["protoPayload"].get("@type")
        raise RecordError(f"protoPayload @type {kind!r} is not an Access Transparency log (a Cloud Audit Log?)")
    payload = field(record, "jsonPayload")
    if not isinstance(payload, dict):
        raise RecordError("field jsonPayload is not an object")
    kind = payload.get("@type", "")
    if not isinstance(kind, str) or not kind.endswith(("TransparencyLog", "AccessTransparencyLog")):
        raise RecordError(f"jsonPayload @type {kind!r} is not an Access Transparency log")
    vendor_id = text_field(record, "insertId", required=False) or text_field(payload, "eventId")
    assert vendor_id is not None
    return payload, vendor_id


def convert(raw: RawRecord, enrichment: Enrichment) -> Iterator[Converted]:
    """One access event per ``accesses[]`` entry (Workspace activities: see :mod:`.gcp_workspace`)."""
    record = raw.value
    if not isinstance(record, dict):
        raise RecordError("record is not a JSON object")
    if is_workspace(record):
        yield from workspace_convert(raw, enrichment)
        return
    payload, vendor_id = _payload(record)
    time = parse_time(field(record, "timestamp"), "timestamp")
    location = _location(payload)
    accesses = field(payload, "accesses")
    if not isinstance(accesses, list) or not accesses:
        raise RecordError("field accesses is not a non-empty list")
    actor, actor_ok = _actor(payload, location, enrichment)
    justification = _justification(payload)
    approvals = _approvals(payload)
    for number, access in enumerate(accesses, start=1):
        method = text_field(access, "methodName")
        name = text_field(access, "resourceName")
        assert method is not None and name is not None
        action = action_for_operation(method.rsplit(".", 1)[-1]) or "unknown"
        resource, resource_ok = enrichment.resource([name], provider="gcp", region=None)
        if resource is None:
            yield OutOfScope("not user data (data catalogue)")
            continue
        unresolved = [k for k, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok]
        yield build_event(
            NAME,
            raw,
            vendor_id,
            suffix=f"#{number}",
            unresolved=unresolved,
            time=time,
            actor=actor,
            action=action,
            resource=resource,
            justification=justification,
            approval_ids=approvals,
            source_system="gcp-access-transparency",
        )


SOURCE = Source(name=NAME, vendor="Google Cloud Access Transparency", array_key=None, convert=convert)
