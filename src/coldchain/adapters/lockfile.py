"""Exclusive locks on the parts of a data folder: one stack, one broker, one worker per identity.

A lock is an ``flock`` on a file that holds the owner's PID. The kernel releases it when the
process dies, however it dies, so a stale file never blocks a restart; a second process that
asks for it is refused at once with the holder's PID.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from coldchain.core.errors import AlreadyRunningError


class FolderLock:
    """An exclusive, non-blocking lock named after what it protects."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._descriptor: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock.

        Raises:
            AlreadyRunningError: another process holds it (the message names its PID).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise AlreadyRunningError(
                f"{self.what} is already running for {self.path.parent} (pid {holder}); "
                "stop it first or use another --home"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor = descriptor
        return self

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()
