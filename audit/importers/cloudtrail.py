"""AWS CloudTrail importer: CloudTrail records (any framing, plain or gzip) to access events.

Data vs management: ``eventCategory`` decides when present, else ``managementEvent``,
else the table of data-event operations per event source in
:mod:`audit.importers.cloudtrail_events` (records before eventVersion 1.06 carry
neither field). Management and Insights events are out of scope (counted, not sealed).

Every data event is imported: its action comes from the table, else the operation's
verb (``GetObject`` -> read), else ``unknown``, which the policy judges like any other
action. Success: ``errorCode`` absent, empty or an HTTP 2xx status (some services log
``"200"``); any other ``errorCode`` is a failed request, out of scope.

Resources: ``resources[].ARN`` and ``requestParameters`` (``bucketName``/``key``, and
``x-amz-copy-source`` for CopyObject/UploadPartCopy). A record naming several objects
yields one event per object (the first keeps the record's id, the others get
``#resource-N``), so the source of a copy is judged as well as its destination.

Principal: an IAM user, root or federated identity by its ARN and names. An
``AssumedRole`` session resolves by its role's ARN (``sessionContext.sessionIssuer``):
the directory row of the role is the actor, unless that row marks the role as
identity-carrying (``carries_identity``), when the person is looked up by the session
name (roles of IAM Identity Center or SAML federation, whose session names the
identity provider sets) or by ``sourceIdentity``. A session name is otherwise chosen
by the caller and never resolves anyone. A record with no principal is imported with an
unresolved actor. CloudTrail records no employee location, justification or approval.

Digest validation is :mod:`audit.importers.cloudtrail_digest`; this module only parses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from audit.errors import RecordError
from audit.importers.base import (
    Converted,
    OutOfScope,
    RawRecord,
    Source,
    build_event,
    field,
    parse_time,
    text_field,
)
from audit.importers.cloudtrail_events import data_action, is_data_event
from audit.importers.cloudtrail_fast import CloudTrailFast, Rules
from audit.importers.enrichment import Directory, Enrichment, Person

NAME = "cloudtrail"
NO_PRINCIPAL = "(no principal)"
"""The actor id of a record that names no principal (unresolved, hence unlocated)."""
NO_RESOURCE = "(no resource)"
INSIGHT = OutOfScope("Insight event")
NOT_USER_DATA = OutOfScope("not user data (data catalogue)")
_ASSUMED = re.compile(
    r"^arn:(?P<partition>[^:]+):sts::(?P<account>[^:]*):assumed-role/(?P<role>[^/]+)/(?P<session>.+)$"
)


def _role_arns(identity: dict[str, Any], match: re.Match[str] | None) -> list[str]:
    arns = []
    issuer = field(identity, "sessionContext.sessionIssuer.arn", required=False)
    if isinstance(issuer, str) and issuer:
        arns.append(issuer)
    if match is not None:
        arns.append(f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}")
    return list(dict.fromkeys(arns))


def _text(value: Any) -> list[str]:
    return [value] if isinstance(value, str) and value else []


def _carried(identity: dict[str, Any], role: Person, match: re.Match[str] | None) -> list[str]:
    """Who the session names, for a role row: the session name, ``sourceIdentity``, or the role itself."""
    if role.carries_identity == "session-name":
        return [match["session"]] if match is not None else []
    if role.carries_identity == "source-identity":
        return _text(field(identity, "sessionContext.sourceIdentity", required=False))
    return [role.principal]


def _assumed_role(identity: dict[str, Any], directory: Directory) -> list[str]:
    """Candidates for an AssumedRole session: the role, or the person its identity-carrying session names."""
    arn = identity.get("arn")
    match = _ASSUMED.match(arn) if isinstance(arn, str) else None
    roles = _role_arns(identity, match)
    role = directory.find(roles)
    # onBehalfOf.userId is set by IAM Identity Center, not by the caller.
    candidates = _text(field(identity, "onBehalfOf.userId", required=False))
    if role is not None:
        candidates += _carried(identity, role, match)
    # Unresolved: the session ARN names the actor in the report, but never resolves it.
    fallback = arn if isinstance(arn, str) and arn else (roles[0] if roles else NO_PRINCIPAL)
    return [*candidates, fallback]


def _principals(identity: Any, directory: Directory) -> list[str]:
    if identity is None:
        return [NO_PRINCIPAL]
    if not isinstance(identity, dict):
        raise RecordError("field userIdentity is not an object")
    if identity.get("type") == "AssumedRole":
        return _assumed_role(identity, directory)
    candidates: list[str] = []
    for dotted in ("arn", "userName", "onBehalfOf.userId", "principalId", "invokedBy"):
        value = field(identity, dotted, required=False)
        if isinstance(value, str) and value:
            candidates.append(value)
    return list(dict.fromkeys(candidates)) or [NO_PRINCIPAL]


def _listed_arns(record: dict[str, Any]) -> list[str]:
    listed = record.get("resources")
    if listed is None:
        return []
    if not isinstance(listed, list):
        raise RecordError("field resources is not a list")
    arns: list[str] = []
    for item in listed:
        arn = item.get("ARN") if isinstance(item, dict) else None
        if not isinstance(arn, str) or not arn:
            raise RecordError(f"resources[{len(arns)}] has no ARN")
        arns.append(arn)
    return arns


S3_SOURCE = "s3.amazonaws.com"


def _s3_arn(bucket: str, key: Any) -> str:
    return f"arn:aws:s3:::{bucket}" + (f"/{key}" if isinstance(key, str) and key else "")


def _request_arns(record: dict[str, Any]) -> list[str]:
    params = record.get("requestParameters")
    if not isinstance(params, dict) or record.get("eventSource", S3_SOURCE) != S3_SOURCE:
        return []  # S3 on Outposts (s3-outposts) also says bucketName, of a bucket that is not arn:aws:s3:::
    arns = []
    if isinstance(params.get("bucketName"), str):
        arns.append(_s3_arn(params["bucketName"], params.get("key")))
    source = params.get("x-amz-copy-source")
    if isinstance(source, str) and source.strip("/"):
        bucket, _, key = unquote(source.split("?", 1)[0]).lstrip("/").partition("/")
        arns += [_s3_arn(bucket, key), _s3_arn(bucket, None)]
    return arns


def _encloses(container: str, arn: str) -> bool:
    """Whether ``arn`` lies under ``container`` (a bucket ARN may be written with a trailing ``/``)."""
    return arn.startswith(container.rstrip("/") + "/") and arn != container


def _leaves(arns: list[str]) -> list[str]:
    """The identifiers no other one lies under (:func:`_encloses`): the objects, not their buckets."""
    leaves = []
    for container in arns:
        prefix = container.rstrip("/") + "/"
        for arn in arns:
            if arn != container and arn.startswith(prefix):
                break
        else:
            leaves.append(container)
    return leaves


def resource_arns(record: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The ARNs the record lists (``resources[].ARN``) and those its request names (S3 parameters)."""
    return _listed_arns(record), _request_arns(record)


