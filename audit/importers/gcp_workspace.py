"""Google Workspace Access Transparency records (Admin SDK Reports API) to access events.

A record is one Reports API activity of the ``access_transparency`` application:
``id.time``, ``id.uniqueQualifier`` and ``events[]``, each event with ``parameters[]``
(``name`` plus ``value``, ``multiValue`` or ``boolValue``). Parameters used:
``ACTOR_HOME_OFFICE`` (the Google staff member's home office: a country or region
code, never proof of where they were), ``RESOURCE_NAME`` and ``OWNER_EMAIL`` (what was
accessed), ``PRODUCT``, ``JUSTIFICATIONS`` and ``TICKETS`` (why),
``ACCESS_APPROVAL_REQUEST_IDS`` (approvals). Workspace names neither the operation nor
the physical location: the action is ``unknown`` and the actor's physical country is
``UNKNOWN``, so replay judges the actor as unlocated (a home office is not a whereabouts).

Called by :mod:`audit.importers.gcp_access_transparency` for records with ``events``;
does not read files.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from audit.errors import RecordError
from audit.importers.base import Converted, OutOfScope, RawRecord, build_event, field, parse_time, text_field
from audit.importers.enrichment import Enrichment

NAME = "gcp-access-transparency"
EMPLOYER = "Google LLC"
UNKNOWN_PLACE = "UNKNOWN"
"""A location Google does not give (``??``, or Workspace's physical location): a code that locates no one."""


def parameters(event: Any) -> dict[str, Any]:
    """An event's ``parameters[]`` as name -> value (``value``, ``multiValue``, ``intValue`` or ``boolValue``)."""
    if not isinstance(event, dict):
        raise RecordError("events[] entries must be objects")
    found: dict[str, Any] = {}
    listed = event.get("parameters") or []
    if not isinstance(listed, list):
        raise RecordError("field events[].parameters is not a list")
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RecordError("events[].parameters[] entries need a name")
        for key in ("value", "multiValue", "intValue", "boolValue"):
            if key in item:
                found[item["name"]] = item[key]
                break
    return found


def _texts(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str) and v]


def workspace_convert(raw: RawRecord, enrichment: Enrichment) -> Iterator[Converted]:
    """One access event per ``events[]`` entry of a Workspace Access Transparency activity."""
    record = raw.value
    application = field(record, "id.applicationName", required=False)
    if application not in (None, "access_transparency"):
        raise RecordError(f"id.applicationName {application!r} is not access_transparency")
    qualifier = field(record, "id.uniqueQualifier")
    time = parse_time(field(record, "id.time"), "id.time")
    events = field(record, "events")
    if not isinstance(events, list) or not events:
        raise RecordError("field events is not a non-empty list")
    for number, event in enumerate(events, start=1):
        params = parameters(event)
        resources = _texts(params.get("RESOURCE_NAME")) + _texts(params.get("OWNER_EMAIL"))
        if not resources:
            yield OutOfScope("names no resource (Workspace)")
            continue
        office = text_field(params, "ACTOR_HOME_OFFICE", required=False)
        actor, actor_ok = enrichment.actor(
            [EMPLOYER],
            observed={"employer": EMPLOYER, "office_country": office, "physical_country": UNKNOWN_PLACE},
            defaults={"kind": "contractor"},
        )
        resource, resource_ok = enrichment.resource(resources, provider="other", region=None)
        if resource is None:
            yield OutOfScope("not user data (data catalogue)")
            continue
        reasons = _texts(params.get("JUSTIFICATIONS")) + _texts(params.get("TICKETS"))
        unresolved = [k for k, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok]
        product = text_field(params, "PRODUCT", required=False)
        yield build_event(
            NAME,
            raw,
            str(qualifier),
            suffix=f"#{number}",
            unresolved=unresolved,
            time=time,
            actor=actor,
            action="unknown",
            resource=resource,
            justification="; ".join(reasons) or None,
            approval_ids=_texts(params.get("ACCESS_APPROVAL_REQUEST_IDS")),
            source_system="google-workspace-access-transparency" + (f":{product}" if product else ""),
        )
