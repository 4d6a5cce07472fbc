"""The audit trail in SQLite: append-only, enforced by triggers (see migrations 7 and 8)."""

from __future__ import annotations

import json
import sqlite3

from coldchain.adapters.sqlite.database import SqliteDatabase, translated
from coldchain.core.audit import AuditRecord, record_from_document
from coldchain.core.errors import StateConflictError
from coldchain.core.timestamps import to_canonical


class SqliteAuditLog:
    """The audit trail in SQLite; see :class:`coldchain.core.audit.AuditLog`."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def append(self, record: AuditRecord) -> None:
        document = json.dumps(record.document(), separators=(",", ":"))
        with self._db.transaction(), translated():
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
        with translated():
            rows = self._db.connection.execute(
                "SELECT DISTINCT subject FROM audit_log WHERE substr(subject, 1, ?) = ? "
                "ORDER BY subject",
                (len(prefix), prefix),
            ).fetchall()
        return [subject for (subject,) in rows]

    def recent(self, limit: int) -> list[AuditRecord]:
        return self._select("ORDER BY at DESC, id DESC LIMIT ?", (limit,))  # ties: newest first

    def _select(self, where: str, params: tuple[object, ...]) -> list[AuditRecord]:
        with translated():
            rows = self._db.connection.execute(
                f"SELECT document FROM audit_log {where}",
                params,
            ).fetchall()
        return [record_from_document(json.loads(document)) for (document,) in rows]
