"""Turning SQS ReceiveMessage entries into :class:`~parquet_ingestor.message.Message` values.

Attribute names become snake_case (``SentTimestamp`` -> ``sent_timestamp``) and timestamps and
counts become ints, so transformers can copy them into columns as they are.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from parquet_ingestor.message import Message

from .leases import Lease

log = logging.getLogger("parquet_ingestor_sqs")

_KNOWN_NAMES = {
    "SenderId": "sender_id",
    "SentTimestamp": "sent_timestamp",
    "ApproximateReceiveCount": "approximate_receive_count",
    "ApproximateFirstReceiveTimestamp": "approximate_first_receive_timestamp",
    "SequenceNumber": "sequence_number",
    "MessageDeduplicationId": "message_deduplication_id",
    "MessageGroupId": "message_group_id",
    "AWSTraceHeader": "aws_trace_header",
    "DeadLetterQueueSourceArn": "dead_letter_queue_source_arn",
}
_INT_ATTRIBUTES = frozenset(
    {"sent_timestamp", "approximate_receive_count", "approximate_first_receive_timestamp"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_name(name: str) -> str:
    """``SentTimestamp`` -> ``sent_timestamp`` (known names from a table, others by rule)."""
    known = _KNOWN_NAMES.get(name)
    if known is None:
        known = _KNOWN_NAMES[name] = _CAMEL.sub("_", name).lower()
    return known


def system_attributes(raw: Mapping[str, str], into: dict[str, Any]) -> None:
    """Copy SQS system attributes into ``into`` under snake_case names, numbers as ints."""
    for key, value in raw.items():
        name = _KNOWN_NAMES.get(key) or snake_name(key)
        if name in _INT_ATTRIBUTES:
            try:
                into[name] = int(value)
                continue
            except ValueError:
                pass
        into[name] = value


def message_attributes(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """SQS message attributes as name -> StringValue (or BinaryValue bytes for Binary ones)."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        text = value.get("StringValue")
        out[name] = text if text is not None else value.get("BinaryValue")
    return out


def to_message(entry: Mapping[str, Any], lease: Lease) -> Message:
    """One ReceiveMessage entry as a Message whose handle is its lease."""
    message_id = entry["MessageId"]
    attributes: dict[str, Any] = {"message_id": message_id}
    raw_system = entry.get("Attributes")
    if raw_system:
        system_attributes(raw_system, attributes)
    raw_message = entry.get("MessageAttributes")
    attributes["message_attributes"] = message_attributes(raw_message) if raw_message else {}
    return Message(message_id, entry["Body"].encode("utf-8"), attributes, lease,
                   receive_count(entry))


def receive_count(entry: Mapping[str, Any]) -> int | None:
    """The entry's ApproximateReceiveCount, or None when SQS did not send one."""
    received = (entry.get("Attributes") or {}).get("ApproximateReceiveCount")
    return int(received) if received and str(received).isdigit() else None


def unwrap_sns(message: Message) -> Message:
    """Replace an SNS notification body by its ``Message``, adding its message attributes.

    The notification's ``MessageId``, ``TopicArn``, ``Subject`` and ``Timestamp`` become the
    ``sns_message_id``, ``sns_topic_arn``, ``sns_subject`` and ``sns_timestamp`` attributes.
    A body that is not a notification (raw message delivery) is passed on unchanged.
    """
    body = message.body
    if not body.startswith(b"{"):
        return message
    try:
        note = json.loads(body)
    except ValueError:
        return message
    if not isinstance(note, dict) or not isinstance(note.get("Message"), str):
        return message
    attributes = dict(message.attributes)
    merged = dict(attributes.get("message_attributes") or {})
    sns_attributes = note.get("MessageAttributes")
    if isinstance(sns_attributes, dict):
        for name, value in sns_attributes.items():
            merged[name] = value.get("Value") if isinstance(value, dict) else value
    attributes["message_attributes"] = merged
    for key, name in (
        ("MessageId", "sns_message_id"),
        ("TopicArn", "sns_topic_arn"),
        ("Subject", "sns_subject"),
        ("Timestamp", "sns_timestamp"),
    ):
        if note.get(key) is not None:
            attributes[name] = note[key]
    return Message(message.id, note["Message"].encode("utf-8"), attributes, message.handle,
                   message.deliveries)
