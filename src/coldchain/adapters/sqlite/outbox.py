"""The notification outbox in SQLite: notifications per channel, committed with the alarms
that raised them, delivered later by the dispatcher.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from coldchain.adapters.sqlite.database import SqliteDatabase, translated
from coldchain.core.notifications import Notification, notification_document, subject
from coldchain.core.rules import Severity
from coldchain.core.timestamps import LAST_TIMESTAMP, to_canonical


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One notification for one channel, waiting or delivered."""

    id: int
    channel: str
    kind: str
    subject: str
    document: dict[str, object]
    attempts: int


class SqliteOutbox:
    """Notifications per channel, committed with the alarms, delivered by a dispatcher.

    ``channels`` maps each channel name to the lowest severity it receives.
    """

    def __init__(self, db: SqliteDatabase, channels: dict[str, Severity]) -> None:
        self._db = db
        self._channels = channels

    def remember_channels(self) -> None:
        """Record this outbox's channels as the ones the stack runs with."""
        with self._db.transaction(), translated():
            self._db.connection.execute("DELETE FROM channels")
            self._db.connection.executemany(
                "INSERT INTO channels (name, minimum) VALUES (?, ?)",
                [(name, minimum.value) for name, minimum in self._channels.items()],
            )

    @staticmethod
    def remembered_channels(db: SqliteDatabase) -> dict[str, Severity]:
        """The channels the worker last ran with (the log channel when none was recorded)."""
        with translated():
            rows = db.connection.execute("SELECT name, minimum FROM channels").fetchall()
        return {name: Severity(minimum) for name, minimum in rows} or {"log": Severity.INFO}

    def enqueue(self, notifications: Sequence[Notification]) -> None:
        now = to_canonical(datetime.now(UTC))
        rows = [
            (
                channel,
                n.alarm.id,
                n.kind.value,
                subject(n),
                json.dumps(notification_document(n)),
                now,
                now,
                n.key,
            )
            for n in notifications
            for channel, minimum in self._channels.items()
            if n.alarm.severity.rank >= minimum.rank
        ]
        if not rows:
            return
        with self._db.transaction(), translated():
            self._db.connection.executemany(
                "INSERT INTO outbox (channel, alarm_id, kind, subject, document, created_at, "
                "next_attempt_at, notification_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (channel, notification_key) DO NOTHING",
                rows,
            )

    def due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Undelivered items whose next attempt is due, oldest first."""
        with translated():
            rows = self._db.connection.execute(
                "SELECT id, channel, kind, subject, document, attempts FROM outbox "
                "WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                (to_canonical(now), limit),
            ).fetchall()
        return [
            OutboxItem(int(i), str(c), str(k), str(s), json.loads(d), int(a))
            for i, c, k, s, d, a in rows
        ]

    def delivered(self, item_id: int, now: datetime) -> None:
        with self._db.transaction(), translated():
            self._db.connection.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
                (to_canonical(now), item_id),
            )

    def failed(self, item_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt; ``retry_at`` None gives up (the error stays recorded)."""
        with self._db.transaction(), translated():
            self._db.connection.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE id = ?",
                (error[:500], to_canonical(retry_at) if retry_at else LAST_TIMESTAMP, item_id),
            )

    def pending(self) -> int:
        with translated():
            (count,) = self._db.connection.execute(
                "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
            ).fetchone()
        return int(count)
