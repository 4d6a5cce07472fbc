"""Dead letters in SQLite: deduplicated by fingerprint, bounded per sender and by age, with
counts of what the bounds dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from coldchain.adapters.sqlite.database import SqliteDatabase, translated
from coldchain.core.messages import (
    DeadLetter,
    DeadLetterKind,
    DeadLetterPolicy,
    DroppedLetters,
    StoredDeadLetter,
    dead_letter_key,
    kept_payload,
    letter_sender,
    payload_sha256,
)
from coldchain.core.timestamps import to_canonical

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
        with self._db.transaction(), translated():
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
        with self._db.transaction(), translated():
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
        with translated():
            rows = self._db.connection.execute(
                "SELECT device_id, over_quota, expired, last_dropped_at FROM dead_letter_drops "
                "ORDER BY over_quota + expired DESC, device_id"
            ).fetchall()
        return [DroppedLetters(str(d), int(q), int(e), str(at)) for d, q, e, at in rows]

    def list(self, limit: int = 100) -> list[StoredDeadLetter]:
        with translated():
            rows = self._db.connection.execute(
                f"SELECT {_LETTER_COLUMNS} FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_row_letter(row) for row in rows]

    def count(self) -> int:
        with translated():
            row = self._db.connection.execute("SELECT count(*) FROM dead_letters").fetchone()
        return int(row[0])

    def get(self, letter_id: int) -> StoredDeadLetter | None:
        with translated():
            row = self._db.connection.execute(
                f"SELECT {_LETTER_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,)
            ).fetchone()
        return None if row is None else _row_letter(row)

    def delete(self, letter_id: int) -> None:
        with self._db.transaction(), translated():
            self._db.connection.execute("DELETE FROM dead_letters WHERE id = ?", (letter_id,))
