"""SQS dead-letter sink (boto3 client, injected): one message per dead letter.

The body is a JSON document with the reason and the original payload (as text when it is
UTF-8, else base64), so that an operator can read it and ``coldchain dlq replay`` can send
it through processing again. A message attribute ``coldchain-kind`` tells our dead letters
from Lambda's on-failure invocation records, which land in the same queue.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from coldchain.core.errors import StorageUnavailableError
from coldchain.core.messages import DeadLetter, DeadLetterKind
from coldchain.core.timestamps import parse_canonical, to_canonical

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

KIND_ATTRIBUTE: Final = "coldchain-kind"
_BATCH: Final = 10  # SendMessageBatch takes at most ten entries


def dead_letter_body(letter: DeadLetter) -> dict[str, Any]:
    """The JSON document of one dead letter."""
    body: dict[str, Any] = {
        "kind": letter.kind.value,
        "topic": letter.topic,
        "received_at": to_canonical(letter.received_at),
        "reason": letter.reason,
    }
    try:
        body["payload"] = letter.payload.decode("utf-8")
    except UnicodeDecodeError:
        body["payload_base64"] = base64.b64encode(letter.payload).decode("ascii")
    return body


def dead_letter_from_body(body: dict[str, Any]) -> DeadLetter:
    """The dead letter a message body holds."""
    payload = (
        body["payload"].encode("utf-8")
        if "payload" in body
        else base64.b64decode(body["payload_base64"])
    )
    return DeadLetter(
        DeadLetterKind(body["kind"]),
        body["topic"],
        payload,
        parse_canonical(body["received_at"]),
        body["reason"],
    )


class SqsDeadLetterSink:
    """Sends dead letters to an SQS queue; see :class:`coldchain.core.ports.DeadLetterSink`."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def put_many(self, letters: Sequence[DeadLetter]) -> None:
        for start in range(0, len(letters), _BATCH):
            chunk = letters[start : start + _BATCH]
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": json.dumps(dead_letter_body(letter)),
                    "MessageAttributes": {
                        KIND_ATTRIBUTE: {"DataType": "String", "StringValue": letter.kind.value}
                    },
                }
                for index, letter in enumerate(chunk)
            ]
            try:
                sent = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)  # type: ignore[arg-type]
            except (ClientError, BotoCoreError) as exc:
                raise StorageUnavailableError(f"SQS send failed: {exc}") from exc
            if sent.get("Failed"):
                reasons = "; ".join(
                    f["Message"] if "Message" in f else f["Code"] for f in sent["Failed"]
                )
                raise StorageUnavailableError(
                    f"SQS refused {len(sent['Failed'])} dead letters: {reasons}"
                )


@dataclass(frozen=True, slots=True)
class Received:
    """One message taken from the queue (hidden from other readers until released)."""

    message_id: str
    receipt: str
    body: str
    sent_at: datetime
    kind: str | None
    receive_count: int


class SqsDeadLetterQueue:
    """Reads the dead-letter queue for `coldchain dlq list|replay`: a message received is
    hidden for ``hold_s``; :meth:`delete` removes it, :meth:`release` shows it again.
    """

    def __init__(self, client: SQSClient, queue_url: str, hold_s: int = 300) -> None:
        self._client = client
        self._queue_url = queue_url
        self._hold_s = hold_s

    def receive(self, limit: int) -> list[Received]:
        """Up to ``limit`` messages, oldest first as far as SQS tells (a standard queue keeps
        no strict order); stops after two empty receives in a row.
        """
        found: dict[str, Received] = {}
        empty = 0
        while len(found) < limit and empty < 2:
            try:
                answer = self._client.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=min(10, limit - len(found)),
                    VisibilityTimeout=self._hold_s,
                    WaitTimeSeconds=0 if found else 1,
                    MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                    MessageAttributeNames=[KIND_ATTRIBUTE],
                )
            except (ClientError, BotoCoreError) as exc:
                raise StorageUnavailableError(f"SQS receive failed: {exc}") from exc
            messages = answer.get("Messages", [])
            empty = 0 if messages else empty + 1
            for message in messages:
                attributes = message.get("Attributes", {})
                kind: dict[str, Any] = dict(
                    message.get("MessageAttributes", {}).get(KIND_ATTRIBUTE, {})
                )
                sent_ms = int(attributes.get("SentTimestamp", "0"))
                found[message["MessageId"]] = Received(
                    message["MessageId"],
                    message["ReceiptHandle"],
                    message["Body"],
                    datetime.fromtimestamp(sent_ms / 1000, UTC),
                    kind.get("StringValue"),
                    int(attributes.get("ApproximateReceiveCount", "1")),
                )
        return sorted(found.values(), key=lambda r: (r.sent_at, r.message_id))

    def delete(self, received: Received) -> None:
        try:
            self._client.delete_message(QueueUrl=self._queue_url, ReceiptHandle=received.receipt)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailableError(f"SQS delete failed: {exc}") from exc

    def release(self, received: Sequence[Received]) -> None:
        """Make messages visible again now (listing must not hide them)."""
        for start in range(0, len(received), _BATCH):
            entries = [
                {"Id": str(index), "ReceiptHandle": r.receipt, "VisibilityTimeout": 0}
                for index, r in enumerate(received[start : start + _BATCH])
            ]
            try:
                self._client.change_message_visibility_batch(
                    QueueUrl=self._queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
            except (ClientError, BotoCoreError) as exc:
                raise StorageUnavailableError(f"SQS release failed: {exc}") from exc
