"""OCI Audit importer: Audit events (CloudEvents) to access events.

Accepts the CloudEvents 0.1 shape of the Audit API (``eventId``, ``eventTime``,
``eventType``) and the CloudEvents 1.0 shape of OCI Logging (``id``, ``time``,
``type``), bare or wrapped in a Logging search result's ``logContent``, as JSON
Lines or a JSON array, plain or gzip. ``data.identity.principalName`` (then
``principalId``) is the principal, ``data.resourceId`` (then ``data.request.path``,
then ``compartmentName/resourceName``) the resource, ``data.eventName`` the action
(by verb, else the HTTP method ``data.request.action``). Failed requests (response
status 400 or more) are out of scope. OCI Audit records no employee location,
justification, approval or region of the resource: the directory and the catalogue
supply them; an uncatalogued resource's region is ``unknown``.
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
from audit.models import Action

NAME = "oci-audit"

_METHODS: dict[str, Action] = {"GET": "read", "HEAD": "read", "POST": "write", "PUT": "write",
                               "PATCH": "write", "DELETE": "delete"}


def _first(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = field(record, name, required=False)
        if value is not None:
            return value
    raise RecordError(f"missing required field {' or '.join(names)}")


def _action(data: dict[str, Any]) -> Action:
    name = text_field(data, "eventName", required=False)
    action = action_for_operation(name) if name else None
    if action is not None:
        return action
    method = text_field(data, "request.action", required=False)
    if method and method.upper() in _METHODS:
        return _METHODS[method.upper()]
    raise RecordError(f"cannot tell the action of event {name!r} (request.action {method!r})")


def _candidates(data: dict[str, Any], names: tuple[str, ...], what: str) -> list[str]:
    found = [v for n in names if isinstance(v := field(data, n, required=False), str) and v]
    if not found:
        raise RecordError(f"names no {what} ({', '.join('data.' + n for n in names)})")
    return found


def convert(raw: RawRecord, enrichment: Enrichment) -> Iterator[Converted]:
    """One access event per audit event; failed requests are out of scope."""
    record = raw.value
    if not isinstance(record, dict):
        raise RecordError("record is not a JSON object")
    if isinstance(record.get("logContent"), dict):
        record = record["logContent"]
    event_id = _first(record, "eventId", "eventID", "id")
    event_type = _first(record, "eventType", "type")
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        raise RecordError("event id and type must be strings")
    if not event_type.startswith("com.oraclecloud."):
        raise RecordError(f"event type {event_type!r} is not an OCI Audit event (com.oraclecloud.*)")
    time = parse_time(_first(record, "eventTime", "time"), "eventTime")
    data = field(record, "data")
    if not isinstance(data, dict):
        raise RecordError("field data is not an object")
    status = field(data, "response.status", required=False)
    if status is not None and str(status).isdigit() and int(status) >= 400:
        yield OutOfScope("failed request")
        return
    principals = _candidates(data, ("identity.principalName", "identity.principalId"), "principal")
    resources = _candidates(data, ("resourceId", "request.path"), "resource")
    compartment, name = data.get("compartmentName"), data.get("resourceName")
    if isinstance(compartment, str) and isinstance(name, str):
        resources.append(f"{compartment}/{name}")
    actor, actor_ok = enrichment.actor(principals)
    resource, resource_ok = enrichment.resource(resources, provider="oci", region=None)
    if resource is None:
        yield OutOfScope("not user data (data catalogue)")
        return
    unresolved = [kind for kind, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok]
    yield build_event(
        NAME, raw, event_id, unresolved=unresolved, time=time, actor=actor, action=_action(data),
        resource=resource, source_system=f"oci-audit:{event_type}",
    )


SOURCE = Source(name=NAME, vendor="Oracle Cloud Infrastructure Audit", array_key=None, convert=convert)
