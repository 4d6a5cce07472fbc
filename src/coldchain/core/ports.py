"""Ports: what the core needs from the world, as Protocols. Adapters implement them.

Time ranges are inclusive at both ends and written in the canonical timestamp form, whose
string order is time order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from coldchain.core.alarms import Alarm
from coldchain.core.device_state import DeviceState
from coldchain.core.events import Event
from coldchain.core.messages import DeadLetter, DroppedLetters, Outcome, StoredDeadLetter
from coldchain.core.notifications import Notification
from coldchain.core.reading import Reading


class Clock(Protocol):
    """The time now, as an aware UTC datetime."""

    def now(self) -> datetime: ...


class ReadingStore(Protocol):
    """Readings keyed by (device_id, timestamp), idempotent on that key."""

    def put_many(self, readings: Sequence[Reading]) -> list[tuple[Outcome, Reading | None]]:
        """Store readings in order; for each, ``STORED``, ``DUPLICATE`` (identical content is
        already there) or ``CONFLICT`` with the reading already kept under that key.
        """
        ...

    def recent(self, device_id: str, until: str, limit: int) -> list[Reading]:
        """Up to ``limit`` readings of a device at or before ``until``, oldest first."""
        ...

    def between(self, device_id: str, start: str, end: str) -> Iterator[Reading]:
        """One device's readings in ``[start, end]``, in time order, streamed."""
        ...

    def fleet_between(self, fleet_id: str, start: str, end: str) -> Iterator[Reading]:
        """A fleet's readings in ``[start, end]``, in time order, streamed."""
        ...

    def latest(self) -> list[Reading]:
        """The newest reading of every device, ordered by device id."""
        ...


class DeadLetterSink(Protocol):
    """Where messages go that could not be stored as readings (a store, or a queue)."""

    def put_many(self, letters: Sequence[DeadLetter]) -> None: ...


class DeadLetterStore(DeadLetterSink, Protocol):
    """A dead-letter sink that can be read back. Idempotent: the same message (kind, topic
    and payload) arriving again raises its ``attempts`` and updates the reason.
    """

    def list(self, limit: int = 100) -> list[StoredDeadLetter]:
        """Newest first."""
        ...

    def count(self) -> int: ...

    def expire(self, now: datetime) -> int:
        """Delete letters past the retention; returns how many (counted as dropped)."""
        ...

    def dropped(self) -> Sequence[DroppedLetters]:
        """What the bounds dropped (over a sender's quota, or expired), per sender."""
        ...


class EventSink(Protocol):
    """Where raised events go (an event table, a log, an alarm service)."""

    def publish(self, events: Sequence[Event]) -> None: ...


class EventLog(EventSink, Protocol):
    """An event sink that can be read back."""

    def list(self, device_id: str | None = None, limit: int = 1000) -> list[Event]:
        """Events in :func:`coldchain.core.events.event_order`, optionally of one device."""
        ...


class AlarmStore(Protocol):
    """Alarm records, one per occurrence, keyed by their deterministic id."""

    def get(self, alarm_id: str) -> Alarm | None: ...

    def save(self, alarms: Sequence[Alarm]) -> None:
        """Insert or replace by id. An acknowledgement already stored is kept when the
        saved alarm has none (evaluation never erases an operator's acknowledgement).
        """
        ...

    def delete(self, alarm_ids: Sequence[str]) -> None:
        """Remove records (an occurrence re-keyed to its true start)."""
        ...

    def for_device(self, device_id: str, since: datetime) -> list[Alarm]:
        """A device's alarms that are active or cleared at or after ``since``."""
        ...

    def list(
        self,
        *,
        active: bool | None = None,
        device_id: str | None = None,
        fleet_id: str | None = None,
        limit: int = 100,
    ) -> list[Alarm]:
        """Newest start first, filtered."""
        ...


class DeviceStateStore(Protocol):
    """Each device's rule state, written with optimistic concurrency on its version."""

    def get_many(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        """The states that exist, by device id (a device never seen has none)."""
        ...

    def put(self, state: DeviceState, expected_version: int) -> None:
        """Write ``state`` as version ``expected_version + 1``.

        Raises:
            StateConflictError: the stored version is not ``expected_version`` (another
                process advanced the device): reload and apply again.
        """
        ...

    def all(self) -> Iterator[DeviceState]:
        """Every device's state (the silence sweep)."""
        ...


class NotificationOutbox(Protocol):
    """Notifications waiting to be delivered; written in the same commit as the alarms."""

    def enqueue(self, notifications: Sequence[Notification]) -> None: ...