def groups_of(listed: list[str], requested: list[str], event_source: Any) -> list[list[str]]:
    """:func:`resource_groups` of a record with these :func:`resource_arns` and ``eventSource``."""
    arns = sorted(dict.fromkeys(listed + requested), key=len, reverse=True)
    if not arns:
        return [[f"{event_source}:{NO_RESOURCE}"]]
    leaves = _leaves(arns) if len(arns) > 1 else arns
    if len(leaves) <= 1:
        return [arns]
    primary = requested[:1]
    leaves.sort(key=lambda a: a not in primary)  # the request's own object keeps the record's id
    return [[leaf, *(a for a in arns if _encloses(a, leaf))] for leaf in leaves]


def resource_groups(record: dict[str, Any]) -> list[list[str]]:
    """Candidate identifiers per resource the record touches (most specific first in each group).

    One group (every identifier, longest first) unless the record names several objects:
    then one group per object, each with its enclosing resources (its bucket) after it. A
    record naming none gets ``EVENTSOURCE:(no resource)``, which no catalogue entry should
    match: imported as an unresolved, unclassified resource.
    """
    listed, requested = resource_arns(record)
    return groups_of(listed, requested, record.get("eventSource"))


def succeeded(record: dict[str, Any]) -> bool:
    """No ``errorCode``, an empty one, or an HTTP 2xx status code (``"200"``)."""
    code = record.get("errorCode")
    if code is None or (isinstance(code, str) and not code.strip()):
        return True
    text = str(code).strip()
    return text.isdigit() and 200 <= int(text) < 300


def scope(record: dict[str, Any], source: str, name: str) -> OutOfScope | None:
    """Why the record is not a data access, or None if it is one."""
    category = record.get("eventCategory")
    if category is not None and category != "Data":
        return OutOfScope(f"{category} event")
    if category is None:
        management = record.get("managementEvent")
        if management is True or (management is None and not is_data_event(source, name)):
            return OutOfScope("Management event")
    if not succeeded(record):
        return OutOfScope("failed request")
    return None


def convert(raw: RawRecord, enrichment: Enrichment) -> Iterator[Converted]:
    """One access event per data event and object; management and Insights events are out of scope."""
    record = raw.value
    if not isinstance(record, dict):
        raise RecordError("record is not a JSON object")
    if record.get("eventCategory") == "Insight" or record.get("eventType") == "AwsCloudTrailInsight":
        yield INSIGHT
        return
    # eventVersion 1.0 records have no eventID (nor requestID): the record's place in its file names it.
    event_id = (
        text_field(record, "eventID", required=False)
        or text_field(record, "requestID", required=False)
        or f"{raw.path.name}#{raw.index}"
    )
    time = parse_time(field(record, "eventTime"), "eventTime")
    name = text_field(record, "eventName")
    source = text_field(record, "eventSource")
    region = text_field(record, "awsRegion")
    assert event_id is not None and name is not None and source is not None
    out_of_scope = scope(record, source, name)
    if out_of_scope is not None:
        yield out_of_scope
        return
    action = data_action(source, name)
    actor, actor_ok = enrichment.actor(_principals(record.get("userIdentity"), enrichment.directory))
    for number, candidates in enumerate(resource_groups(record), start=1):
        resource, resource_ok = enrichment.resource(candidates, provider="aws", region=region)
        if resource is None:
            yield NOT_USER_DATA
            continue
        unresolved = [kind for kind, ok in (("principal", actor_ok), ("resource", resource_ok)) if not ok]
        yield build_event(
            NAME,
            raw,
            event_id,
            suffix="" if number == 1 else f"#resource-{number}",
            unresolved=unresolved,
            time=time,
            actor=actor,
            action=action,
            resource=resource,
            source_system=f"aws-cloudtrail:{source}",
        )


RULES = Rules(
    name=NAME,
    insight=INSIGHT,
    not_user_data=NOT_USER_DATA,
    scope=scope,
    action=data_action,
    principals=_principals,
    resource_arns=resource_arns,
    groups_of=groups_of,
)
"""What the fast path (:mod:`audit.importers.cloudtrail_fast`) applies: this module's own rules."""

SOURCE = Source(
    name=NAME,
    vendor="AWS CloudTrail",
    array_key="Records",
    convert=convert,
    fast=lambda enrichment: CloudTrailFast(enrichment, RULES),
)
