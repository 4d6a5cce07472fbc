"""Validation and storage, the first part of the ingest step (:mod:`coldchain.core.ingest`).

Bytes, topic and arrival time go in; an :class:`Outcome` comes out. Nothing is dropped: a
message that is not a valid reading, or that conflicts with one already stored, goes to the
dead-letter store with its reason. What readings mean (alarms, events) is the ingest step's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from coldchain.core.batches import expand
from coldchain.core.errors import Issue, ValidationError
from coldchain.core.messages import DeadLetter, DeadLetterKind, Message, Outcome
from coldchain.core.ports import DeadLetterSink, ReadingStore
from coldchain.core.profile import DEFAULT_PROFILE, Profile
from coldchain.core.reading import Reading, decode_reading
from coldchain.core.topics import device_from_topic


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one message."""

    message: Message
    outcome: Outcome
    reading: Reading | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = ()


def validate_message(
    message: Message, profile: Profile = DEFAULT_PROFILE
) -> tuple[Reading, tuple[str, ...]]:
    """Decode a message and check it against its topic and arrival time.

    Raises:
        ValidationError: every reason the message is not a reading this device may send.
    """
    topic_device = device_from_topic(message.topic)
    if topic_device is None:
        raise ValidationError([Issue("topic", f"{message.topic!r} is not a telemetry topic")])
    decoded = decode_reading(message.payload)
    reading = decoded.reading
    issues: list[Issue] = []
    if reading.device_id != topic_device:
        issues.append(
            Issue(
                "device_id", f"{reading.device_id!r} does not match topic device {topic_device!r}"
            )
        )
    skew = decoded.at - message.received_at
    if skew > profile.max_clock_skew:
        issues.append(
            Issue(
                "timestamp",
                f"{reading.timestamp} is {skew.total_seconds():.0f} s after arrival "
                f"(clock fault; at most {profile.max_clock_skew.total_seconds():.0f} s allowed)",
            )
        )
    age = message.received_at - decoded.at
    if age > profile.max_reading_age:
        issues.append(
            Issue(
                "timestamp",
                f"{reading.timestamp} is too old: {age.days} days before arrival "
                f"(at most {profile.max_reading_age.days} days accepted)",
            )
        )
    if issues:
        raise ValidationError(issues)
    return reading, decoded.warnings


class Processor:
    """Validates, stores, dead-letters and detects, for a batch of messages at a time."""

    def __init__(
        self,
        readings: ReadingStore,
        dead_letters: DeadLetterSink,
        profile: Profile = DEFAULT_PROFILE,
    ) -> None:
        self._readings = readings
        self._dead_letters = dead_letters
        self._profile = profile

    @property
    def readings(self) -> ReadingStore:
        return self._readings

    def process(self, message: Message) -> Result:
        """Process one message."""
        return self.process_batch([message])[0]

    def process_batch(self, messages: Sequence[Message]) -> list[Result]:
        """Process messages in arrival order; results come back in the same order, one per
        reading (a batched upload gives one result per reading it carries).

        Raises:
            StorageError: a store failed; nothing of the batch may be acknowledged.
        """
        parts = [part for message in messages for part in expand(message)]
        messages = [part.message for part in parts]  # a batch: one message per reading
        results: list[Result | None] = [None] * len(messages)
        valid: list[tuple[int, Reading, tuple[str, ...]]] = []
        letters: list[DeadLetter] = []
        for index, part in enumerate(parts):
            message = part.message
            try:
                if part.refused is not None:
                    raise ValidationError([Issue("", part.refused)])
                reading, warnings = validate_message(message, self._profile)
            except ValidationError as exc:
                reason = str(exc) if part.index is None else f"readings[{part.index}]: {exc}"
                letters.append(_letter(DeadLetterKind.REJECTED, message, reason))
                results[index] = Result(message, Outcome.REJECTED, reason=reason)
            else:
                valid.append((index, reading, warnings))

        written = self._readings.put_many([reading for _, reading, _ in valid])
        stored: list[tuple[int, Reading, tuple[str, ...]]] = []
        for (index, reading, warnings), (outcome, existing) in zip(valid, written, strict=True):
            message = messages[index]
            if outcome is Outcome.CONFLICT:
                reason = _conflict_reason(reading, existing)
                letters.append(_letter(DeadLetterKind.CONFLICT, message, reason))
                results[index] = Result(message, outcome, reading, reason, warnings)
            elif outcome is Outcome.DUPLICATE:
                results[index] = Result(message, outcome, reading, None, warnings)
            else:
                stored.append((index, reading, warnings))

        if letters:
            self._dead_letters.put_many(letters)

        for index, reading, warnings in stored:
            results[index] = Result(messages[index], Outcome.STORED, reading, None, warnings)
        return [result for result in results if result is not None]


def _letter(kind: DeadLetterKind, message: Message, reason: str) -> DeadLetter:
    return DeadLetter(kind, message.topic, message.payload, message.received_at, reason)


def _conflict_reason(reading: Reading, existing: Reading | None) -> str:
    if existing is None:
        return (
            f"a different reading is already stored for {reading.device_id} at {reading.timestamp}"
        )
    differing = [
        name
        for name in (f.name for f in fields(Reading))
        if getattr(reading, name) != getattr(existing, name)
    ]
    return (
        f"a different reading is already stored for {reading.device_id} at {reading.timestamp} "
        f"(differs in {', '.join(differing)})"
    )
