"""OCI Audit importer: Audit events (CloudEvents) to access events.

Accepts the CloudEvents 0.1 shape of the Audit API (``eventId``, ``eventTime``,
``eventType``), the CloudEvents 1.0 shape of OCI Logging (``id``, ``time``, ``type``),
bare, wrapped in a Logging search result's ``logContent``, or as a whole Logging
search response (``{"results": [{"data": {"logContent": ...}}], "summary": ...}``,
as the SearchLogs API returns it), and the OCI CLI's
``oci audit event list`` output (``{"data": [...]}`` with hyphenated keys such as
``event-id`` and ``principal-name``, read as their camelCase names), in any framing
:func:`~audit.importers.base.iter_records` detects. The string ``"None"`` (as some
exporters write a null) counts as absent.

Data plane vs control plane (see docs/sources.md): the operations in
:data:`DATA_PLANE` (Object Storage object reads and writes, NoSQL rows, Vault secret
bundles, Streaming messages, Functions invocations) and any request on an object path
``/n/NS/b/BUCKET/o/...`` are accesses to data. Every other operation (``GetInstance``,
``ListBuckets``, ``LaunchInstance``...) is control plane and out of scope, unless the
data catalogue marks its resource as user data.

``data.identity.principalName`` (then ``principalId``) is the principal; a record with
neither is imported with an unresolved actor. ``data.resourceId`` (then
``data.request.path``, then ``compartmentName/resourceName``) is the resource; its
region is the catalogue's, else the region the resource's OCID names
(``ocid1.bucket.oc1.iad...`` -> ``us-ashburn-1``), else ``unknown``. Failed requests
(status 400 or more) are out of scope. OCI Audit records no employee location,
justification or approval.
"""

from __future__ import annotations

import re
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
NO_PRINCIPAL = "(no principal)"

_METHODS: dict[str, Action] = {
    "GET": "read",
    "HEAD": "read",
    "POST": "write",
    "PUT": "write",
    "PATCH": "write",
    "DELETE": "delete",
}

DATA_PLANE: dict[str, Action] = {
    # Object Storage: object-level operations (bucket and namespace operations are control plane).
    "GetObject": "read",
    "HeadObject": "read",
    "ListObjects": "read",
    "ListObjectVersions": "read",
    "PutObject": "write",
    "CopyObject": "copy",
    "RenameObject": "write",
    "CreateMultipartUpload": "write",
    "UploadPart": "write",
    "CommitMultipartUpload": "write",
    "AbortMultipartUpload": "delete",
    "RestoreObjects": "write",
    "UpdateObjectStorageTier": "write",
    "DeleteObject": "delete",
    # NoSQL Database rows and queries.
    "GetRow": "read",
    "UpdateRow": "write",
    "DeleteRow": "delete",
    "Query": "query",
    # Vault secret contents, Streaming messages, Functions invocations.
    "GetSecretBundle": "read",
    "GetSecretBundleByName": "read",
    "GetMessages": "read",
    "PutMessages": "write",
    "InvokeFunction": "unknown",
}
"""OCI data-plane operations (``data.eventName``) and their action."""

REGION_KEYS: dict[str, str] = {
    "iad": "us-ashburn-1",
    "phx": "us-phoenix-1",
    "sjc": "us-sanjose-1",
    "ord": "us-chicago-1",
    "yyz": "ca-toronto-1",
    "yul": "ca-montreal-1",
    "gru": "sa-saopaulo-1",
    "vcp": "sa-vinhedo-1",
    "scl": "sa-santiago-1",
    "bog": "sa-bogota-1",
    "vap": "sa-valparaiso-1",
    "mty": "mx-monterrey-1",
    "qro": "mx-queretaro-1",
    "lhr": "uk-london-1",
    "cwl": "uk-cardiff-1",
    "fra": "eu-frankfurt-1",
    "ams": "eu-amsterdam-1",
    "zrh": "eu-zurich-1",
    "mad": "eu-madrid-1",
    "mrs": "eu-marseille-1",
    "lin": "eu-milan-1",
    "cdg": "eu-paris-1",
    "arn": "eu-stockholm-1",
    "mtz": "il-jerusalem-1",
    "jed": "me-jeddah-1",
    "dxb": "me-dubai-1",
    "auh": "me-abudhabi-1",
    "jnb": "af-johannesburg-1",
    "nrt": "ap-tokyo-1",
    "kix": "ap-osaka-1",
    "icn": "ap-seoul-1",
    "yny": "ap-chuncheon-1",
    "bom": "ap-mumbai-1",
    "hyd": "ap-hyderabad-1",
    "sin": "ap-singapore-1",
    "xsp": "ap-singapore-2",
    "syd": "ap-sydney-1",
    "mel": "ap-melbourne-1",
}
"""OCI region keys as they appear in OCIDs (three letters) and the region they name."""

