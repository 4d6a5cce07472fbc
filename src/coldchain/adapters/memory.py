"""In-memory fakes of every port. The contract tests run against these and the real adapters."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from coldchain.core.alarms import Alarm, AlarmState
from coldchain.core.audit import AuditRecord
from coldchain.core.device_state import DeviceState
from coldchain.core.errors import StateConflictError
from coldchain.core.events import Event, event_order
from coldchain.core.messages import (
    DeadLetter,
    DeadLetterPolicy,
    DroppedLetters,
    Outcome,
    StoredDeadLetter,
    dead_letter_key,
    kept_payload,
    letter_sender,
    payload_sha256,
)
from coldchain.core.notifications import Notification
from coldchain.core.reading import Reading
from coldchain.core.timestamps import to_canonical


class MemoryReadingStore:
    """Readings per device in a sorted list; the same semantics as the SQLite store."""

    def __init__(self) -> None:
        self._keys: dict[str, list[str]] = {}
        self._rows: dict[str, dict[str, Reading]] = {}

    def put_many(self, readings: Sequence[Reading]) -> list[tuple[Outcome, Reading | None]]:
        outcomes: list[tuple[Outcome, Reading | None]] = []
        for reading in readings:
            rows = self._rows.setdefault(reading.device_id, {})
            existing = rows.get(reading.timestamp)
            if existing is None:
                rows[reading.timestamp] = reading
                bisect.insort(self._keys.setdefault(reading.device_id, []), reading.timestamp)
                outcomes.append((Outcome.STORED, None))
            elif existing == reading:
                outcomes.append((Outcome.DUPLICATE, existing))
            else:
                outcomes.append((Outcome.CONFLICT, existing))
        return outcomes

    def recent(self, device_id: str, until: str, limit: int) -> list[Reading]:
        keys = self._keys.get(device_id, [])
        end = bisect.bisect_right(keys, until)
        rows = self._rows.get(device_id, {})
        return [rows[key] for key in keys[max(0, end - limit) : end]]

    def between(self, device_id: str, start: str, end: str) -> Iterator[Reading]:
        keys = self._keys.get(device_id, [])
        rows = self._rows.get(device_id, {})
        low, high = bisect.bisect_left(keys, start), bisect.bisect_right(keys, end)
        return iter([rows[key] for key in keys[low:high]])

    def fleet_between(self, fleet_id: str, start: str, end: str) -> Iterator[Reading]:
        found = [
            reading
            for rows in self._rows.values()
            for reading in rows.values()
            if reading.fleet_id == fleet_id and start <= reading.timestamp <= end
        ]
        return iter(sorted(found, key=lambda r: (r.timestamp, r.device_id)))

    def latest(self) -> list[Reading]:
        return [self._rows[device][keys[-1]] for device, keys in sorted(self._keys.items()) if keys]


class MemoryDeadLetterStore:
    """Dead letters in a list, deduplicated on (kind, topic, payload), bounded like SQLite's."""

    def __init__(self, policy: DeadLetterPolicy | None = None) -> None:
        self._policy = policy or DeadLetterPolicy()
        self._letters: dict[bytes, StoredDeadLetter] = {}
        self._next_id = 1
        self._drops: dict[str, DroppedLetters] = {}

    def put_many(self, letters: Sequence[DeadLetter]) -> None:
        now = to_canonical(datetime.now(UTC))
        for letter in letters:
            key = dead_letter_key(letter)
            old = self._letters.get(key)
            if old is not None:
                self._letters[key] = replace(
                    old, letter=replace(old.letter, reason=letter.reason), attempts=old.attempts + 1
                )
                continue
            sender = letter_sender(letter)
            held = sum(1 for kept in self._letters.values() if letter_sender(kept.letter) == sender)
            if held >= self._policy.quota_per_device:
                self._drop(sender, 1, 0, now)
                continue
            self._letters[key] = StoredDeadLetter(
                self._next_id,
                replace(letter, payload=kept_payload(letter.payload)),
                1,
                len(letter.payload),
                payload_sha256(letter.payload),
            )
            self._next_id += 1

    def _drop(self, sender: str, over_quota: int, expired: int, now: str) -> None:
        old = self._drops.get(sender, DroppedLetters(sender, 0, 0, now))
        self._drops[sender] = DroppedLetters(
            sender, old.over_quota + over_quota, old.expired + expired, now
        )

    def expire(self, now: datetime) -> int:
        cutoff = now - self._policy.retention
        gone = [k for k, kept in self._letters.items() if kept.letter.received_at < cutoff]
        for key in gone:
            self._drop(letter_sender(self._letters.pop(key).letter), 0, 1, to_canonical(now))
        return len(gone)

    def dropped(self) -> list[DroppedLetters]:
        return sorted(
            self._drops.values(), key=lambda d: (-(d.over_quota + d.expired), d.device_id)
        )

    def list(self, limit: int = 100) -> list[StoredDeadLetter]:
        return sorted(self._letters.values(), key=lambda kept: -kept.id)[:limit]

    def count(self) -> int:
        return len(self._letters)


