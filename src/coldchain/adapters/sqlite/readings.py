"""Readings in SQLite: the ``readings`` table and the per-device row of ``devices``.

The column lists derive from :data:`coldchain.core.reading.READING_FIELDS`; a field of
:class:`~coldchain.core.reading.Reading` is stored in the column of the same name, except
``timestamp``, stored as ``ts``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter
from typing import Any, Final

from coldchain.adapters.sqlite.database import SqliteDatabase, translated
from coldchain.core.messages import Outcome
from coldchain.core.reading import READING_FIELDS, Reading

_RENAMED: Final = {"timestamp": "ts"}

READING_COLUMNS: Final[tuple[str, ...]] = tuple(_RENAMED.get(f, f) for f in READING_FIELDS)
"""The ``readings`` columns in Reading's field order: a row selected so is ``Reading(*row)``."""

# The table's own column order (migration 1): the key, the fleet, then the rest as in Reading.
_TABLE_FIELDS: Final = (
    *READING_FIELDS[:2],
    "fleet_id",
    *(field for field in READING_FIELDS[2:] if field != "fleet_id"),
)
_TABLE_COLUMNS: Final = ", ".join(_RENAMED.get(f, f) for f in _TABLE_FIELDS)
_MARKS: Final = ",".join("?" * len(_TABLE_FIELDS))
_READ_COLUMNS: Final = ", ".join(READING_COLUMNS)

_reading_row: Final[Callable[[Reading], tuple[object, ...]]] = attrgetter(*_TABLE_FIELDS)
"""The values of a reading in the table's column order."""


def _row_to_reading(row: tuple[Any, ...]) -> Reading:
    """A row selected with ``_READ_COLUMNS`` (Reading's field order). STRICT REAL columns
    come back as floats and INTEGER as ints, so no conversion is needed on this hot path.
    """
    return Reading(*row)


class SqliteReadingStore:
    """Readings in SQLite; see :class:`coldchain.core.ports.ReadingStore`."""

    _INSERT: Final = (
        f"INSERT INTO readings ({_TABLE_COLUMNS}) VALUES ({_MARKS}) "
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
        with self._db.transaction(), translated():
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
        with translated():
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
        with translated():
            cursor = self._db.connection.execute(sql, params)
            while rows := cursor.fetchmany(1000):
                yield from (_row_to_reading(row) for row in rows)

    def latest(self) -> list[Reading]:
        columns = ", ".join(f"r.{name}" for name in READING_COLUMNS)
        with translated():
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
