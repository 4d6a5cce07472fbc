"""Batched uploads: one message carrying up to 100 readings of one device.

IoT Core meters messages per 5 KB, and a device replaying its buffer after an outage would
otherwise send hundreds of messages one by one. A batch is a JSON object on the same topic::

    {"device_id": "reefer-0001", "readings": [{"timestamp": ..., "temperature_c": ...}, ...]}

Each reading is validated and stored on its own (its ``device_id`` defaults to the batch's);
a bad one is dead-lettered with its index while the rest are stored. :func:`expand` turns a
batch into one message per reading, so everything after it is the single-reading path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from coldchain.core.messages import Message

MAX_READINGS: Final = 100
MAX_BYTES: Final = 128 * 1024  # the IoT Core message limit
_MARKER: Final = b'"readings"'


@dataclass(frozen=True, slots=True)
class Part:
    """One message to validate: a whole message, or one reading of a batch."""

    message: Message
    index: int | None = None  # its place in the batch, for the dead letter's reason
    refused: str | None = None  # why the batch (or this element) cannot be a reading


def expand(message: Message) -> list[Part]:
    """The parts of a message: itself, or one part per reading of a batch."""
    document = _batch(message)
    if document is None:
        return [Part(message)]
    readings = document["readings"]
    refused = _refusal(message, readings)
    if refused is not None or not isinstance(readings, list):
        return [Part(message, refused=refused)]
    device = document.get("device_id")
    parts = []
    for index, element in enumerate(readings):
        if not isinstance(element, dict):
            raw = json.dumps(element).encode()
            refused = "must be a JSON object"
            parts.append(Part(Message(message.topic, raw, message.received_at), index, refused))
            continue
        body = {"device_id": device, **element} if device is not None else element
        raw = json.dumps(body, separators=(",", ":")).encode()
        parts.append(Part(Message(message.topic, raw, message.received_at), index))
    return parts


def _batch(message: Message) -> dict[str, object] | None:
    """The batch document, or None when the message is not a batch."""
    if _MARKER not in message.payload:  # cheap: most messages are single readings
        return None
    if len(message.payload) > MAX_BYTES:
        return None  # not parsed: too large to be a batch; validation refuses its size
    try:
        document = json.loads(message.payload)
    except ValueError:
        return None  # validation gives the reason
    if not isinstance(document, dict) or "readings" not in document:
        return None
    return document


def _refusal(message: Message, readings: object) -> str | None:
    if not isinstance(readings, list) or not readings:
        return "readings: must be a non-empty list of readings"
    if len(readings) > MAX_READINGS:
        return f"readings: {len(readings)} in one batch, at most {MAX_READINGS}"
    if len(message.payload) > MAX_BYTES:
        return f"batch: {len(message.payload)} bytes, at most {MAX_BYTES}"
    return None
