"""The dashboard's users, sessions and API tokens in their own SQLite file, ``auth.db``.

It sits beside the telemetry database (same folder), mode 0600, with its own migrations
(``AUTH_MIGRATIONS`` in :mod:`coldchain.adapters.sqlite.migrations`):
credentials never share a file, a backup or a ``sqlite3`` session with telemetry, and the
telemetry schema knows nothing of them. Passwords arrive here already hashed (argon2);
sessions and tokens are stored as SHA-256 digests, so a copy of this file signs nobody in.
One connection, used under a lock: every statement here is tiny.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from coldchain.adapters.sqlite.migrations import AUTH_MIGRATIONS
from coldchain.core.errors import Issue, StorageError, StorageUnavailableError, ValidationError
from coldchain.core.timestamps import parse_canonical, to_canonical
from coldchain.core.users import Role, User

AUTH_FILE: Final = "auth.db"
FILE_MODE: Final = 0o600
_NOTE_USE_EVERY: Final = timedelta(minutes=1)


def auth_path(database: Path) -> Path:
    """Where ``auth.db`` lives for the telemetry database at ``database``: its folder."""
    return database.parent / AUTH_FILE


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as listed: role, when made, open sessions and tokens."""

    user: User
    created_at: datetime
    sessions: int
    tokens: int


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "unable to open" in str(exc):
            raise StorageUnavailableError(f"auth store unavailable: {exc}") from exc
        raise StorageError(f"auth store error: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"auth store error: {exc}") from exc


class SqliteAuthStore:
    """Users, sessions and tokens in ``path`` (created 0600 if missing, tightened if not)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, FILE_MODE))
            self.path.chmod(FILE_MODE)
        except OSError as exc:
            raise StorageError(f"cannot create {self.path}: {exc.strerror}") from None
        self._lock = threading.Lock()
        with _translated():
            # SQLite gives the -wal and -shm files the mode of the database file.
            self._conn = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._write():
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            for number, script in enumerate(AUTH_MIGRATIONS, start=1):
                if version < number:
                    for statement in script.split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version={number:d}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _translated():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _translated():
            yield self._conn

    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    # -- users -------------------------------------------------------------------------------
    def add_user(self, user: User, password_hash: str, at: datetime) -> None:
        """Raises ValidationError if a user of that name exists."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (user.name,)).fetchone():
                raise ValidationError([Issue("name", f"user {user.name!r} already exists")])
            conn.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                (user.name, user.role.label, password_hash, to_canonical(at), to_canonical(at)),
            )

    def user(self, name: str) -> tuple[User, str] | None:
        """The user and their password hash, or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT name, role, password_hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else (User(row[0], Role.parse(row[1])), row[2])

    def users(self) -> list[UserRecord]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, role, created_at,"
                " (SELECT count(*) FROM sessions s WHERE s.user_name = u.name),"
                " (SELECT count(*) FROM tokens t WHERE t.user_name = u.name)"
                " FROM users u ORDER BY name"
            ).fetchall()
        return [
            UserRecord(User(name, Role.parse(role)), parse_canonical(created), sessions, tokens)
            for name, role, created, sessions, tokens in rows
        ]

    def remove_user(self, name: str) -> bool:
        """Remove a user with their sessions and tokens; False if there was none."""
        with self._write() as conn:
            return conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def set_password(self, name: str, password_hash: str, at: datetime) -> bool:
        """Replace the hash and end the user's sessions; False if there is no such user."""
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                (password_hash, to_canonical(at), name),
            ).rowcount
            conn.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
        return changed > 0

    def has_admin(self) -> bool:
        with self._read() as conn:
            found = conn.execute("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1").fetchone()
        return found is not None

    # -- sessions ----------------------------------------------------------------------------
    def add_session(self, digest: str, name: str, created: datetime, expires: datetime) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (to_canonical(created),))
            conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (digest, name, to_canonical(created), to_canonical(expires)),
            )

    def session_user(self, digest: str, now: datetime) -> User | None:
        """The user of an unexpired session, or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s.user_name"
                " WHERE s.digest = ? AND s.expires_at > ?",
                (digest, to_canonical(now)),
            ).fetchone()
        return None if row is None else User(row[0], Role.parse(row[1]))

    def remove_session(self, digest: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE digest = ?", (digest,))

    # -- API tokens --------------------------------------------------------------------------
    def add_token(self, digest: str, name: str, label: str, at: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, NULL)",
                (digest, name, label, to_canonical(at)),
            )

    def token_user(self, digest: str, now: datetime) -> User | None:
        """The holder of a token, or None; notes its use (at most once a minute)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT u.name, u.role, t.last_used_at FROM tokens t"
                " JOIN users u ON u.name = t.user_name WHERE t.digest = ?",
                (digest,),
            ).fetchone()
        if row is None:
            return None
        if row[2] is None or parse_canonical(row[2]) < now - _NOTE_USE_EVERY:
            with self._write() as conn:
                conn.execute(
                    "UPDATE tokens SET last_used_at = ? WHERE digest = ?",
                    (to_canonical(now), digest),
                )
        return User(row[0], Role.parse(row[1]))

    def revoke_tokens(self, name: str) -> int:
        """Delete every token of a user; how many there were."""
        with self._write() as conn:
            return conn.execute("DELETE FROM tokens WHERE user_name = ?", (name,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()
