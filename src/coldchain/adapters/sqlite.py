"""SQLite adapters: readings, dead letters and events in one WAL-mode database file.

One :class:`SqliteDatabase` owns the connection; the stores share it so that a batch's
readings, dead letters and events commit in one transaction (:meth:`SqliteDatabase.transaction`)
and the worker acknowledges the batch only after that commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from coldchain.core.errors import StorageError, StorageUnavailableError
from coldchain.core.events import Event, EventKind
from coldchain.core.messages import (
    DeadLetter,
    DeadLetterKind,
    Outcome,
    StoredDeadLetter,
    dead_letter_key,
)
from coldchain.core.reading import Reading
from coldchain.core.timestamps import to_canonical

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: readings keyed by (device_id, ts); a per-device summary row for "latest" queries;
    #    dead letters deduplicated by fingerprint; raised events.
    """
    CREATE TABLE readings (
        device_id TEXT NOT NULL,
        ts TEXT NOT NULL,
        fleet_id TEXT,
        temperature_c REAL NOT NULL,
        humidity_pct REAL NOT NULL,
        shock_g REAL NOT NULL,
        battery_pct REAL NOT NULL,
        latitude REAL,
        longitude REAL,
        firmware_version TEXT,
        seq INTEGER,
        PRIMARY KEY (device_id, ts)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX readings_by_fleet ON readings (fleet_id, ts);
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        fleet_id TEXT,
        first_ts TEXT NOT NULL,
        last_ts TEXT NOT NULL,
        readings INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        fingerprint BLOB NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        received_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_attempt_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        device_id TEXT NOT NULL,
        fleet_id TEXT,
        ts TEXT NOT NULL,
        value REAL NOT NULL,
        threshold REAL NOT NULL,
        detail TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_by_device ON events (device_id, ts);
    """,
)

_UNAVAILABLE_MARKERS: Final = ("locked", "readonly", "read-only", "disk", "full", "unable to open")
_COLUMNS: Final = (
    "device_id, ts, fleet_id, temperature_c, humidity_pct, shock_g, battery_pct, "
    "latitude, longitude, firmware_version, seq"
)


@contextmanager
def _translated() -> Iterator[None]:
    """Turn sqlite3 errors into ours: retryable conditions become StorageUnavailableError."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        message = str(exc).lower()
        if any(marker in message for marker in _UNAVAILABLE_MARKERS):
            raise StorageUnavailableError(f"SQLite store unavailable: {exc}") from exc
        raise StorageError(f"SQLite error: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"SQLite error: {exc}") from exc


class SqliteDatabase:
    """A WAL-mode SQLite database with schema migrations and nestable transactions.

    ``synchronous=FULL`` makes a commit durable across power loss, not only a process
    crash: the worker acknowledges messages after commit, so a commit must mean stored.
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with _translated():
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
        self.migrate()

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for the stores of this module."""
        return self._conn

    def schema_version(self) -> int:
        """The number of migrations applied."""
        with _translated():
            row = self._conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def migrate(self) -> None:
        """Apply the migrations this file has not seen yet, each in its own transaction."""
        for version, script in enumerate(MIGRATIONS, start=1):
            if self.schema_version() >= version:
                continue
            with _translated():
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in script.split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version={version:d}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested uses join the outer one. Rolls back on error."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with _translated():
            self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        with _translated():
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._conn.close()


def _row_to_reading(row: tuple[object, ...]) -> Reading:
    (device_id, ts, fleet_id, temp, hum, shock, battery, lat, lon, firmware, seq) = row
    return Reading(
        device_id=str(device_id),
        timestamp=str(ts),
        temperature_c=float(temp),  # type: ignore[arg-type]
        humidity_pct=float(hum),  # type: ignore[arg-type]
        shock_g=float(shock),  # type: ignore[arg-type]
        battery_pct=float(battery),  # type: ignore[arg-type]
        latitude=None if lat is None else float(lat),  # type: ignore[arg-type]
        longitude=None if lon is None else float(lon),  # type: ignore[arg-type]
        fleet_id=None if fleet_id is None else str(fleet_id),
        firmware_version=None if firmware is None else str(firmware),
        seq=None if seq is None else int(seq),  # type: ignore[call-overload]
    )


def _reading_row(reading: Reading) -> tuple[object, ...]:
    return (
        reading.device_id,
        reading.timestamp,
        reading.fleet_id,
        reading.temperature_c,
        reading.humidity_pct,
        reading.shock_g,
        reading.battery_pct,
        reading.latitude,
        reading.longitude,
        reading.firmware_version,
        reading.seq,
    )


class SqliteReadingStore:
    """Readings in SQLite; see :class:`coldchain.core.ports.ReadingStore`."""

    _INSERT: Final = (
        f"INSERT INTO readings ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (device_id, ts) DO NOTHING"
    )
    _DEVICE_UPSERT: Final = """
        INSERT INTO devices (device_id, fleet_id, first_ts, last_ts, readings)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (device_id) DO UPDATE SET
            fleet_id = CASE WHEN excluded.last_ts >= devices.last_ts
                            THEN coalesce(excluded.fleet_id, devices.fleet_id)
                            ELSE devices.fleet_id END,
            first_ts = min(devices.first_ts, excluded.first_ts),
            last_ts = max(devices.last_ts, excluded.last_ts),
            readings = devices.readings + excluded.readings
    """

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def put_many(self, readings: Sequence[Reading]) -> list[tuple[Outcome, Reading | None]]:
        outcomes: list[tuple[Outcome, Reading | None]] = []
        if not readings:
            return outcomes
        conn = self._db.connection
        summary: dict[str, list[object]] = {}
        with self._db.transaction(), _translated():
            for reading in readings:
                if conn.execute(self._INSERT, _reading_row(reading)).rowcount == 1:
                    outcomes.append((Outcome.STORED, None))
                    _summarise(summary, reading)
                    continue
                existing = self._get(reading.device_id, reading.timestamp)
                outcomes.append(
                    (Outcome.DUPLICATE if existing == reading else Outcome.CONFLICT, existing)
                )
            conn.executemany(
                self._DEVICE_UPSERT, [(device, *row) for device, row in summary.items()]
            )
        return outcomes

    def _get(self, device_id: str, ts: str) -> Reading | None:
        row = self._db.connection.execute(
            f"SELECT {_COLUMNS} FROM readings WHERE device_id = ? AND ts = ?", (device_id, ts)
        ).fetchone()
        return None if row is None else _row_to_reading(row)

    def recent(self, device_id: str, until: str, limit: int) -> list[Reading]:
        with _translated():
            rows = self._db.connection.execute(
                f"SELECT {_COLUMNS} FROM readings WHERE device_id = ? AND ts <= ? "
                "ORDER BY ts DESC LIMIT ?",
                (device_id, until, limit),
            ).fetchall()
        return [_row_to_reading(row) for row in reversed(rows)]

    def between(self, device_id: str, start: str, end: str) -> Iterator[Reading]:
        return self._stream(
            f"SELECT {_COLUMNS} FROM readings WHERE device_id = ? AND ts BETWEEN ? AND ? "
            "ORDER BY ts",
            (device_id, start, end),
        )

    def fleet_between(self, fleet_id: str, start: str, end: str) -> Iterator[Reading]:
        return self._stream(
            f"SELECT {_COLUMNS} FROM readings WHERE fleet_id = ? AND ts BETWEEN ? AND ? "
            "ORDER BY ts, device_id",
            (fleet_id, start, end),
        )

    def _stream(self, sql: str, params: tuple[object, ...]) -> Iterator[Reading]:
        with _translated():
            cursor = self._db.connection.execute(sql, params)
            while rows := cursor.fetchmany(1000):
                yield from (_row_to_reading(row) for row in rows)

    def latest(self) -> list[Reading]:
        columns = ", ".join(f"r.{name.strip()}" for name in _COLUMNS.split(","))
        with _translated():
            rows = self._db.connection.execute(
                f"SELECT {columns} FROM devices d JOIN readings r "
                "ON r.device_id = d.device_id AND r.ts = d.last_ts ORDER BY d.device_id"
            ).fetchall()
        return [_row_to_reading(row) for row in rows]


def _summarise(summary: dict[str, list[object]], reading: Reading) -> None:
    """Fold a stored reading into its device's row: fleet, first, last, count."""
    row = summary.get(reading.device_id)
    if row is None:
        summary[reading.device_id] = [reading.fleet_id, reading.timestamp, reading.timestamp, 1]
        return
    fleet, first, last, count = row
    assert isinstance(first, str)
    assert isinstance(last, str)
    assert isinstance(count, int)
    if reading.timestamp >= last:
        row[0], row[2] = reading.fleet_id or fleet, reading.timestamp
    row[1] = min(first, reading.timestamp)
    row[3] = count + 1


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """Totals for a live status screen; cheap to compute on a large store."""

    readings: int
    devices: int
    events: dict[str, int]
    dead_letters: int


def summarise(db: SqliteDatabase) -> StoreSummary:
    """Readings and devices from the per-device rows (no scan of the readings table)."""
    conn = db.connection
    with _translated():
        readings, devices = conn.execute(
            "SELECT coalesce(sum(readings), 0), count(*) FROM devices"
        ).fetchone()
        events = dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
        (dead,) = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    return StoreSummary(int(readings), int(devices), events, int(dead))


class SqliteDeadLetterStore:
    """Dead letters in SQLite, deduplicated by fingerprint; see the port."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def put_many(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        now = to_canonical(datetime.now(UTC))
        rows = [
            (
                dead_letter_key(letter),
                letter.kind.value,
                letter.topic,
                letter.payload,
                to_canonical(letter.received_at),
                letter.reason,
                now,
            )
            for letter in letters
        ]
        with self._db.transaction(), _translated():
            self._db.connection.executemany(
                """
                INSERT INTO dead_letters
                    (fingerprint, kind, topic, payload, received_at, reason, attempts,
                     last_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, 1, ?)
                ON CONFLICT (fingerprint) DO UPDATE SET
                    attempts = dead_letters.attempts + 1,
                    reason = excluded.reason,
                    last_attempt_at = excluded.last_attempt_at
                """,
                rows,
            )

    def list(self, limit: int = 100) -> list[StoredDeadLetter]:
        with _translated():
            rows = self._db.connection.execute(
                "SELECT id, kind, topic, payload, received_at, reason, attempts "
                "FROM dead_letters ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            StoredDeadLetter(
                int(row_id),
                DeadLetter(
                    DeadLetterKind(kind),
                    str(topic),
                    bytes(payload),
                    datetime.fromisoformat(received_at),
                    str(reason),
                ),
                int(attempts),
            )
            for row_id, kind, topic, payload, received_at, reason, attempts in rows
        ]

    def count(self) -> int:
        with _translated():
            row = self._db.connection.execute("SELECT count(*) FROM dead_letters").fetchone()
        return int(row[0])


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
        with self._db.transaction(), _translated():
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
        with _translated():
            rows = self._db.connection.execute(
                f"{sql} ORDER BY ts, device_id, kind LIMIT ?", (*params, limit)
            ).fetchall()
        return [
            Event(EventKind(kind), device, fleet, ts, float(value), float(threshold), detail)
            for kind, device, fleet, ts, value, threshold, detail in rows
        ]
