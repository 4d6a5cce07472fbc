"""The four kinds of message in the AWS dead-letter queue, read as one shape.

* ``coldchain``: the processor's own dead letters (:mod:`coldchain.adapters.sqs`, the one
  envelope the project writes): reason, topic, arrival time and the device's bytes.
* ``lambda-failure``: the IoT-rule Lambda's on-failure destination record (retries
  exhausted or event too old): ``requestPayload`` is the rule's output for one message.
* ``iot-error-action``: the topic rule's error action (IoT could not invoke the Lambda),
  base64 (``use_base64``) of ``{ruleName, topic, clientId, base64OriginalPayload,
  failures}``; the payload is the device's bytes.
* ``kinesis-failure``: the Kinesis Lambda's on-failure record: a pointer (shard, first and
  last sequence number) to records that stay in the stream only for its retention.

Pure parsing (no SDK): :func:`parse_queued` gives the messages to replay, or the pointer.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from coldchain.adapters.iot_rule_output import message_from_rule_output
from coldchain.core.messages import Message
from coldchain.core.timestamps import parse_canonical


class QueuedFormat(StrEnum):
    COLDCHAIN = "coldchain"
    LAMBDA_FAILURE = "lambda-failure"
    IOT_ERROR_ACTION = "iot-error-action"
    KINESIS_FAILURE = "kinesis-failure"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class KinesisPointer:
    """Records a Kinesis batch failed on, by sequence number (inclusive)."""

    stream_arn: str
    shard_id: str
    first_sequence: str
    last_sequence: str
    batch_size: int


@dataclass(frozen=True, slots=True)
class QueuedLetter:
    """What one queue message says: why it failed and what to replay."""

    format: QueuedFormat
    reason: str
    topic: str
    messages: tuple[Message, ...] = ()
    pointer: KinesisPointer | None = None


def parse_queued(  # noqa: PLR0911 - one return per kind of message
    body: str, sent_at: datetime, kind: str | None = None
) -> QueuedLetter:
    """Read a queue message body (``kind``: its ``coldchain-kind`` attribute, if any)."""
    document = _json(body)
    if document is None:  # the IoT error action's message is base64 of its JSON
        try:
            decoded = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        document = _json(decoded.decode("utf-8", "replace"))
    if document is None:
        return QueuedLetter(QueuedFormat.UNKNOWN, "not a message this queue is sent", "")
    try:
        if kind is not None or {"kind", "reason", "topic"} <= document.keys():
            return _ours(document, sent_at)
        if "KinesisBatchInfo" in document:
            return _kinesis(document)
        if "requestPayload" in document:
            return _lambda_failure(document)
        if "base64OriginalPayload" in document:
            return _error_action(document, sent_at)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:  # a field of a wrong type
        return QueuedLetter(QueuedFormat.UNKNOWN, f"a damaged message: {exc!r}", "")
    return QueuedLetter(QueuedFormat.UNKNOWN, "not a message this queue is sent", "")


def _json(text: str) -> dict[str, Any] | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _ours(document: dict[str, Any], sent_at: datetime) -> QueuedLetter:
    topic = str(document.get("topic", ""))
    if "payload" in document:
        payload = str(document["payload"]).encode("utf-8")
    else:
        try:
            payload = base64.b64decode(str(document.get("payload_base64", "")), validate=True)
        except (binascii.Error, ValueError):
            reason = "a coldchain dead letter whose payload is not base64"
            return QueuedLetter(QueuedFormat.UNKNOWN, reason, str(document.get("topic", "")))
    try:
        received_at = parse_canonical(str(document["received_at"]))
    except (KeyError, ValueError):
        received_at = sent_at
    message = Message(topic, payload, received_at)
    reason = str(document.get("reason", ""))
    return QueuedLetter(QueuedFormat.COLDCHAIN, reason, topic, (message,))


def _lambda_failure(document: dict[str, Any]) -> QueuedLetter:
    context = document.get("requestContext") or {}
    response = document.get("responsePayload") or {}
    error = response.get("errorMessage") if isinstance(response, dict) else None
    reason = f"Lambda {context.get('condition', 'failed')}" + (f": {error}" if error else "")
    payload = document.get("requestPayload")
    if not isinstance(payload, dict):
        return QueuedLetter(QueuedFormat.LAMBDA_FAILURE, f"{reason} (no event kept)", "")
    message = message_from_rule_output(payload)
    return QueuedLetter(QueuedFormat.LAMBDA_FAILURE, reason, message.topic, (message,))


def _error_action(document: dict[str, Any], sent_at: datetime) -> QueuedLetter:
    failures = document.get("failures") or []
    errors = "; ".join(
        str(f.get("errorMessage", f.get("failedAction", "")))
        for f in failures
        if isinstance(f, dict)
    )
    reason = f"IoT rule {document.get('ruleName', '?')} could not deliver" + (
        f": {errors}" if errors else ""
    )
    topic = str(document.get("topic", ""))
    try:
        payload = base64.b64decode(str(document["base64OriginalPayload"]), validate=True)
    except (binascii.Error, ValueError):
        return QueuedLetter(QueuedFormat.IOT_ERROR_ACTION, f"{reason} (payload unreadable)", topic)
    message = Message(topic, payload, sent_at)
    return QueuedLetter(QueuedFormat.IOT_ERROR_ACTION, reason, topic, (message,))


def _kinesis(document: dict[str, Any]) -> QueuedLetter:
    info = document["KinesisBatchInfo"]
    if not isinstance(info, dict):
        return QueuedLetter(QueuedFormat.UNKNOWN, "a Kinesis failure record without its batch", "")
    context = document.get("requestContext") or {}
    response = document.get("responseContext") or {}
    reason = f"Kinesis batch {context.get('condition', 'failed')}"
    if response.get("functionError"):
        reason += f" ({response['functionError']})"
    pointer = KinesisPointer(
        str(info.get("streamArn", "")),
        str(info.get("shardId", "")),
        str(info.get("startSequenceNumber", "")),
        str(info.get("endSequenceNumber", "")),
        _count(info.get("batchSize")),
    )
    return QueuedLetter(QueuedFormat.KINESIS_FAILURE, reason, "kinesis", pointer=pointer)


def _count(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def rule_output_messages(records: list[tuple[bytes, datetime]]) -> list[Message]:
    """Kinesis records (the rule's JSON output, with their arrival times) as messages; a
    record that is not a JSON object becomes a message whose bytes fail validation, so it
    is dead-lettered with the reason.
    """
    messages = []
    for data, arrived in records:
        document = _json(data.decode("utf-8", "replace"))
        if document is None:
            messages.append(Message("kinesis", data, arrived))
        else:
            messages.append(message_from_rule_output(document))
    return messages
