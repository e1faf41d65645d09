"""OCSF importer: API Activity (class 6003) and Datastore Activity (class 6005) events.

Reads OCSF events as JSON Lines or a JSON array, plain or gzip (as a SIEM exports
them). ``time`` (epoch milliseconds) is the event time, ``metadata.uid`` the vendor
id (else ``file#record``), ``actor.user.uid``/``name``/``email_addr`` the principal.
API Activity: ``api.operation`` gives the action by verb (else ``activity_id``
1 Create, 2 Read, 3 Update, 4 Delete), ``resources[].uid``/``name`` the resource.
Datastore Activity: ``activity_id`` gives the action (1 Read, 2 Update, 4 Query,
5 Write, 6 Create, 7 Delete, 8 List; 3 Connect and others are out of scope), the
resource is ``database.name/table.name``, ``databucket.name`` or
``resources[].uid``. ``cloud.provider``/``cloud.region`` place an uncatalogued
resource. Failed events (``status_id`` 2) are out of scope. Any other class is an
unknown event shape. OCSF carries no employee location or approval; the directory
supplies the location. ``src_endpoint.location`` (IP geolocation) is not used: an IP
address is not proof of where a person is.
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
from audit.models import Action, Provider

NAME = "ocsf"
API_ACTIVITY = 6003
DATASTORE_ACTIVITY = 6005

_API_ACTIVITIES: dict[int, Action] = {1: "write", 2: "read", 3: "write", 4: "delete"}
_DATASTORE_ACTIVITIES: dict[int, Action] = {1: "read", 2: "write", 4: "query", 5: "write", 6: "write",
                                            7: "delete", 8: "read"}
_PROVIDERS: dict[str, Provider] = {"aws": "aws", "amazon": "aws", "oci": "oci", "oracle": "oci", "gcp": "gcp",
                                   "google": "gcp", "azure": "azure", "microsoft": "azure"}


def _integer(record: dict[str, Any], name: str) -> int:
    value = field(record, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(f"field {name} is not an integer")
    return value


def _principals(record: dict[str, Any]) -> list[str]:
    found = [v for n in ("uid", "name", "email_addr")
             if isinstance(v := field(record, f"actor.user.{n}", required=False), str) and v]
    if not found:
        raise RecordError("names no principal (actor.user.uid, name or email_addr)")
    return found


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
    if not found:
        raise RecordError("names no resource (resources[], database, table or databucket)")
    return list(dict.fromkeys(found))


def _action(record: dict[str, Any], class_uid: int, activity: int) -> Action | None:
    if class_uid == API_ACTIVITY:
        operation = text_field(record, "api.operation", required=False)
        by_verb = action_for_operation(operation) if operation else None
        return by_verb or _API_ACTIVITIES.get(activity)
    return _DATASTORE_ACTIVITIES.get(activity)


def _provider(record: dict[str, Any]) -> Provider:
    name = (text_field(record, "cloud.provider", required=False) or "").lower()
    return next((p for key, p in _PROVIDERS.items() if name.startswith(key)), "other")


def convert(raw: RawRecord, enrichment: Enrichment) -> Iterator[Converted]:
    """One access event per API or Datastore Activity event."""
    record = raw.value
    if not isinstance(record, dict):
        raise RecordError("record is not a JSON object")
    class_uid = _integer(record, "class_uid")
    if class_uid not in (API_ACTIVITY, DATASTORE_ACTIVITY):
        raise RecordError(f"class_uid {class_uid} is not API Activity (6003) or Datastore Activity (6005)")
    vendor_id = text_field(record, "metadata.uid", required=False) or f"{raw.path.name}#{raw.index}"
    time = parse_time(field(record, "time"), "time")
    activity = _integer(record, "activity_id")
    if record.get("status_id") == 2:
        yield OutOfScope("failed request")
        return
    action = _action(record, class_uid, activity)
    if action is None:
        if class_uid == DATASTORE_ACTIVITY and activity in (3, 9, 10, 99, 0):
            yield OutOfScope(f"datastore activity {activity} is not a data access")
            return
        raise RecordError(f"activity_id {activity} of class {class_uid} is not a known access")
    actor, actor_ok = enrichment.actor(_principals(record))
    resource, resource_ok = enrichment.resource(
        _resource_ids(record, class_uid), provider=_provider(record),
        region=text_field(record, "cloud.region", required=False),
    )
    if resource is None:
        yield OutOfScope("not user data (data catalogue)")
        return
    product = text_field(record, "metadata.product.name", required=False)
    unresolved = [kind for kind, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok]
    yield build_event(
        NAME, raw, vendor_id, unresolved=unresolved, time=time, actor=actor, action=action,
        resource=resource, source_system=f"ocsf:{class_uid}" + (f":{product}" if product else ""),
    )


SOURCE = Source(name=NAME, vendor="OCSF (API Activity, Datastore Activity)", array_key=None, convert=convert)
