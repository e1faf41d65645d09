"""CloudTrail's data-event operations per event source, and what each does to the data.

CloudTrail records written before ``eventCategory`` (eventVersion 1.08, 2021) and
``managementEvent`` (1.06) say nothing about whether an event is a data event. This
table decides it for them: an operation listed here is a data event, anything else
is a management event. It lists the data-plane operations CloudTrail logs as data
events for the resource types of "Logging data events"
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-data-events-with-cloudtrail.html)
and, for S3, "Amazon S3 data events in CloudTrail"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-s3-info.html#cloudtrail-data-events).
Records that carry ``eventCategory`` or ``managementEvent`` are decided by those fields, not by this table.

Each operation maps to the action it performs; ``unknown`` where the effect on user
data cannot be told from the operation (a Lambda invocation may read or write anything).
Data events whose operation is in no table and has no known verb get ``unknown`` too
(see :func:`data_action`): they are judged, never dropped.

This module holds data only; :mod:`audit.importers.cloudtrail` applies it.
"""

from __future__ import annotations

from audit.importers.base import action_for_operation
from audit.models import Action

_S3: dict[str, Action] = {
    "GetObject": "read",
    "GetObjectAcl": "read",
    "GetObjectAttributes": "read",
    "GetObjectLegalHold": "read",
    "GetObjectRetention": "read",
    "GetObjectTagging": "read",
    "GetObjectTorrent": "read",
    "HeadObject": "read",
    "SelectObjectContent": "query",
    "ListObjects": "read",
    "ListObjectsV2": "read",
    "ListObjectVersions": "read",
    "ListParts": "read",
    "ListMultipartUploads": "read",
    "PutObject": "write",
    "PutObjectAcl": "write",
    "PutObjectLegalHold": "write",
    "PutObjectRetention": "write",
    "PutObjectTagging": "write",
    "PostObject": "write",
    "CopyObject": "copy",
    "UploadPart": "write",
    "UploadPartCopy": "copy",
    "CreateMultipartUpload": "write",
    "CompleteMultipartUpload": "write",
    "AbortMultipartUpload": "delete",
    "DeleteObject": "delete",
    "DeleteObjects": "delete",
    "DeleteObjectTagging": "write",
    "RestoreObject": "write",
    "WriteGetObjectResponse": "write",
}

_DYNAMODB: dict[str, Action] = {
    "GetItem": "read",
    "BatchGetItem": "read",
    "TransactGetItems": "read",
    "ConditionCheckItem": "read",
    "Query": "query",
    "Scan": "query",
    "ExecuteStatement": "query",
    "BatchExecuteStatement": "query",
    "ExecuteTransaction": "query",
    "PutItem": "write",
    "UpdateItem": "write",
    "BatchWriteItem": "write",
    "TransactWriteItems": "write",
    "DeleteItem": "delete",
}

DATA_EVENTS: dict[str, dict[str, Action]] = {
    "s3.amazonaws.com": _S3,
    "dynamodb.amazonaws.com": _DYNAMODB,
    "lambda.amazonaws.com": {"Invoke": "unknown", "InvokeAsync": "unknown", "InvokeWithResponseStream": "unknown"},
    "sns.amazonaws.com": {"Publish": "write", "PublishBatch": "write"},
    "sqs.amazonaws.com": {
        "SendMessage": "write",
        "SendMessageBatch": "write",
        "ReceiveMessage": "read",
        "DeleteMessage": "delete",
        "DeleteMessageBatch": "delete",
        "ChangeMessageVisibility": "write",
        "ChangeMessageVisibilityBatch": "write",
    },
    "s3-object-lambda.amazonaws.com": {
        "GetObject": "read",
        "HeadObject": "read",
        "ListObjects": "read",
        "ListObjectsV2": "read",
        "WriteGetObjectResponse": "write",
    },
    "kinesis.amazonaws.com": {"GetRecords": "read", "PutRecord": "write", "PutRecords": "write"},
    "cloudtrail-data.amazonaws.com": {"PutAuditEvents": "write"},
    "s3express.amazonaws.com": {
        "GetObject": "read",
        "PutObject": "write",
        "DeleteObject": "delete",
        "CopyObject": "copy",
        "HeadObject": "read",
        "ListObjectsV2": "read",
    },
}
"""Event source -> data-event operation -> action (management events are absent)."""


def is_data_event(event_source: str, event_name: str) -> bool:
    """Whether the table lists this operation as a data event."""
    return event_name in DATA_EVENTS.get(event_source, {})


def data_action(event_source: str, event_name: str) -> Action:
    """The action of a data event: from the table, else by verb, else ``unknown``."""
    known = DATA_EVENTS.get(event_source, {}).get(event_name)
    return known or action_for_operation(event_name) or "unknown"
