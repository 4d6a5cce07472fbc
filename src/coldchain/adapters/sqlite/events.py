"""Raised events in SQLite (core.events): the local event sink, listed by reading time."""

from __future__ import annotations

from collections.abc import Sequence

from coldchain.adapters.sqlite.database import SqliteDatabase, translated
from coldchain.core.events import Event, EventKind


class SqliteEventStore:
    """Raised events in SQLite: the local event sink."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        rows = [
            (e.kind.value, e.device_id, e.fleet_id, e.timestamp, e.value, e.threshold, e.detail)
            for e in events
        ]
        with self._db.transaction(), translated():
            self._db.connection.executemany(
                "INSERT INTO events (kind, device_id, fleet_id, ts, value, threshold, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def list(self, device_id: str | None = None, limit: int = 1000) -> list[Event]:
        """Events by reading time, device and kind, optionally of one device."""
        sql = "SELECT kind, device_id, fleet_id, ts, value, threshold, detail FROM events"
        params: tuple[object, ...] = ()
        if device_id is not None:
            sql += " WHERE device_id = ?"
            params = (device_id,)
        with translated():
            rows = self._db.connection.execute(
                f"{sql} ORDER BY ts, device_id, kind LIMIT ?", (*params, limit)
            ).fetchall()
        return [
            Event(EventKind(kind), device, fleet, ts, float(value), float(threshold), detail)
            for kind, device, fleet, ts, value, threshold, detail in rows
        ]
