"""Google Workspace Access Transparency records to access events, in both forms Google delivers.

**Reports API activity** (Admin SDK ``activities.list`` with ``applicationName=access_transparency``):
``{"id": {"time", "uniqueQualifier", "applicationName", "customerId"}, "events": [{"type", "name",
"parameters": [{"name", "value" | "multiValue" | "intValue" | "multiIntValue" | "boolValue"}]}]}``.
The id is ``id.uniqueQualifier#N``, the time ``id.time``.

**Cloud Logging entry** (the organisation's ``cloudaudit.googleapis.com%2Faccess_transparency`` log, as
Google's "Viewing Access Transparency logs for Google Workspace" page shows it): ``{"insertId", "timestamp",
"jsonPayload": {"@type": "type.googleapis.com/ccc_hosted_reporting.ActivityProto", "activityId":
{"uniqQualifier", "timeUsec"}, "event": [{"eventType", "eventName", "parameter": [{"name", "value" |
"multiStrValue" | "intValue" | "multiIntValue" | "boolValue"}]}]}}``; a ``protoPayload`` of that ``@type``
is read the same way. The id is ``insertId#N`` (else ``activityId.uniqQualifier#N``), the time
``timestamp`` (else ``activityId.timeUsec``, microseconds). N is the 1-based index of the event.

Parameters, by the names the Reports API appendix "Access Transparency Activity Events" documents
(matched without regard to case; others are ignored): ``ACTOR_HOME_OFFICE`` (the Google staff member's
home office: a country or continent code, ``??`` when unknown; never proof of where they were),
``RESOURCE_NAME`` then ``OWNER_EMAIL`` (what was accessed), ``GSUITE_PRODUCT_NAME`` (the product, in
``source_system``), ``JUSTIFICATIONS`` and ``TICKETS`` (why), ``ACCESS_APPROVAL_REQUEST_IDS`` (approvals).
Workspace names neither the operation nor the physical location: the action is ``unknown`` and the
actor's physical country ``UNKNOWN``, so replay judges the actor as unlocated.

Called by :mod:`audit.importers.gcp_access_transparency`; does not read files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.errors import RecordError
from audit.importers.base import Converted, OutOfScope, RawRecord, build_event, field, parse_epoch, parse_time
from audit.importers.enrichment import Enrichment
from audit.models import country_or_region

NAME = "gcp-access-transparency"
EMPLOYER = "Google LLC"
UNKNOWN_PLACE = "UNKNOWN"
"""A location Google does not give (``??``, or Workspace's physical location): a code that locates no one."""
ACTIVITY_PROTO = "type.googleapis.com/ccc_hosted_reporting.ActivityProto"
VALUE_KEYS = ("value", "multiValue", "multiStrValue", "intValue", "multiIntValue", "boolValue")
"""A parameter's value members: the Reports API's and Cloud Logging's (``multiStrValue``) spellings."""


def place(value: Any, name: str) -> str | None:
    """A country or region code as Google gives it; ``??`` is kept as unknown, never dropped."""
    if value is None:
        return None
    if value == "??":
        return UNKNOWN_PLACE
    try:
        if not isinstance(value, str):
            raise ValueError
        return country_or_region(value)
    except ValueError:
        raise RecordError(f"field {name}: {value!r} is not a country or region code (or ??)") from None


@dataclass(frozen=True)
class _Activity:
    """One Workspace activity in either form: its vendor id, time and events."""

    vendor_id: str
    time: datetime
    events: list[Any]
    parameter_key: str


def is_workspace(record: dict[str, Any]) -> bool:
    """Whether a record is a Workspace Access Transparency activity (either form)."""
    if "events" in record and "jsonPayload" not in record:
        return True
    return _activity_payload(record) is not None


def _activity_payload(record: dict[str, Any]) -> dict[str, Any] | None:
    for key in ("jsonPayload", "protoPayload"):
        payload = record.get(key)
        if isinstance(payload, dict) and payload.get("@type") == ACTIVITY_PROTO:
            return payload
    return None


def _reports_api(record: dict[str, Any]) -> _Activity:
    application = field(record, "id.applicationName", required=False)
    if application not in (None, "access_transparency"):
        raise RecordError(f"id.applicationName {application!r} is not access_transparency")
    qualifier = field(record, "id.uniqueQualifier")
    if not isinstance(qualifier, str | int) or isinstance(qualifier, bool):
        raise RecordError("field id.uniqueQualifier is not a string")
    time = parse_time(field(record, "id.time"), "id.time")
    return _Activity(str(qualifier), time, _events(record, "events"), "parameters")


def _cloud_logging(record: dict[str, Any], payload: dict[str, Any]) -> _Activity:
    log = record.get("logName")
    if log is not None and not (isinstance(log, str) and log.replace("%2F", "/").endswith("/access_transparency")):
        raise RecordError(f"logName {log!r} is not an Access Transparency log")
    vendor_id = record.get("insertId") or field(payload, "activityId.uniqQualifier", required=False)
    if vendor_id is None:
        raise RecordError("missing required field insertId (or jsonPayload.activityId.uniqQualifier)")
    if not isinstance(vendor_id, str | int) or isinstance(vendor_id, bool):
        raise RecordError("field insertId is not a string")
    if record.get("timestamp") is not None:
        time = parse_time(record["timestamp"], "timestamp")
    else:
        micros = field(payload, "activityId.timeUsec")
        if not (isinstance(micros, int) and not isinstance(micros, bool)) and not (
            isinstance(micros, str) and micros.isascii() and micros.isdigit() and len(micros) <= 20
        ):
            raise RecordError(f"field activityId.timeUsec: {micros!r:.40} is not a number of microseconds")
        time = parse_epoch(int(micros), "activityId.timeUsec")
    return _Activity(str(vendor_id), time, _events(payload, "event"), "parameter")


def _events(container: dict[str, Any], key: str) -> list[Any]:
    events = field(container, key)
    if not isinstance(events, list) or not events:
        raise RecordError(f"field {key} is not a non-empty list")
    return events


def parameters(event: Any, key: str = "parameters") -> dict[str, Any]:
    """An event's parameters as upper-case name -> value (the first of :data:`VALUE_KEYS` present)."""
    if not isinstance(event, dict):
        raise RecordError("event entries must be objects")
    found: dict[str, Any] = {}
    listed = event.get(key) or []
    if not isinstance(listed, list):
        raise RecordError(f"field {key} of an event is not a list")
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RecordError(f"{key}[] entries need a name")
        for value_key in VALUE_KEYS:
            if value_key in item:
                found[item["name"].upper()] = item[value_key]
                break
    return found


def _texts(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str) and v]


