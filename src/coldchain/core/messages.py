"""What arrives (a message), what a store says of a write, and what cannot be processed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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
    """A dead letter as the store keeps it: an id, and how many times it arrived or was retried."""

    id: int
    letter: DeadLetter
    attempts: int


def dead_letter_key(letter: DeadLetter) -> bytes:
    """The identity of a dead letter: the same message dead-lettered twice is one letter."""
    digest = hashlib.sha256()
    for part in (letter.kind.encode(), letter.topic.encode(), letter.payload):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()