class MemoryEventSink:
    """Keeps every published event, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def list(self, device_id: str | None = None, limit: int = 1000) -> list[Event]:
        """Events, oldest first, optionally of one device."""
        found = [e for e in self.events if device_id in (None, e.device_id)]
        return sorted(found, key=event_order)[:limit]


class MemoryAlarmStore:
    """Alarm records in a dict; the same semantics as the SQLite store."""

    def __init__(self) -> None:
        self._alarms: dict[str, Alarm] = {}

    def get(self, alarm_id: str) -> Alarm | None:
        return self._alarms.get(alarm_id)

    def save(self, alarms: Sequence[Alarm]) -> None:
        for given in alarms:
            old = self._alarms.get(given.id)
            self._alarms[given.id] = (
                given
                if old is None
                else replace(
                    given,
                    acknowledgement=given.acknowledgement or old.acknowledgement,
                    last_notified_at=given.last_notified_at or old.last_notified_at,
                )
            )

    def delete(self, alarm_ids: Sequence[str]) -> None:
        for alarm_id in alarm_ids:
            self._alarms.pop(alarm_id, None)

    def for_device(self, device_id: str, since: datetime) -> list[Alarm]:
        found = [
            a
            for a in self._alarms.values()
            if a.device_id == device_id
            and (
                a.state is AlarmState.ACTIVE or (a.cleared_at is not None and a.cleared_at >= since)
            )
        ]
        return sorted(found, key=lambda a: a.started_at)

    def list(
        self,
        *,
        active: bool | None = None,
        device_id: str | None = None,
        fleet_id: str | None = None,
        limit: int = 100,
    ) -> list[Alarm]:
        found = [
            a
            for a in self._alarms.values()
            if (active is None or (a.state is AlarmState.ACTIVE) == active)
            and device_id in (None, a.device_id)
            and fleet_id in (None, a.fleet_id)
        ]
        return sorted(found, key=lambda a: (-a.started_at.timestamp(), a.id))[:limit]


class MemoryOutbox:
    """Keeps every enqueued notification, in order, one per key (like the SQLite outbox)."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []

    def enqueue(self, notifications: Sequence[Notification]) -> None:
        known = {n.key for n in self.notifications}
        for notification in notifications:
            if notification.key not in known:
                known.add(notification.key)
                self.notifications.append(notification)


class MemoryDeviceStateStore:
    """Device states in a dict, versioned like the SQLite and DynamoDB stores."""

    def __init__(self) -> None:
        self._states: dict[str, DeviceState] = {}

    def get_many(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        return {d: self._states[d] for d in device_ids if d in self._states}

    def put(self, state: DeviceState, expected_version: int) -> None:
        current = self._states.get(state.device_id)
        if (0 if current is None else current.version) != expected_version:
            raise StateConflictError(f"{state.device_id}: state changed since it was read")
        self._states[state.device_id] = replace(state, version=expected_version + 1)

    def all(self) -> Iterator[DeviceState]:
        return iter([self._states[d] for d in sorted(self._states)])


class MemoryAuditLog:
    """The audit trail in a dict; appends only, like the SQLite and DynamoDB logs."""

    def __init__(self) -> None:
        self._records: dict[str, list[AuditRecord]] = {}
        self._order: list[AuditRecord] = []

    def append(self, record: AuditRecord) -> None:
        records = self._records.setdefault(record.subject, [])
        if any(r.seq == record.seq for r in records):
            raise StateConflictError(f"{record.subject}: record {record.seq} exists")
        records.append(record)
        self._order.append(record)

    def history(self, subject: str) -> list[AuditRecord]:
        return sorted(self._records.get(subject, []), key=lambda r: r.seq)

    def subjects(self, prefix: str) -> list[str]:
        return sorted(s for s in self._records if s.startswith(prefix))

    def recent(self, limit: int) -> list[AuditRecord]:
        ordered = sorted(enumerate(self._order), key=lambda p: (p[1].at, p[0]), reverse=True)
        return [record for _, record in ordered[:limit]]  # ties: the newest appended first