def _office(params: dict[str, Any]) -> str | None:
    """The home office: one code, ``UNKNOWN`` when the values disagree, ``None`` when not given."""
    offices = set(_texts(params.get("ACTOR_HOME_OFFICE")))
    if len(offices) > 1:
        return UNKNOWN_PLACE
    return place(offices.pop(), "ACTOR_HOME_OFFICE") if offices else None


def workspace_convert(raw: RawRecord, enrichment: Enrichment) -> Iterator[Converted]:
    """One access event per event of a Workspace Access Transparency activity (either form)."""
    record = raw.value
    payload = _activity_payload(record)
    activity = _reports_api(record) if payload is None else _cloud_logging(record, payload)
    for number, event in enumerate(activity.events, start=1):
        params = parameters(event, activity.parameter_key)
        resources = _texts(params.get("RESOURCE_NAME")) + _texts(params.get("OWNER_EMAIL"))
        if not resources:
            yield OutOfScope("names no resource (Workspace)")
            continue
        actor, actor_ok = enrichment.actor(
            [EMPLOYER],
            observed={"employer": EMPLOYER, "office_country": _office(params), "physical_country": UNKNOWN_PLACE},
            defaults={"kind": "contractor"},
        )
        resource, resource_ok = enrichment.resource(resources, provider="other", region=None)
        if resource is None:
            yield OutOfScope("not user data (data catalogue)")
            continue
        reasons = _texts(params.get("JUSTIFICATIONS")) + _texts(params.get("TICKETS"))
        unresolved = [k for k, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok]
        product = ",".join(_texts(params.get("GSUITE_PRODUCT_NAME")))
        yield build_event(
            NAME,
            raw,
            activity.vendor_id,
            suffix=f"#{number}",
            unresolved=unresolved,
            time=activity.time,
            actor=actor,
            action="unknown",
            resource=resource,
            justification="; ".join(reasons) or None,
            approval_ids=_texts(params.get("ACCESS_APPROVAL_REQUEST_IDS")),
            source_system="google-workspace-access-transparency" + (f":{product}" if product else ""),
        )
