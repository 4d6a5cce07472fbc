"""Read-side queries over the SQLite store for the dashboard, the operator CLI and ``up``.

Downsampling keeps the true minimum and maximum of every bucket (and the mean), so a chart
of a day cannot average a breach away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from coldchain.adapters.sqlite.database import SqliteDatabase, translated
from coldchain.adapters.sqlite.readings import READING_COLUMNS
from coldchain.core.timestamps import to_canonical

# A device's row of ``devices``, then the other columns of its newest reading.
_DEVICE_COLUMNS: Final = ("device_id", "fleet_id", "first_ts", "last_ts", "readings")
_LATEST_COLUMNS: Final = tuple(c for c in READING_COLUMNS if c not in {*_DEVICE_COLUMNS, "ts"})
_DEVICE_ROW: Final = (*_DEVICE_COLUMNS, *_LATEST_COLUMNS)
_DEVICES: Final = (
    "SELECT "
    + ", ".join([*(f"d.{c}" for c in _DEVICE_COLUMNS), *(f"r.{c}" for c in _LATEST_COLUMNS)])
    + " FROM devices d JOIN readings r ON r.device_id = d.device_id AND r.ts = d.last_ts "
    "ORDER BY d.device_id"
)


@dataclass(frozen=True, slots=True)
class Bucket:
    """Readings of one device within one time bucket."""

    start: datetime
    count: int
    minimum: float
    maximum: float
    mean: float


class SqliteReadModel:
    """Queries the dashboard and CLI need; one instance per thread (one connection)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def devices(self) -> list[dict[str, Any]]:
        """Every device with its newest reading, first and last time and reading count."""
        with translated():
            rows = self._db.connection.execute(_DEVICES).fetchall()
        return [dict(zip(_DEVICE_ROW, row, strict=True)) for row in rows]

    def buckets(
        self, device_id: str, start: datetime, end: datetime, points: int
    ) -> tuple[timedelta, list[Bucket]]:
        """Temperature of one device in ``[start, end]`` in at most ``points`` buckets."""
        span = max((end - start).total_seconds(), 1.0)
        bucket_s = max(1.0, span / max(points, 1))
        with translated():
            rows = self._db.connection.execute(
                "SELECT CAST((julianday(ts) - julianday(?)) * 86400.0 / ? AS INTEGER) AS b, "
                "count(*), min(temperature_c), max(temperature_c), avg(temperature_c) "
                "FROM readings WHERE device_id = ? AND ts BETWEEN ? AND ? GROUP BY b ORDER BY b",
                (to_canonical(start), bucket_s, device_id, to_canonical(start), to_canonical(end)),
            ).fetchall()
        return timedelta(seconds=bucket_s), [
            Bucket(
                start + timedelta(seconds=int(b) * bucket_s),
                int(n),
                float(lo),
                float(hi),
                float(mean),
            )
            for b, n, lo, hi, mean in rows
        ]

    def ingest(self, since: datetime) -> list[dict[str, Any]]:
        """Readings stored per minute (by reading time) and dead letters per minute (arrival)."""
        stored: dict[str, int] = {}
        with translated():
            conn = self._db.connection
            devices = [d for (d,) in conn.execute("SELECT device_id FROM devices").fetchall()]
            for device in devices:  # one index range per device, not a scan of the table
                for minute, count in conn.execute(
                    "SELECT substr(ts, 1, 16) AS m, count(*) FROM readings "
                    "WHERE device_id = ? AND ts >= ? GROUP BY m",
                    (device, to_canonical(since)),
                ):
                    stored[minute] = stored.get(minute, 0) + int(count)
            dead = dict(
                self._db.connection.execute(
                    "SELECT substr(received_at, 1, 16) AS m, count(*) FROM dead_letters "
                    "WHERE received_at >= ? GROUP BY m",
                    (to_canonical(since),),
                ).fetchall()
            )
        minutes = sorted(set(stored) | set(dead))
        return [
            {"minute": f"{m}:00.000Z", "stored": stored.get(m, 0), "dead_letters": dead.get(m, 0)}
            for m in minutes
        ]

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        with translated():
            rows = self._db.connection.execute(
                "SELECT id, kind, topic, reason, attempts, received_at FROM dead_letters "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        names = ("id", "kind", "topic", "reason", "attempts", "received_at")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def count(self, device_id: str, start: datetime, end: datetime) -> int:
        """Readings of one device in ``[start, end]``."""
        with translated():
            (n,) = self._db.connection.execute(
                "SELECT count(*) FROM readings WHERE device_id = ? AND ts BETWEEN ? AND ?",
                (device_id, to_canonical(start), to_canonical(end)),
            ).fetchone()
        return int(n)


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """Totals for a live status screen; cheap to compute on a large store."""

    readings: int
    devices: int
    events: dict[str, int]
    dead_letters: int
    active_alarms: int = 0


def summarise(db: SqliteDatabase) -> StoreSummary:
    """Readings and devices from the per-device rows (no scan of the readings table)."""
    conn = db.connection
    with translated():
        readings, devices = conn.execute(
            "SELECT coalesce(sum(readings), 0), count(*) FROM devices"
        ).fetchone()
        events = dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
        (dead,) = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        (active,) = conn.execute("SELECT count(*) FROM alarms WHERE state = 'active'").fetchone()
    return StoreSummary(int(readings), int(devices), events, int(dead), int(active))
