"""OCSF importer: API Activity and Datastore Activity events, OCSF 1.0.0-rc.2 through 1.x.

Reads OCSF events in any framing :func:`~audit.importers.base.iter_records` detects,
including the Parquet files of Amazon Security Lake (with the ``parquet`` extra).
``time`` is the event time: epoch seconds, milliseconds or microseconds (told by
magnitude and range-checked) or RFC 3339 text. ``metadata.uid`` is the vendor id
(else ``file#record``); ``actor.user.uid``/``uuid``/``name``/``email_addr`` the principal
(a record with none is imported with an unresolved actor; the ``name`` of an
``AssumedRole`` user is its caller-chosen session name and is not used).

Classes: API Activity is 6003, and 3005 in 1.0.0-rc.2 (Security Lake v1; 3005 is
another class from 1.0.0 on); Datastore Activity is 6005. Every other class is out of
scope, never fatal. API Activity mapped from CloudTrail (``metadata.product.name``
CloudTrail) is a data access only for the data-event operations of
:mod:`audit.importers.cloudtrail_events` (management calls are out of scope); other API
Activity gets its action from ``api.operation`` by verb, else ``activity_id`` (1 Create,
2 Read, 3 Update, 4 Delete); ``activity_id`` 0 or 99 with no known verb is out of scope.
Datastore Activity: ``activity_id`` gives the action (1 Read, 2 Update, 4 Query, 5 Write,
6 Create, 7 Delete, 8 List; 3 Connect and others are out of scope), the resource is
``database.name/table.name``, ``databucket.name`` or ``resources[].uid``/``name``. An
event naming no resource is out of scope. ``cloud.provider``/``cloud.region`` place an
uncatalogued resource. Failed events (``status_id`` 2 or ``status`` Failure) are out of
scope. OCSF carries no employee location or approval; ``src_endpoint.location`` (IP
geolocation) is not used: an IP address is not proof of where a person is.
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
from audit.importers.cloudtrail_events import data_action, is_data_event
from audit.importers.enrichment import Enrichment
from audit.models import Action, Provider

NAME = "ocsf"
API_ACTIVITY = 6003
API_ACTIVITY_RC2 = 3005
DATASTORE_ACTIVITY = 6005
NO_PRINCIPAL = "(no principal)"

_API_ACTIVITIES: dict[int, Action] = {1: "write", 2: "read", 3: "write", 4: "delete"}
_DATASTORE_ACTIVITIES: dict[int, Action] = {
    1: "read",
    2: "write",
    4: "query",
    5: "write",
    6: "write",
    7: "delete",
    8: "read",
}
_PROVIDERS: dict[str, Provider] = {
    "aws": "aws",
    "amazon": "aws",
    "oci": "oci",
    "oracle": "oci",
    "gcp": "gcp",
    "google": "gcp",
    "azure": "azure",
    "microsoft": "azure",
}


def _integer(record: dict[str, Any], name: str) -> int:
    value = field(record, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(f"field {name} is not an integer")
    return value


def event_class(record: dict[str, Any]) -> int | None:
    """API_ACTIVITY or DATASTORE_ACTIVITY for the classes imported, None for any other class."""
    class_uid = _integer(record, "class_uid")
    version = text_field(record, "metadata.version", required=False) or ""
    if class_uid == API_ACTIVITY_RC2 and version.startswith("1.0.0-rc"):
        return API_ACTIVITY
    return class_uid if class_uid in (API_ACTIVITY, DATASTORE_ACTIVITY) else None


def _principals(record: dict[str, Any]) -> list[str]:
    names = (
        ("uid", "uuid", "email_addr")
        if field(record, "actor.user.type", required=False) == "AssumedRole"
        else ("uid", "uuid", "name", "email_addr")
    )
    found = [v for n in names if isinstance(v := field(record, f"actor.user.{n}", required=False), str) and v]
    return list(dict.fromkeys(found)) or [NO_PRINCIPAL]


def _resource_ids(record: dict[str, Any], class_uid: int) -> list[str]:
    found: list[str] = []
    if class_uid == DATASTORE_ACTIVITY:
        database = text_field(record, "database.name", required=False)
        table = text_field(record, "table.name", required=False)
        if database and table:
            found.append(f"{database}/{table}")
        found += [v for v in (database, text_field(record, "databucket.name", required=False)) if v]
    resources = record.get("resources") or []
    if not isinstance(resources, list):
        raise RecordError("field resources is not a list")
    for item in resources:
        if isinstance(item, dict):
            found += [v for k in ("uid", "name") if isinstance(v := item.get(k), str) and v]
    return list(dict.fromkeys(found))


def _unmapped(record: dict[str, Any], key: str) -> Any:
    """A value of ``unmapped``: an object in JSON, a list of ``[key, value]`` pairs in Parquet."""
    unmapped = record.get("unmapped")
    if isinstance(unmapped, dict):
        return unmapped.get(key)
    if isinstance(unmapped, list):
        return next((p[1] for p in unmapped if isinstance(p, list | tuple) and len(p) == 2 and p[0] == key), None)
    return None


def _api_action(record: dict[str, Any], activity: int) -> Action | OutOfScope:
    operation = text_field(record, "api.operation", required=False) or ""
    service = text_field(record, "api.service.name", required=False) or ""
    if text_field(record, "metadata.product.name", required=False) == "CloudTrail":
        category = _unmapped(record, "eventCategory")
        if category not in (None, "Data") or (category is None and not is_data_event(service, operation)):
            return OutOfScope(f"{category or 'Management'} event")
        return data_action(service, operation)
    by_verb = action_for_operation(operation[:1].upper() + operation[1:]) if operation else None
    action = by_verb or _API_ACTIVITIES.get(activity)
    return action if action is not None else OutOfScope(f"API activity {activity} is not a data access")


def _action(record: dict[str, Any], class_uid: int, activity: int) -> Action | OutOfScope:
    if class_uid == API_ACTIVITY:
        return _api_action(record, activity)
    action = _DATASTORE_ACTIVITIES.get(activity)
    return action if action is not None else OutOfScope(f"datastore activity {activity} is not a data access")


def _provider(record: dict[str, Any]) -> Provider:
    name = (text_field(record, "cloud.provider", required=False) or "").lower()
    return next((p for key, p in _PROVIDERS.items() if name.startswith(key)), "other")


def _failed(record: dict[str, Any]) -> bool:
    return record.get("status_id") == 2 or record.get("status") == "Failure"


def convert(raw: RawRecord, enrichment: Enrichment) -> Iterator[Converted]:
    """One access event per API or Datastore Activity event that touches data."""
    record = raw.value
    if not isinstance(record, dict):
        raise RecordError("record is not a JSON object")
    class_uid = event_class(record)
    vendor_id = text_field(record, "metadata.uid", required=False) or f"{raw.path.name}#{raw.index}"
    time = parse_time(field(record, "time"), "time")
    activity = _integer(record, "activity_id")
    if class_uid is None:
        yield OutOfScope(f"OCSF class {record['class_uid']} is not API or Datastore Activity")
        return
    if _failed(record):
        yield OutOfScope("failed request")
        return
    action = _action(record, class_uid, activity)
    resources = _resource_ids(record, class_uid)
    if isinstance(action, OutOfScope) or not resources:
        yield action if isinstance(action, OutOfScope) else OutOfScope("names no resource")
        return
    actor, actor_ok = enrichment.actor(_principals(record))
    resource, resource_ok = enrichment.resource(
        resources,
        provider=_provider(record),
        region=text_field(record, "cloud.region", required=False),
    )
    if resource is None:
        yield OutOfScope("not user data (data catalogue)")
        return
    product = text_field(record, "metadata.product.name", required=False)
    unresolved = [kind for kind, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok]
    yield build_event(
        NAME,
        raw,
        vendor_id,
        unresolved=unresolved,
        time=time,
        actor=actor,
        action=action,
        resource=resource,
        source_system=f"ocsf:{class_uid}" + (f":{product}" if product else ""),
    )


SOURCE = Source(name=NAME, vendor="OCSF (API Activity, Datastore Activity)", array_key=None, convert=convert)
