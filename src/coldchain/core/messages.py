"""What arrives (a message), what a store says of a write, and what cannot be processed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from coldchain.core.topics import device_from_topic

# A dead letter keeps the first 4 KiB of its payload with the whole payload's size and
# SHA-256: enough to see what a device sent, not enough for one device to fill the disk.
KEPT_PAYLOAD_BYTES: Final = 4 * 1024
UNKNOWN_SENDER: Final = "-"


@dataclass(frozen=True, slots=True)
class Message:
    """A raw telemetry message as it arrived: topic, payload bytes and arrival time (UTC)."""

    topic: str
    payload: bytes
    received_at: datetime


class Outcome(StrEnum):
    """What became of one message."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


class DeadLetterKind(StrEnum):
    """Why a message sits in the dead-letter store."""

    REJECTED = "rejected"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be stored as a reading, with the reason."""

    kind: DeadLetterKind
    topic: str
    payload: bytes
    received_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A dead letter as the store keeps it: an id, how many times it arrived or was retried,
    and the size and SHA-256 of the whole payload (``letter.payload`` holds at most
    :data:`KEPT_PAYLOAD_BYTES` of it).
    """

    id: int
    letter: DeadLetter
    attempts: int
    size: int
    sha256: str

    @property
    def truncated(self) -> bool:
        return self.size > len(self.letter.payload)


@dataclass(frozen=True, slots=True)
class DeadLetterPolicy:
    """Bounds on the dead-letter store: per sending device, and in time."""

    quota_per_device: int = 1000
    retention: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if self.quota_per_device < 1:
            raise ValueError("quota_per_device must be at least 1")
        if self.retention <= timedelta(0):
            raise ValueError("retention must be positive")


@dataclass(frozen=True, slots=True)
class DroppedLetters:
    """Dead letters one sender lost to the bounds: over its quota, or past the retention."""

    device_id: str
    over_quota: int
    expired: int
    last_dropped_at: str


def kept_payload(payload: bytes) -> bytes:
    """The part of a payload a dead letter keeps."""
    return payload[:KEPT_PAYLOAD_BYTES]


def payload_sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def letter_sender(letter: DeadLetter) -> str:
    """The device a dead letter counts against: its topic's device, or :data:`UNKNOWN_SENDER`."""
    return device_from_topic(letter.topic) or UNKNOWN_SENDER


def dead_letter_key(letter: DeadLetter) -> bytes:
    """The identity of a dead letter: the same message dead-lettered twice is one letter."""
    digest = hashlib.sha256()
    for part in (letter.kind.encode(), letter.topic.encode(), letter.payload):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()
