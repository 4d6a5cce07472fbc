"""The one processing function every entry point calls (worker, Lambda handlers, replay).

Bytes, topic and arrival time go in; an :class:`Outcome` and the events raised come out.
Nothing is dropped: a message that is not a valid reading, or that conflicts with one
already stored, goes to the dead-letter store with its reason.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from itertools import islice

from coldchain.core.errors import Issue, ValidationError
from coldchain.core.events import Event
from coldchain.core.excursions import detect
from coldchain.core.messages import DeadLetter, DeadLetterKind, Message, Outcome
from coldchain.core.ports import DeadLetterSink, EventSink, ReadingStore
from coldchain.core.profile import DEFAULT_PROFILE, Profile
from coldchain.core.reading import Reading, decode_reading
from coldchain.core.timestamps import LAST_TIMESTAMP
from coldchain.core.topics import device_from_topic


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one message."""

    message: Message
    outcome: Outcome
    reading: Reading | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    events: tuple[Event, ...] = field(default=())


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
        events: EventSink | None,
        profile: Profile = DEFAULT_PROFILE,
    ) -> None:
        self._readings = readings
        self._dead_letters = dead_letters
        self._events = events
        self._profile = profile

    @property
    def readings(self) -> ReadingStore:
        return self._readings

    def process(self, message: Message) -> Result:
        """Process one message."""
        return self.process_batch([message])[0]

    def process_batch(self, messages: Sequence[Message]) -> list[Result]:
        """Process messages in arrival order; results come back in the same order.

        Raises:
            StorageError: a store failed; nothing of the batch may be acknowledged.
        """
        results: list[Result | None] = [None] * len(messages)
        valid: list[tuple[int, Reading, tuple[str, ...]]] = []
        letters: list[DeadLetter] = []
        for index, message in enumerate(messages):
            try:
                reading, warnings = validate_message(message, self._profile)
            except ValidationError as exc:
                reason = str(exc)
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

        # ``events`` None: the ingest step derives events from alarm transitions instead (the
        # per-reading detection below is the earlier model, kept for the reports' tests).
        raised_by = {} if self._events is None else self._detect_all([r for _, r, _ in stored])
        raised: list[Event] = []
        for index, reading, warnings in stored:
            events = tuple(raised_by.get((reading.device_id, reading.timestamp), ()))
            raised.extend(events)
            results[index] = Result(
                messages[index], Outcome.STORED, reading, None, warnings, events
            )
        if raised and self._events is not None:
            self._events.publish(raised)
        return [result for result in results if result is not None]

    def _detect_all(self, stored: list[Reading]) -> dict[tuple[str, str], list[Event]]:
        """Events raised by newly stored readings, keyed by (device, reading that caused them)."""
        by_device: dict[str, list[Reading]] = {}
        for reading in stored:
            by_device.setdefault(reading.device_id, []).append(reading)
        raised_by: dict[tuple[str, str], list[Event]] = {}
        for device_id, new in by_device.items():
            for cause, event in self._detect_around(device_id, new):
                raised_by.setdefault((device_id, cause), []).append(event)
        return raised_by

    def _detect_around(self, device_id: str, new: list[Reading]) -> list[tuple[str, Event]]:
        """Events that newly stored readings raise, at their own place in time and at the
        later readings whose history they changed (a late reading can complete a run)."""
        window = self._profile.history_needed
        first = min(reading.timestamp for reading in new)
        last = max(reading.timestamp for reading in new)
        known: dict[str, Reading] = {
            r.timestamp: r for r in self._readings.recent(device_id, first, window)
        }
        known.update((r.timestamp, r) for r in self._readings.between(device_id, first, last))
        later = self._readings.between(device_id, last, LAST_TIMESTAMP)
        known.update((r.timestamp, r) for r in islice(later, window))
        timeline = [known[ts] for ts in sorted(known)]
        new_stamps = {reading.timestamp for reading in new}
        without_new = [r for r in timeline if r.timestamp not in new_stamps]
        without_stamps = [r.timestamp for r in without_new]
        raised: list[tuple[str, Event]] = []
        since_new = window  # readings since the last new one; only nearer ones can change
        cause = ""  # the newest new reading so far: a late reading owns what it completes
        for position, reading in enumerate(timeline):
            is_new = reading.timestamp in new_stamps
            since_new = 0 if is_new else since_new + 1
            if since_new >= window:
                continue
            if is_new:
                cause = reading.timestamp
            events = detect(timeline[max(0, position + 1 - window) : position + 1], self._profile)
            if not is_new:
                before = bisect_right(without_stamps, reading.timestamp)
                previous = without_new[max(0, before - window) : before]
                old = {e.kind for e in detect(previous, self._profile)}
                events = [e for e in events if e.kind not in old]
            raised.extend((cause, event) for event in events)
        return raised


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
