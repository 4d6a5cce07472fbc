"""The telemetry database: one WAL-mode connection, nestable transactions, migrations.

The stores of this package share one :class:`SqliteDatabase`, so that a batch's readings,
dead letters, events, alarms and notifications commit in one transaction
(:meth:`SqliteDatabase.transaction`) and the worker acknowledges the batch only after that
commit. :func:`translated` turns sqlite3's errors into ours for every store.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from coldchain.adapters.sqlite.migrations import MIGRATIONS, statements
from coldchain.core.errors import StorageError, StorageUnavailableError, StoreLostError

_UNAVAILABLE_MARKERS: Final = ("locked", "readonly", "read-only", "disk", "full", "unable to open")


def where_equal(**columns: object) -> tuple[str, list[object]]:
    """``WHERE a = ? AND b = ?`` for the columns given a value (None: no condition), and the
    values to bind; empty when none is given. Column names come from the caller's code.
    """
    chosen = {name: value for name, value in columns.items() if value is not None}
    if not chosen:
        return "", []
    return "WHERE " + " AND ".join(f"{name} = ?" for name in chosen), list(chosen.values())


@contextmanager
def translated() -> Iterator[None]:
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
        self._identity: tuple[int, int] | None = None
        self._watch: int | None = None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with translated():
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
        """The underlying connection, for the stores of this package."""
        return self._conn

    def schema_version(self) -> int:
        """The number of migrations applied."""
        with translated():
            row = self._conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def migrate(self) -> None:
        """Apply the migrations this file has not seen yet, each in its own transaction."""
        for version, script in enumerate(MIGRATIONS, start=1):
            if self.schema_version() >= version:
                continue
            with translated():
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in statements(script):
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
        with translated():
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
        with translated():
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
