"""Device commands in the SQLite store (core.commands): one row per command, its whole
record as a JSON document beside the columns the queries need.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from coldchain.adapters.sqlite.database import SqliteDatabase, translated, where_equal
from coldchain.core.commands import Command, CommandStatus
from coldchain.core.errors import Issue, NotFoundError, ValidationError
from coldchain.core.timestamps import parse_canonical, to_canonical


def command_document(command: Command) -> dict[str, Any]:
    return {
        "command_id": command.command_id,
        "device_id": command.device_id,
        "name": command.name,
        "args": dict(command.args),
        "issued_at": to_canonical(command.issued_at),
        "expires_at": to_canonical(command.expires_at),
        "timeout_s": command.timeout.total_seconds(),
        "status": command.status.value,
        "updated_at": None if command.updated_at is None else to_canonical(command.updated_at),
        "result": None if command.result is None else dict(command.result),
        "attempts": command.attempts,
        "sent_at": None if command.sent_at is None else to_canonical(command.sent_at),
    }


def command_from_document(document: dict[str, Any]) -> Command:
    def when(name: str) -> Any:
        value = document.get(name)
        return None if value is None else parse_canonical(value)

    return Command(
        command_id=document["command_id"],
        device_id=document["device_id"],
        name=document["name"],
        args=dict(document["args"]),
        issued_at=parse_canonical(document["issued_at"]),
        expires_at=parse_canonical(document["expires_at"]),
        timeout=timedelta(seconds=float(document["timeout_s"])),
        status=CommandStatus(document["status"]),
        updated_at=when("updated_at"),
        result=document.get("result"),
        attempts=int(document.get("attempts", 1)),
        sent_at=when("sent_at"),
    )


class SqliteCommandStore:
    """Commands by id; the open ones (not final) for the control service."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def save(self, commands: Sequence[Command]) -> None:
        with self._db.transaction(), translated():
            self._db.connection.executemany(
                "INSERT INTO commands (command_id, device_id, document, status, issued_at, "
                "sent_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (command_id) DO UPDATE SET "
                "document = excluded.document, status = excluded.status, "
                "sent_at = excluded.sent_at",
                [
                    (
                        c.command_id,
                        c.device_id,
                        json.dumps(command_document(c)),
                        c.status.value,
                        to_canonical(c.issued_at),
                        None if c.sent_at is None else to_canonical(c.sent_at),
                    )
                    for c in commands
                ],
            )

    def swap(self, old: Command, new: Command) -> bool:
        """Write ``new`` only if the stored command is still ``old`` (a retry or an answer may
        have come meanwhile); whether it was written.
        """
        with self._db.transaction(), translated():
            cursor = self._db.connection.execute(
                "UPDATE commands SET document = ?, status = ?, sent_at = ? "
                "WHERE command_id = ? AND document = ?",
                (
                    json.dumps(command_document(new)),
                    new.status.value,
                    None if new.sent_at is None else to_canonical(new.sent_at),
                    old.command_id,
                    json.dumps(command_document(old)),
                ),
            )
        return cursor.rowcount == 1

    def get(self, command_id: str) -> Command | None:
        with translated():
            row = self._db.connection.execute(
                "SELECT document FROM commands WHERE command_id = ?", (command_id,)
            ).fetchone()
        return None if row is None else command_from_document(json.loads(row[0]))

    def resolve(self, prefix: str) -> str:
        """The one command id that is ``prefix`` or starts with it.

        Raises:
            NotFoundError: none does.
            ValidationError: several do.
        """
        with translated():
            rows = self._db.connection.execute(
                "SELECT command_id FROM commands WHERE substr(command_id, 1, ?) = ? "
                "ORDER BY command_id LIMIT 6",
                (len(prefix), prefix),
            ).fetchall()
        ids = [found for (found,) in rows]
        if prefix in ids or len(ids) == 1:
            return prefix if prefix in ids else ids[0]
        if not ids:
            raise NotFoundError(f"no command {prefix!r}")
        raise ValidationError([Issue("command", f"{prefix!r} is ambiguous: {', '.join(ids)}")])

    def open(self) -> list[Command]:
        """Commands not in a final state, oldest first."""
        with translated():
            rows = self._db.connection.execute(
                "SELECT document FROM commands WHERE status NOT IN "
                "('succeeded', 'failed', 'rejected', 'expired') ORDER BY issued_at"
            ).fetchall()
        return [command_from_document(json.loads(row[0])) for (row) in rows]

    def list(
        self, device_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Command]:
        """Newest first."""
        clause, args = where_equal(device_id=device_id, status=status)
        with translated():
            rows = self._db.connection.execute(
                f"SELECT document FROM commands {clause} "  # noqa: S608 - fixed fragments
                "ORDER BY issued_at DESC, command_id LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [command_from_document(json.loads(row[0])) for row in rows]