_OBJECT_PATH = re.compile(r"^/n/[^/]+/b/[^/]+/o/.+")
_REGION_NAME = re.compile(r"^[a-z]+-[a-z]+-[0-9]+$")


def _camel(key: str) -> str:
    head, *rest = key.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def normalise(value: Any) -> Any:
    """Hyphenated keys (the OCI CLI's) as camelCase; the string ``"None"`` as null."""
    if isinstance(value, dict):
        return {_camel(k) if isinstance(k, str) else k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return None if value == "None" else value


def region_from_ocid(ocid: str) -> str | None:
    """The region an OCID names (``ocid1.TYPE.REALM.REGION.ID``), if any."""
    parts = ocid.split(".")
    if len(parts) < 5 or parts[0] != "ocid1" or not parts[3]:
        return None
    key = parts[3].lower()
    return REGION_KEYS.get(key) or (key if _REGION_NAME.match(key) else None)


def _first(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = field(record, name, required=False)
        if value is not None:
            return value
    raise RecordError(f"missing required field {' or '.join(names)}")


def _action(data: dict[str, Any], name: str | None) -> Action:
    if name in DATA_PLANE:
        return DATA_PLANE[name]
    action = action_for_operation(name) if name else None
    if action is not None:
        return action
    method = text_field(data, "request.action", required=False)
    return _METHODS.get((method or "").upper(), "unknown")


def _strings(data: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [v for n in names if isinstance(v := field(data, n, required=False), str) and v]


def _resources(data: dict[str, Any]) -> list[str]:
    resources = _strings(data, ("resourceId", "request.path"))
    compartment, name = data.get("compartmentName"), data.get("resourceName")
    if isinstance(compartment, str) and isinstance(name, str):
        resources.append(f"{compartment}/{name}")
    if not resources:
        raise RecordError("names no resource (data.resourceId, data.request.path)")
    return resources


def is_data_plane(data: dict[str, Any], name: str | None) -> bool:
    """Whether the operation reads or writes data (the table, or a request on an object path)."""
    path = text_field(data, "request.path", required=False) or ""
    return name in DATA_PLANE or bool(_OBJECT_PATH.match(path))


def _region(resources: list[str]) -> str | None:
    return next((r for r in map(region_from_ocid, resources) if r), None)


def _envelope(raw: RawRecord) -> tuple[dict[str, Any], str, str]:
    record = raw.value
    if not isinstance(record, dict):
        raise RecordError("record is not a JSON object")
    record = normalise(record)
    search_result = record.get("data")
    if isinstance(search_result, dict) and isinstance(search_result.get("logContent"), dict):
        record = search_result  # one of a Logging search response's results[]: {"data": {"logContent": ...}}
    if isinstance(record.get("logContent"), dict):
        record = record["logContent"]
    event_id = _first(record, "eventId", "eventID", "id")
    event_type = _first(record, "eventType", "type")
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        raise RecordError("event id and type must be strings")
    if not event_type.startswith("com.oraclecloud."):
        raise RecordError(f"event type {event_type!r} is not an OCI Audit event (com.oraclecloud.*)")
    return record, event_id, event_type


def convert(raw: RawRecord, enrichment: Enrichment) -> Iterator[Converted]:
    """One access event per data-plane audit event; control plane and failed requests are out of scope."""
    record, event_id, event_type = _envelope(raw)
    time = parse_time(_first(record, "eventTime", "time"), "eventTime")
    data = field(record, "data")
    if not isinstance(data, dict):
        raise RecordError("field data is not an object")
    status = field(data, "response.status", required=False)
    if status is not None and str(status).isdigit() and int(status) >= 400:
        yield OutOfScope("failed request")
        return
    name = text_field(data, "eventName", required=False)
    resources = _resources(data)
    entry = enrichment.catalogue.find(resources)
    if not is_data_plane(data, name) and (entry is None or not entry.user_data):
        yield OutOfScope("control-plane operation")
        return
    actor, actor_ok = enrichment.actor(
        _strings(data, ("identity.principalName", "identity.principalId")) or [NO_PRINCIPAL]
    )
    resource, resource_ok = enrichment.resource(resources, provider="oci", region=_region(resources))
    if resource is None:
        yield OutOfScope("not user data (data catalogue)")
        return
    unresolved = [kind for kind, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok]
    yield build_event(
        NAME,
        raw,
        event_id,
        unresolved=unresolved,
        time=time,
        actor=actor,
        action=_action(data, name),
        resource=resource,
        source_system=f"oci-audit:{event_type}",
    )


SOURCE = Source(name=NAME, vendor="Oracle Cloud Infrastructure Audit", array_key="results", convert=convert)
"""``results`` is the Logging search response's array; the CLI's ``data`` is one of the common wrapper keys."""
