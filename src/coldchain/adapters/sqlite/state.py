"""What the worker carries between batches, in SQLite: each device's rule state (versioned)
and the alarm profile the worker runs with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from coldchain.adapters.sqlite.database import SqliteDatabase, translated
from coldchain.core.alarm_profile import AlarmProfile, profile_from_mapping, profile_mapping
from coldchain.core.device_state import DeviceState, state_document, state_from_document
from coldchain.core.errors import StateConflictError


class SqliteDeviceStateStore:
    """Device states as JSON documents with a version; see the port."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def get_many(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        found: dict[str, DeviceState] = {}
        with translated():
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
        with self._db.transaction(), translated():
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
        with translated():
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
        with self._db.transaction(), translated():
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
        with translated():
            row = self._db.connection.execute(
                "SELECT document FROM worker_profile WHERE id = 1"
            ).fetchone()
        if row is None:
            return None
        return profile_from_mapping(json.loads(row[0]), source="the worker's recorded profile")
