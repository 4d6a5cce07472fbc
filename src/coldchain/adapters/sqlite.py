"""SQLite adapters: readings, dead letters and events in one WAL-mode database file.

One :class:`SqliteDatabase` owns the connection; the stores share it so that a batch's
readings, dead letters and events commit in one transaction (:meth:`SqliteDatabase.transaction`)
and the worker acknowledges the batch only after that commit.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from coldchain.core.alarm_profile import AlarmProfile, profile_from_mapping, profile_mapping
from coldchain.core.alarms import Acknowledgement, Alarm, AlarmState
from coldchain.core.audit import AuditRecord, record_from_document
from coldchain.core.device_state import DeviceState, state_document, state_from_document
from coldchain.core.errors import (
    Issue,
    NotFoundError,
    StateConflictError,
    StorageError,
    StorageUnavailableError,
    StoreLostError,
    ValidationError,
)
from coldchain.core.events import Event, EventKind
from coldchain.core.messages import (
    DeadLetter,
    DeadLetterKind,
    DeadLetterPolicy,
    DroppedLetters,
    Outcome,
    StoredDeadLetter,
    dead_letter_key,
    kept_payload,
    letter_sender,
    payload_sha256,
)
from coldchain.core.notifications import Notification, notification_document, subject
from coldchain.core.reading import Reading
from coldchain.core.rules import Severity
from coldchain.core.timestamps import LAST_TIMESTAMP, to_canonical

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
    # 2: alarm records (one per occurrence) and the notification outbox.
    """
    CREATE TABLE alarms (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        fleet_id TEXT,
        rule TEXT NOT NULL,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        raised_at TEXT NOT NULL,
        cleared_at TEXT,
        peak REAL NOT NULL,
        out_of_range_s REAL NOT NULL,
        detail TEXT NOT NULL,
        ack_by TEXT,
        ack_at TEXT,
        ack_comment TEXT,
        last_notified_at TEXT
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX alarms_by_device ON alarms (device_id, started_at);
    CREATE INDEX alarms_by_state ON alarms (state, started_at);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        alarm_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        document TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        delivered_at TEXT,
        last_error TEXT
    ) STRICT;
    CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at);
    """,
    # 3: bounded dead letters: the sending device (for its quota), the whole payload's size
    #    and SHA-256 beside its kept first 4 KiB, and counts of what the bounds dropped.
    """
    ALTER TABLE dead_letters ADD COLUMN device_id TEXT NOT NULL DEFAULT '-';
    ALTER TABLE dead_letters ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE dead_letters ADD COLUMN sha256 TEXT NOT NULL DEFAULT '';
    UPDATE dead_letters SET size = length(payload),
        device_id = CASE WHEN topic LIKE 'dt/coldchain/%/telemetry'
                         THEN substr(topic, 14, length(topic) - 23) ELSE '-' END;
    CREATE INDEX dead_letters_by_device ON dead_letters (device_id);
    CREATE INDEX dead_letters_by_arrival ON dead_letters (received_at);
    CREATE TABLE dead_letter_drops (
        device_id TEXT PRIMARY KEY,
        over_quota INTEGER NOT NULL DEFAULT 0,
        expired INTEGER NOT NULL DEFAULT 0,
        last_dropped_at TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    """,
    # 4: each device's rule state between readings (core.device_state), versioned; one
    #    outbox row per notification key and channel (a redelivery enqueues nothing twice).
    """
    CREATE TABLE device_state (
        device_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        document TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    ALTER TABLE outbox ADD COLUMN notification_key TEXT;
    UPDATE outbox SET notification_key = 'legacy:' || id;
    CREATE UNIQUE INDEX outbox_once ON outbox (channel, notification_key);
    """,
    # 5: the notification channels the worker runs with (name, lowest severity), so that
    #    `dlq replay` enqueues for the same channels.
    """
    CREATE TABLE channels (
        name TEXT PRIMARY KEY,
        minimum TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    """,
    # 6: the alarm profile the worker runs with (its TOML keys as JSON), so that `dlq replay`,
    #    the dashboard and the CLI use the same rules, band and silence time.
    """
    CREATE TABLE worker_profile (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        document TEXT NOT NULL
    ) STRICT;
    """,
    # 7: the audit trail (shipments, acknowledgements, decisions): append-only; triggers
    #    refuse an UPDATE or DELETE, so not even a bug in this code can rewrite history.
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        subject TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        document TEXT NOT NULL,
        UNIQUE (subject, seq)
    ) STRICT;
    CREATE INDEX audit_by_time ON audit_log (at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 8: INSERT OR REPLACE deletes without firing the delete trigger (recursive triggers are
    #    off): refuse any insert that would replace a record.
    """
    CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit_log
    WHEN EXISTS (
        SELECT 1 FROM audit_log
        WHERE id = NEW.id OR (subject = NEW.subject AND seq = NEW.seq)
    )
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: that record exists'); END;
    """,
    # 9: device commands and their lifecycle (core.commands); the control service sends the
    #    unsent ones and records the answers.
    """
    CREATE TABLE commands (
        command_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        document TEXT NOT NULL,
        status TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX commands_by_device ON commands (device_id, issued_at);
    CREATE INDEX commands_open ON commands (status) WHERE status NOT IN
        ('succeeded', 'failed', 'rejected', 'expired');
    """,
    # 10: device shadows (core.shadow): desired and reported configuration with a version;
    #     delta_due marks an operator's change the control service has yet to announce.
    """
    CREATE TABLE shadows (
        device_id TEXT PRIMARY KEY,
        desired TEXT NOT NULL,
        reported TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at TEXT,
        delta_due INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 11: firmware images, jobs and their per-device executions (core.jobs).
    """
    CREATE TABLE firmware (
        version TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        added_at TEXT NOT NULL
    );
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        document TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE job_executions (
        job_id TEXT NOT NULL REFERENCES jobs (job_id),
        device_id TEXT NOT NULL,
        status TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (job_id, device_id)
    );
    """,
)

_UNAVAILABLE_MARKERS: Final = ("locked", "readonly", "read-only", "disk", "full", "unable to open")
_COLUMNS: Final = (
    "device_id, ts, fleet_id, temperature_c, humidity_pct, shock_g, battery_pct, "
    "latitude, longitude, firmware_version, seq"
)
_READ_COLUMNS: Final = (
    "device_id, ts, temperature_c, humidity_pct, shock_g, battery_pct, "
    "latitude, longitude, fleet_id, firmware_version, seq"
)


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script (a trigger's body holds semicolons too)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


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


translated = _translated  # for the other SQLite adapter modules


class SqliteDatabase:
    """A WAL-mode SQLite database with schema migrations and nestable transactions.

    ``synchronous=FULL`` makes a commit durable across power loss, not only a process
    crash: the worker acknowledges messages after commit, so a commit must mean stored.
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = str(path)
        self._identity: tuple[int, int] | None = None
        self._watch: int | None = None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _translated():
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        if self.path != ":memory:":
            self._watch_file()
        self._depth = 0
        self.migrate()

    def _watch_file(self) -> None:
        """Remember which file we opened (device, inode) and hold it open to see its links."""
        try:
            self._watch = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise StorageUnavailableError(f"cannot open {self.path}: {exc.strerror}") from exc
        status = os.fstat(self._watch)
        self._identity = (status.st_dev, status.st_ino)
        if status.st_uid == os.geteuid() and status.st_mode & 0o077:
            Path(self.path).chmod(0o600)  # readings carry positions: owner only

    def ensure_present(self) -> None:
        """Raise when the file we write is no longer the one at our path (deleted, replaced):
        a commit would go to an unlinked file and be lost at the next start.

        Raises:
            StoreLostError: the path no longer names the file this connection writes.
        """
        if self._watch is None:
            return
        links = os.fstat(self._watch).st_nlink
        try:
            current = Path(self.path).stat()
        except FileNotFoundError:
            current = None
        if links == 0 or current is None or (current.st_dev, current.st_ino) != self._identity:
            raise StoreLostError(
                f"the database {self.path} was deleted or replaced while in use; "
                "nothing more is committed or acknowledged"
            )

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
                    for statement in _statements(script):
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
        try:
            self.ensure_present()
        except StoreLostError:
            self._conn.execute("ROLLBACK")
            raise
        with _translated():
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._conn.close()
        if self._watch is not None:
            os.close(self._watch)
            self._watch = None


def _row_to_reading(row: tuple[Any, ...]) -> Reading:
    """A row selected with ``_READ_COLUMNS`` (Reading's field order). STRICT REAL columns
    come back as floats and INTEGER as ints, so no conversion is needed on this hot path.
    """
    return Reading(*row)


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
            f"SELECT {_READ_COLUMNS} FROM readings WHERE device_id = ? AND ts = ?", (device_id, ts)
        ).fetchone()
        return None if row is None else _row_to_reading(row)

    def recent(self, device_id: str, until: str, limit: int) -> list[Reading]:
        with _translated():
            rows = self._db.connection.execute(
                f"SELECT {_READ_COLUMNS} FROM readings WHERE device_id = ? AND ts <= ? "
                "ORDER BY ts DESC LIMIT ?",
                (device_id, until, limit),
            ).fetchall()
        return [_row_to_reading(row) for row in reversed(rows)]

    def between(self, device_id: str, start: str, end: str) -> Iterator[Reading]:
        return self._stream(
            f"SELECT {_READ_COLUMNS} FROM readings WHERE device_id = ? AND ts BETWEEN ? AND ? "
            "ORDER BY ts",
            (device_id, start, end),
        )

    def fleet_between(self, fleet_id: str, start: str, end: str) -> Iterator[Reading]:
        return self._stream(
            f"SELECT {_READ_COLUMNS} FROM readings WHERE fleet_id = ? AND ts BETWEEN ? AND ? "
            "ORDER BY ts, device_id",
            (fleet_id, start, end),
        )

    def _stream(self, sql: str, params: tuple[object, ...]) -> Iterator[Reading]:
        with _translated():
            cursor = self._db.connection.execute(sql, params)
            while rows := cursor.fetchmany(1000):
                yield from (_row_to_reading(row) for row in rows)

    def latest(self) -> list[Reading]:
        columns = ", ".join(f"r.{name.strip()}" for name in _READ_COLUMNS.split(","))
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
    active_alarms: int = 0


def summarise(db: SqliteDatabase) -> StoreSummary:
    """Readings and devices from the per-device rows (no scan of the readings table)."""
    conn = db.connection
    with _translated():
        readings, devices = conn.execute(
            "SELECT coalesce(sum(readings), 0), count(*) FROM devices"
        ).fetchone()
        events = dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
        (dead,) = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        (active,) = conn.execute("SELECT count(*) FROM alarms WHERE state = 'active'").fetchone()
    return StoreSummary(int(readings), int(devices), events, int(dead), int(active))


_LETTER_COLUMNS: Final = "id, kind, topic, payload, received_at, reason, attempts, size, sha256"


def _row_letter(row: tuple[Any, ...]) -> StoredDeadLetter:
    row_id, kind, topic, payload, received_at, reason, attempts, size, sha256 = row
    letter = DeadLetter(
        DeadLetterKind(kind),
        str(topic),
        bytes(payload),
        datetime.fromisoformat(received_at),
        str(reason),
    )
    return StoredDeadLetter(int(row_id), letter, int(attempts), int(size), str(sha256))


class SqliteDeadLetterStore:
    """Dead letters in SQLite, deduplicated by fingerprint and bounded; see the port."""

    def __init__(self, db: SqliteDatabase, policy: DeadLetterPolicy | None = None) -> None:
        self._db = db
        self._policy = policy or DeadLetterPolicy()

    def put_many(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        now = to_canonical(datetime.now(UTC))
        conn = self._db.connection
        held: dict[str, int] = {}
        with self._db.transaction(), _translated():
            for letter in letters:
                key = dead_letter_key(letter)
                sender = letter_sender(letter)
                known = conn.execute(
                    "SELECT 1 FROM dead_letters WHERE fingerprint = ?", (key,)
                ).fetchone()
                if known is None:
                    if sender not in held:
                        held[sender] = conn.execute(
                            "SELECT count(*) FROM dead_letters WHERE device_id = ?", (sender,)
                        ).fetchone()[0]
                    if held[sender] >= self._policy.quota_per_device:
                        self._count_drop(sender, "over_quota", 1, now)
                        continue
                    held[sender] += 1
                conn.execute(
                    """
                    INSERT INTO dead_letters
                        (fingerprint, kind, topic, payload, received_at, reason, attempts,
                         last_attempt_at, device_id, size, sha256)
                    VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
                    ON CONFLICT (fingerprint) DO UPDATE SET
                        attempts = dead_letters.attempts + 1,
                        reason = excluded.reason,
                        last_attempt_at = excluded.last_attempt_at
                    """,
                    (
                        key,
                        letter.kind.value,
                        letter.topic,
                        kept_payload(letter.payload),
                        to_canonical(letter.received_at),
                        letter.reason,
                        now,
                        sender,
                        len(letter.payload),
                        payload_sha256(letter.payload),
                    ),
                )

    def _count_drop(self, sender: str, column: str, count: int, now: str) -> None:
        self._db.connection.execute(
            f"""
            INSERT INTO dead_letter_drops (device_id, {column}, last_dropped_at)
            VALUES (?, ?, ?)
            ON CONFLICT (device_id) DO UPDATE SET
                {column} = dead_letter_drops.{column} + excluded.{column},
                last_dropped_at = excluded.last_dropped_at
            """,
            (sender, count, now),
        )

    def expire(self, now: datetime) -> int:
        """Delete dead letters older than the retention; returns how many, counted per sender."""
        cutoff = to_canonical(now - self._policy.retention)
        stamp = to_canonical(now)
        with self._db.transaction(), _translated():
            conn = self._db.connection
            expired = conn.execute(
                "SELECT device_id, count(*) FROM dead_letters WHERE received_at < ? "
                "GROUP BY device_id",
                (cutoff,),
            ).fetchall()
            conn.execute("DELETE FROM dead_letters WHERE received_at < ?", (cutoff,))
            for sender, count in expired:
                self._count_drop(sender, "expired", int(count), stamp)
        return sum(int(count) for _, count in expired)

    def dropped(self) -> list[DroppedLetters]:
        """What the bounds dropped, per sender, most first."""
        with _translated():
            rows = self._db.connection.execute(
                "SELECT device_id, over_quota, expired, last_dropped_at FROM dead_letter_drops "
                "ORDER BY over_quota + expired DESC, device_id"
            ).fetchall()
        return [DroppedLetters(str(d), int(q), int(e), str(at)) for d, q, e, at in rows]

    def list(self, limit: int = 100) -> list[StoredDeadLetter]:
        with _translated():
            rows = self._db.connection.execute(
                f"SELECT {_LETTER_COLUMNS} FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_row_letter(row) for row in rows]

    def count(self) -> int:
        with _translated():
            row = self._db.connection.execute("SELECT count(*) FROM dead_letters").fetchone()
        return int(row[0])

    def get(self, letter_id: int) -> StoredDeadLetter | None:
        with _translated():
            row = self._db.connection.execute(
                f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,)
            ).fetchone()
        return None if row is None else _row_letter(row)

    def delete(self, letter_id: int) -> None:
        with self._db.transaction(), _translated():
            self._db.connection.execute("DELETE FROM dead_letters WHERE id = ?", (letter_id,))


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


_ALARM_COLUMNS: Final = (
    "id, device_id, fleet_id, rule, severity, state, started_at, raised_at, cleared_at, peak, "
    "out_of_range_s, detail, ack_by, ack_at, ack_comment, last_notified_at"
)


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else to_canonical(moment)


def _dt(text: object) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


def _alarm_row(alarm: Alarm) -> tuple[object, ...]:
    ack = alarm.acknowledgement
    return (
        alarm.id,
        alarm.device_id,
        alarm.fleet_id,
        alarm.rule,
        alarm.severity.value,
        alarm.state.value,
        _ts(alarm.started_at),
        _ts(alarm.raised_at),
        _ts(alarm.cleared_at),
        alarm.peak,
        alarm.out_of_range.total_seconds(),
        alarm.detail,
        None if ack is None else ack.by,
        None if ack is None else _ts(ack.at),
        None if ack is None else ack.comment,
        _ts(alarm.last_notified_at),
    )


def _required(value: object, name: str) -> datetime:
    """A time the schema always fills; its absence is a damaged record, not a default."""
    found = _dt(value)
    if found is None:
        raise StorageError(f"alarm record without {name}")
    return found


def _row_alarm(row: tuple[object, ...]) -> Alarm:
    (
        alarm_id_,
        device,
        fleet,
        rule,
        severity,
        state,
        started,
        raised,
        cleared,
        peak,
        out_s,
        detail,
        ack_by,
        ack_at,
        ack_comment,
        notified,
    ) = row
    ack = None
    if ack_by is not None:
        ack = Acknowledgement(str(ack_by), _required(ack_at, "ack_at"), str(ack_comment))
    return Alarm(
        id=str(alarm_id_),
        device_id=str(device),
        fleet_id=None if fleet is None else str(fleet),
        rule=str(rule),
        severity=Severity(str(severity)),
        state=AlarmState(str(state)),
        started_at=_required(started, "started_at"),
        raised_at=_required(raised, "raised_at"),
        cleared_at=_dt(cleared),
        peak=float(peak),  # type: ignore[arg-type]
        out_of_range=timedelta(seconds=float(out_s)),  # type: ignore[arg-type]
        detail=str(detail),
        acknowledgement=ack,
        last_notified_at=_dt(notified),
    )


class SqliteAlarmStore:
    """Alarm records in SQLite; see :class:`coldchain.core.ports.AlarmStore`."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def get(self, alarm_id: str) -> Alarm | None:
        with _translated():
            row = self._db.connection.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,)
            ).fetchone()
        return None if row is None else _row_alarm(row)

    def resolve(self, prefix: str) -> str:
        """The one alarm id that is ``prefix`` or starts with it (ids are shown whole, and a
        short unique prefix is accepted, as git does).

        Raises:
            NotFoundError: no alarm id starts with it.
            ValidationError: several do (they are named).
        """
        with _translated():
            rows = self._db.connection.execute(
                "SELECT id FROM alarms WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 6",
                (len(prefix), prefix),
            ).fetchall()
        ids = [alarm_id for (alarm_id,) in rows]
        if prefix in ids or len(ids) == 1:
            return prefix if prefix in ids else ids[0]
        if not ids:
            raise NotFoundError(f"no alarm {prefix!r}")
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise ValidationError([Issue("alarm", f"{prefix!r} is ambiguous: {shown}")])

    def save(self, alarms: Sequence[Alarm]) -> None:
        if not alarms:
            return
        placeholders = ", ".join("?" * 16)
        with self._db.transaction(), _translated():
            self._db.connection.executemany(
                f"INSERT INTO alarms ({_ALARM_COLUMNS}) VALUES ({placeholders}) "
                "ON CONFLICT (id) DO UPDATE SET fleet_id = excluded.fleet_id, "
                "severity = excluded.severity, state = excluded.state, "
                "raised_at = excluded.raised_at, cleared_at = excluded.cleared_at, "
                "peak = excluded.peak, out_of_range_s = excluded.out_of_range_s, "
                "detail = excluded.detail, "
                "ack_by = coalesce(excluded.ack_by, alarms.ack_by), "
                "ack_at = coalesce(excluded.ack_at, alarms.ack_at), "
                "ack_comment = coalesce(excluded.ack_comment, alarms.ack_comment), "
                "last_notified_at = coalesce(excluded.last_notified_at, alarms.last_notified_at)",
                [_alarm_row(alarm) for alarm in alarms],
            )

    def delete(self, alarm_ids: Sequence[str]) -> None:
        with self._db.transaction(), _translated():
            self._db.connection.executemany(
                "DELETE FROM alarms WHERE id = ?", [(alarm_id,) for alarm_id in alarm_ids]
            )

    def for_device(self, device_id: str, since: datetime) -> list[Alarm]:
        with _translated():
            rows = self._db.connection.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE device_id = ? "
                "AND (state = 'active' OR cleared_at >= ?) ORDER BY started_at",
                (device_id, to_canonical(since)),
            ).fetchall()
        return [_row_alarm(row) for row in rows]

    def list(
        self,
        *,
        active: bool | None = None,
        device_id: str | None = None,
        fleet_id: str | None = None,
        limit: int = 100,
    ) -> list[Alarm]:
        clauses, params = [], []
        if active is not None:
            clauses.append("state = ?")
            params.append("active" if active else "cleared")
        if device_id is not None:
            clauses.append("device_id = ?")
            params.append(device_id)
        if fleet_id is not None:
            clauses.append("fleet_id = ?")
            params.append(fleet_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with _translated():
            rows = self._db.connection.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms {where} ORDER BY started_at DESC, id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_row_alarm(row) for row in rows]


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
        with self._db.transaction(), _translated():
            self._db.connection.execute("DELETE FROM channels")
            self._db.connection.executemany(
                "INSERT INTO channels (name, minimum) VALUES (?, ?)",
                [(name, minimum.value) for name, minimum in self._channels.items()],
            )

    @staticmethod
    def remembered_channels(db: SqliteDatabase) -> dict[str, Severity]:
        """The channels the worker last ran with (the log channel when none was recorded)."""
        with _translated():
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
        with self._db.transaction(), _translated():
            self._db.connection.executemany(
                "INSERT INTO outbox (channel, alarm_id, kind, subject, document, created_at, "
                "next_attempt_at, notification_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (channel, notification_key) DO NOTHING",
                rows,
            )

    def due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Undelivered items whose next attempt is due, oldest first."""
        with _translated():
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
        with self._db.transaction(), _translated():
            self._db.connection.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
                (to_canonical(now), item_id),
            )

    def failed(self, item_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt; ``retry_at`` None gives up (the error stays recorded)."""
        with self._db.transaction(), _translated():
            self._db.connection.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE id = ?",
                (error[:500], to_canonical(retry_at) if retry_at else LAST_TIMESTAMP, item_id),
            )

    def pending(self) -> int:
        with _translated():
            (count,) = self._db.connection.execute(
                "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
            ).fetchone()
        return int(count)


class SqliteDeviceStateStore:
    """Device states as JSON documents with a version; see the port."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def get_many(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        found: dict[str, DeviceState] = {}
        with _translated():
            for start in range(0, len(device_ids), 500):
                chunk = list(device_ids[start : start + 500])
                marks = ", ".join("?" * len(chunk))
                rows = self._db.connection.execute(
                    f"SELECT device_id, version, document FROM device_state "
                    f"WHERE device_id IN ({marks})",
                    chunk,
                ).fetchall()
                for device_id, version, document in rows:
                    found[device_id] = state_from_document(json.loads(document), int(version))
        return found

    def put(self, state: DeviceState, expected_version: int) -> None:
        document = json.dumps(state_document(state), separators=(",", ":"))
        with self._db.transaction(), _translated():
            conn = self._db.connection
            if expected_version == 0:
                written = conn.execute(
                    "INSERT INTO device_state (device_id, version, document) VALUES (?, 1, ?) "
                    "ON CONFLICT (device_id) DO NOTHING",
                    (state.device_id, document),
                ).rowcount
            else:
                written = conn.execute(
                    "UPDATE device_state SET version = version + 1, document = ? "
                    "WHERE device_id = ? AND version = ?",
                    (document, state.device_id, expected_version),
                ).rowcount
        if written != 1:
            raise StateConflictError(f"{state.device_id}: state changed since it was read")

    def all(self) -> Iterator[DeviceState]:
        with _translated():
            rows = self._db.connection.execute(
                "SELECT device_id, version, document FROM device_state ORDER BY device_id"
            ).fetchall()
        return iter(state_from_document(json.loads(d), int(v)) for _, v, d in rows)


class SqliteProfileRecord:
    """The alarm profile the worker runs with, recorded in the database it writes."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def remember(self, profile: AlarmProfile) -> None:
        document = json.dumps(profile_mapping(profile), separators=(",", ":"))
        with self._db.transaction(), _translated():
            self._db.connection.execute(
                "INSERT INTO worker_profile (id, document) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET document = excluded.document",
                (document,),
            )

    def remembered(self) -> AlarmProfile | None:
        """The profile the worker last ran with; None before any worker has run.

        Raises:
            ConfigurationError: the recorded profile is not valid (written by another version).
        """
        with _translated():
            row = self._db.connection.execute(
                "SELECT document FROM worker_profile WHERE id = 1"
            ).fetchone()
        if row is None:
            return None
        return profile_from_mapping(json.loads(row[0]), source="the worker's recorded profile")


class SqliteAuditLog:
    """The audit trail in SQLite; see :class:`coldchain.core.audit.AuditLog`."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def append(self, record: AuditRecord) -> None:
        document = json.dumps(record.document(), separators=(",", ":"))
        with self._db.transaction(), _translated():
            try:
                self._db.connection.execute(
                    "INSERT INTO audit_log (subject, seq, at, document) VALUES (?, ?, ?, ?)",
                    (record.subject, record.seq, to_canonical(record.at), document),
                )
            except sqlite3.IntegrityError:
                raise StateConflictError(f"{record.subject}: record {record.seq} exists") from None

    def history(self, subject: str) -> list[AuditRecord]:
        return self._select("WHERE subject = ? ORDER BY seq", (subject,))

    def subjects(self, prefix: str) -> list[str]:
        with _translated():
            rows = self._db.connection.execute(
                "SELECT DISTINCT subject FROM audit_log WHERE substr(subject, 1, ?) = ? "
                "ORDER BY subject",
                (len(prefix), prefix),
            ).fetchall()
        return [subject for (subject,) in rows]

    def recent(self, limit: int) -> list[AuditRecord]:
        return self._select("ORDER BY at DESC, id DESC LIMIT ?", (limit,))  # ties: newest first

    def _select(self, where: str, params: tuple[object, ...]) -> list[AuditRecord]:
        with _translated():
            rows = self._db.connection.execute(
                f"SELECT document FROM audit_log {where}",
                params,
            ).fetchall()
        return [record_from_document(json.loads(document)) for (document,) in rows]
