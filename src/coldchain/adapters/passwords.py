"""Password hashing with argon2id (argon2-cffi's ``PasswordHasher``).

Each hash costs argon2-cffi's default 64 MiB and a few tens of milliseconds; a semaphore
lets only ``parallel`` hashes run at once, so a burst of sign-in attempts queues instead of
taking the machine's memory.
"""

from __future__ import annotations

import threading
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_DEFAULT_PARALLEL: Final = 2


class Argon2Passwords:
    """Hash and verify passwords; ``hasher`` is injectable (cheaper parameters in tests)."""

    def __init__(self, hasher: PasswordHasher | None = None, parallel: int = _DEFAULT_PARALLEL):
        self._hasher = hasher or PasswordHasher()
        self._slots = threading.BoundedSemaphore(parallel)
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``. With ``stored=None`` (no such user) a
        hash is still checked, so the answer takes as long as for a real user.
        """
        if stored is None:
            if self._dummy is None:
                self._dummy = self.hash("no such user: this hash only spends time")
            stored, password = self._dummy, password + "\0"
        with self._slots:
            try:
                return self._hasher.verify(stored, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
