"""Dashboard accounts: users, sign-in, sessions and API tokens over ``auth.db``.

Shared by ``coldchain user``, ``coldchain up`` (the first admin) and the dashboard. The rules
(roles, names, password policy, lifetimes) are in :mod:`coldchain.core.users`; this module
wires them to the store, argon2 and the clock, and makes the random secrets.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from coldchain.adapters.passwords import Argon2Passwords
from coldchain.adapters.sqlite.auth import SqliteAuthStore, UserRecord, auth_path
from coldchain.core.errors import AuthenticationError, Issue, NotFoundError, ValidationError
from coldchain.core.users import (
    TOKEN_PREFIX,
    Role,
    User,
    check_name,
    check_password,
    secret_digest,
    session_expires,
)

log = logging.getLogger("coldchain.accounts")
_WRONG = "wrong name or password"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: the secret for the cookie (shown once), whose it is, until when."""

    token: str
    user: User
    expires: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Accounts:
    """Users and their credentials; ``now`` is injectable for tests."""

    def __init__(
        self,
        store: SqliteAuthStore,
        passwords: Argon2Passwords | None = None,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store = store
        self.passwords = passwords or Argon2Passwords()
        self.now = now

    # -- users -------------------------------------------------------------------------------
    def check_new(self, name: str) -> None:
        """Raises ValidationError: ``name`` is not a valid name, or is taken."""
        check_name(name)
        if self.store.user(name) is not None:
            raise ValidationError([Issue("name", f"user {name!r} already exists")])

    def add(self, name: str, role: Role, password: str) -> User:
        """Raises ValidationError: a bad or taken name, or a weak password."""
        user = User(check_name(name), role)
        check_password(password, name)
        self.store.add_user(user, self.passwords.hash(password), self.now())
        return user

    def remove(self, name: str) -> None:
        """Remove a user, their sessions and tokens. Raises NotFoundError."""
        if not self.store.remove_user(name):
            raise NotFoundError(f"no user {name!r}")

    def set_password(self, name: str, password: str) -> None:
        """New password; every session of the user ends. Raises NotFoundError, ValidationError."""
        check_password(password, name)
        if not self.store.set_password(name, self.passwords.hash(password), self.now()):
            raise NotFoundError(f"no user {name!r}")

    def list(self) -> list[UserRecord]:
        return self.store.users()

    # -- sessions ----------------------------------------------------------------------------
    def sign_in(self, name: str, password: str) -> SignedIn:
        """A new session for a correct name and password.

        Raises:
            AuthenticationError: unknown name or wrong password (one message for both).
        """
        found = self.store.user(name)
        if not self.passwords.verify(None if found is None else found[1], password):
            log.warning("failed sign-in for %r", name)
            raise AuthenticationError(_WRONG)
        assert found is not None  # verify(None, ...) is always False
        user, stored = found
        if self.passwords.needs_rehash(stored):
            self.store.set_password(user.name, self.passwords.hash(password), self.now())
        token = secrets.token_urlsafe(32)
        started = self.now()
        expires = session_expires(started)
        self.store.add_session(secret_digest(token), user.name, started, expires)
        return SignedIn(token, user, expires)

    def session_user(self, token: str) -> User:
        """Raises AuthenticationError: no such session, or it expired."""
        user = self.store.session_user(secret_digest(token), self.now())
        if user is None:
            raise AuthenticationError("not signed in, or the session expired: sign in again")
        return user

    def sign_out(self, token: str) -> None:
        self.store.remove_session(secret_digest(token))

    # -- API tokens --------------------------------------------------------------------------
    def issue_token(self, name: str, label: str = "") -> str:
        """A new API token for ``name``; only its digest is kept. Raises NotFoundError."""
        if self.store.user(name) is None:
            raise NotFoundError(f"no user {name!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.store.add_token(secret_digest(token), name, label, self.now())
        return token

    def revoke_tokens(self, name: str) -> int:
        """Raises NotFoundError."""
        if self.store.user(name) is None:
            raise NotFoundError(f"no user {name!r}")
        return self.store.revoke_tokens(name)

    def token_user(self, token: str) -> User:
        """Raises AuthenticationError: an unknown or revoked token."""
        user = self.store.token_user(secret_digest(token), self.now())
        if user is None:
            raise AuthenticationError("unknown API token")
        return user

    # -- the first admin ---------------------------------------------------------------------
    def ensure_admin(self) -> tuple[str, str] | None:
        """If no admin exists, make one with a random password: (name, password), else None."""
        if self.store.has_admin():
            return None
        taken = {record.user.name for record in self.store.users()}
        name = next(n for n in ("admin", *(f"admin-{i}" for i in range(2, 100))) if n not in taken)
        password = secrets.token_urlsafe(12)  # 16 characters, 96 random bits
        self.add(name, Role.ADMIN, password)
        return name, password

    def close(self) -> None:
        self.store.close()


def open_accounts(path: Path, passwords: Argon2Passwords | None = None) -> Accounts:
    """Accounts over the ``auth.db`` at ``path`` (made, mode 0600, if missing)."""
    return Accounts(SqliteAuthStore(path), passwords)


def ensure_admin(database: Path) -> tuple[str, str] | None:
    """For ``coldchain up``: the first admin beside ``database``, as (name, one-time password),
    or None if an admin exists already.
    """
    accounts = open_accounts(auth_path(database))
    try:
        return accounts.ensure_admin()
    finally:
        accounts.close()
