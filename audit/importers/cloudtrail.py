"""AWS CloudTrail importer: ``{"Records": [...]}`` log files (plain or gzip) to access events.

Each data event becomes one access event: ``eventTime`` is its time, ``eventName``
its action (by verb: ``GetObject`` -> read, ``SelectObjectContent`` -> query,
``CopyObject`` -> copy, ``PutObject`` -> write, ``DeleteObject`` -> delete),
``resources[].ARN`` (most specific first) or ``requestParameters.bucketName``/``key``
its resource, ``awsRegion`` the region of an uncatalogued resource, and
``userIdentity`` (``arn``, the role session name, ``userName``,
``onBehalfOf.userId``, ``principalId``, ``invokedBy``, in that order) the principal
looked up in the people directory. Management and Insights events, and failed
requests (``errorCode``), are out of scope (counted, not sealed). CloudTrail records
no employee location, justification or approval: the directory supplies the
location; approvals cannot be linked.

Digest validation is :mod:`audit.importers.cloudtrail_digest`; this module only parses.
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

NAME = "cloudtrail"


def _principals(identity: Any) -> list[str]:
    if not isinstance(identity, dict):
        raise RecordError("field userIdentity is not an object")
    candidates: list[str] = []
    arn = identity.get("arn")
    if isinstance(arn, str) and arn:
        candidates.append(arn)
        if identity.get("type") == "AssumedRole" and "/" in arn:
            candidates.append(arn.rsplit("/", 1)[1])  # the role session name, often the person's login
    for dotted in ("userName", "onBehalfOf.userId", "principalId", "invokedBy"):
        value = field(identity, dotted, required=False)
        if isinstance(value, str) and value:
            candidates.append(value)
    if not candidates:
        raise RecordError("userIdentity names no principal (arn, userName, principalId or invokedBy)")
    return list(dict.fromkeys(candidates))


def _resources(record: dict[str, Any]) -> list[str]:
    arns: list[str] = []
    listed = record.get("resources")
    if listed is not None:
        if not isinstance(listed, list):
            raise RecordError("field resources is not a list")
        for number, item in enumerate(listed):
            arn = item.get("ARN") if isinstance(item, dict) else None
            if not isinstance(arn, str) or not arn:
                raise RecordError(f"resources[{number}] has no ARN")
            arns.append(arn)
    params = record.get("requestParameters")
    if isinstance(params, dict) and isinstance(params.get("bucketName"), str):
        key = params.get("key")
        arns.append(f"arn:aws:s3:::{params['bucketName']}" + (f"/{key}" if isinstance(key, str) else ""))
    if not arns:
        raise RecordError("names no resource (resources[] or requestParameters.bucketName)")
    return sorted(dict.fromkeys(arns), key=len, reverse=True)


def _scope(record: dict[str, Any]) -> OutOfScope | None:
    if record.get("errorCode"):
        return OutOfScope("failed request")
    category = record.get("eventCategory")
    if category is not None:
        return None if category == "Data" else OutOfScope(f"{category} event")
    if record.get("managementEvent") is False:
        return None
    return OutOfScope("Management event")


def convert(raw: RawRecord, enrichment: Enrichment) -> Iterator[Converted]:
    """One access event per data event; management and Insights events are out of scope."""
    record = raw.value
    if not isinstance(record, dict):
        raise RecordError("record is not a JSON object")
    event_id = text_field(record, "eventID")
    assert event_id is not None
    time = parse_time(field(record, "eventTime"), "eventTime")
    name = text_field(record, "eventName")
    source = text_field(record, "eventSource")
    region = text_field(record, "awsRegion")
    assert name is not None and source is not None
    out_of_scope = _scope(record)
    if out_of_scope is not None:
        yield out_of_scope
        return
    action = action_for_operation(name)
    if action is None:
        raise RecordError(f"data event {name!r} is not a known access operation")
    actor, actor_ok = enrichment.actor(_principals(field(record, "userIdentity")))
    resource, resource_ok = enrichment.resource(_resources(record), provider="aws", region=region)
    if resource is None:
        yield OutOfScope("not user data (data catalogue)")
        return
    unresolved = [kind for kind, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok]
    yield build_event(
        NAME, raw, event_id, unresolved=unresolved, time=time, actor=actor, action=action,
        resource=resource, source_system=f"aws-cloudtrail:{source}",
    )


SOURCE = Source(name=NAME, vendor="AWS CloudTrail", array_key="Records", convert=convert)
