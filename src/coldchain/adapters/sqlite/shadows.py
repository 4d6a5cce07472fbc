"""Device shadows in the SQLite store (core.shadow), written with a version check."""

from __future__ import annotations

import json

from coldchain.adapters.sqlite.database import SqliteDatabase, translated
from coldchain.core.errors import StateConflictError
from coldchain.core.shadow import Shadow
from coldchain.core.timestamps import parse_canonical, to_canonical


class SqliteShadowStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def get(self, device_id: str) -> Shadow | None:
        with translated():
            row = self._db.connection.execute(
                "SELECT desired, reported, version, updated_at FROM shadows WHERE device_id = ?",
                (device_id,),
            ).fetchone()
        if row is None:
            return None
        desired, reported, version, updated_at = row
        return Shadow(
            device_id,
            json.loads(desired),
            json.loads(reported),
            int(version),
            None if updated_at is None else parse_canonical(updated_at),
        )

    def put(self, shadow: Shadow, expected_version: int, *, announce: bool) -> None:
        """Write ``shadow`` if the stored one is still at ``expected_version``; ``announce``
        marks its delta for the control service to publish.

        Raises:
            StateConflictError: another writer got there first.
        """
        values = (
            json.dumps(dict(shadow.desired)),
            json.dumps(dict(shadow.reported)),
            shadow.version,
            None if shadow.updated_at is None else to_canonical(shadow.updated_at),
            int(announce),
        )
        with self._db.transaction(), translated():
            if expected_version == 0:
                cursor = self._db.connection.execute(
                    "INSERT INTO shadows (device_id, desired, reported, version, updated_at, "
                    "delta_due) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO NOTHING",
                    (shadow.device_id, *values),
                )
            else:
                cursor = self._db.connection.execute(
                    "UPDATE shadows SET desired = ?, reported = ?, version = ?, updated_at = ?, "
                    "delta_due = max(delta_due, ?) WHERE device_id = ? AND version = ?",
                    (*values, shadow.device_id, expected_version),
                )
            if cursor.rowcount != 1:
                raise StateConflictError(f"{shadow.device_id}: shadow changed meanwhile")

    def due(self) -> list[Shadow]:
        """Shadows whose desired change is not announced yet."""
        with translated():
            rows = self._db.connection.execute(
                "SELECT device_id FROM shadows WHERE delta_due = 1 ORDER BY device_id"
            ).fetchall()
        return [found for (device_id,) in rows if (found := self.get(device_id)) is not None]

    def announced(self, device_id: str, version: int) -> None:
        with self._db.transaction(), translated():
            self._db.connection.execute(
                "UPDATE shadows SET delta_due = 0 WHERE device_id = ? AND version = ?",
                (device_id, version),
            )
