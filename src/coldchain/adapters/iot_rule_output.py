"""What the IoT topic rule hands the processor (directly, or through Kinesis): the device's
exact bytes (base64), the topic and the rules engine's arrival time. The IoT-rule Lambda,
the Kinesis Lambda and `coldchain dlq replay` (Lambda failure records, Kinesis records)
read it here.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, Final

from coldchain.core.messages import Message
from coldchain.core.topics import TELEMETRY_FILTER, telemetry_topic

PAYLOAD_FIELD: Final = "coldchain_payload_b64"
TOPIC_FIELD: Final = "coldchain_topic"
RECEIVED_AT_FIELD: Final = "coldchain_received_at_ms"
# The fields of the rule's output before the exact bytes were sent (still read: records
# already in the Kinesis stream during an upgrade).
TOPIC_DEVICE_FIELD: Final = "coldchain_topic_device_id"
# IoT SQL for the topic rule, built from constants (not a database query). The device's bytes
# travel untouched (base64), so the processor validates exactly what the local worker would,
# and a payload that is not JSON reaches it and is dead-lettered with the same reason.
RULE_SQL: Final = (
    f"SELECT encode(*, 'base64') AS {PAYLOAD_FIELD}, topic() AS {TOPIC_FIELD}, "  # noqa: S608
    f"timestamp() AS {RECEIVED_AT_FIELD} FROM '{TELEMETRY_FILTER}'"
)


BASIC_INGEST_PREFIX: Final = "$aws/rules/"


def without_basic_ingest(topic: str) -> str:
    """The device's topic when it published through Basic Ingest
    (``$aws/rules/<rule>/dt/coldchain/<thing>/telemetry``): whether ``topic()`` keeps the
    prefix is not documented, so it is taken off here either way.
    """
    if not topic.startswith(BASIC_INGEST_PREFIX):
        return topic
    parts = topic.split("/", 3)
    return parts[3] if len(parts) == 4 else topic


def message_from_rule_output(document: dict[str, Any]) -> Message:
    """The message the rule saw: the device's exact bytes, its topic, and the rules engine's
    arrival time. Output of the earlier rule, the payload's fields merged with two of the
    rule's, is still understood.
    """
    received_ms = document.get(RECEIVED_AT_FIELD)
    received_at = (
        datetime.fromtimestamp(received_ms / 1000, UTC)
        if isinstance(received_ms, int | float) and not isinstance(received_ms, bool)
        else datetime.now(UTC)
    )
    if PAYLOAD_FIELD in document and TOPIC_DEVICE_FIELD not in document:
        # (An old-format document merged the device's own fields in: a device could have
        # written these two names itself, so they are trusted only without the old field.)
        encoded = document[PAYLOAD_FIELD]
        try:
            raw = base64.b64decode(str(encoded), validate=True)
        except ValueError:
            raw = str(encoded).encode()  # not base64: validation rejects it, bytes kept
        topic = without_basic_ingest(str(document.get(TOPIC_FIELD, "unknown")))
        return Message(topic, raw, received_at)
    body = dict(document)
    topic_device = body.pop(TOPIC_DEVICE_FIELD, None)
    body.pop(RECEIVED_AT_FIELD, None)
    topic = telemetry_topic(str(topic_device)) if topic_device is not None else "unknown"
    return Message(topic, json.dumps(body, allow_nan=True).encode(), received_at)
