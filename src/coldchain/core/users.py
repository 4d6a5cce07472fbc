"""Dashboard users as pure rules: roles and their order, what each action needs, names,
password policy, session lifetime and the digests under which secrets are stored.

Roles are ordered ``viewer < operator < qa < admin``; a role may do what every lower role
may. No I/O here: hashing passwords (argon2) and storing users live in the adapters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, IntEnum
from typing import Final

from coldchain.core.errors import Issue, PermissionDeniedError, ValidationError

SESSION_LIFETIME: Final = timedelta(hours=12)
MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024  # argon2 takes any length; a bound keeps requests small
# API tokens start with this, to be recognisable in a leaked log or a secret scan.
TOKEN_PREFIX: Final = "cct_"  # noqa: S105 - a prefix, not a password
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class Role(IntEnum):
    """What a user may do; a higher role includes every lower one."""

    VIEWER = 1
    OPERATOR = 2
    QA = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named ``text`` (``viewer``, ``operator``, ``qa``, ``admin``).

        Raises:
            ValidationError: no role has that name.
        """
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(role.label for role in cls)
            raise ValidationError([Issue("role", f"{text!r} is not one of {names}")]) from None


class Action(Enum):
    """Something a request does; :data:`REQUIRED` says which role it needs."""

    READ = "read"
    ACKNOWLEDGE_ALARM = "acknowledge alarms"
    MANAGE_SHIPMENTS = "manage shipments"
    SEND_COMMANDS = "send commands"
    DECIDE_RELEASE = "decide release"
    MANAGE_USERS = "manage users"


REQUIRED: Final[dict[Action, Role]] = {
    Action.READ: Role.VIEWER,
    Action.ACKNOWLEDGE_ALARM: Role.OPERATOR,
    Action.MANAGE_SHIPMENTS: Role.OPERATOR,
    Action.SEND_COMMANDS: Role.OPERATOR,
    Action.DECIDE_RELEASE: Role.QA,
    Action.MANAGE_USERS: Role.ADMIN,
}


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in person or a script's token holder."""

    name: str
    role: Role

    def may(self, action: Action) -> bool:
        return self.role >= REQUIRED[action]


def authorize(user: User, action: Action) -> None:
    """Pass if ``user`` may do ``action``.

    Raises:
        PermissionDeniedError: the user's role is below the one the action needs.
    """
    if not user.may(action):
        needed = REQUIRED[action].label
        raise PermissionDeniedError(
            f"{user.name} is a {user.role.label}; to {action.value} takes {needed} or above"
        )


def permissions(user: User) -> list[str]:
    """The actions ``user`` may do, for the page to show only what will work."""
    return [action.value for action in Action if user.may(action)]


def check_name(name: str) -> str:
    """A user name: 1-64 letters, digits, ``. _ @ -``, starting with a letter or digit.

    Raises:
        ValidationError: the name breaks that rule.
    """
    if not _NAME.fullmatch(name):
        raise ValidationError(
            [
                Issue(
                    "name",
                    f"{name!r} must be 1-64 letters, digits, '.', '_', '@' or '-', "
                    "starting with a letter or digit",
                )
            ]
        )
    return name


def check_password(password: str, name: str) -> str:
    """A password good enough to set: long, and not the user's name.

    Raises:
        ValidationError: too short, too long, or equal to the name.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        reason = f"must be at least {MIN_PASSWORD_LENGTH} characters"
    elif len(password) > MAX_PASSWORD_LENGTH:
        reason = f"must be at most {MAX_PASSWORD_LENGTH} characters"
    elif password.strip().lower() == name.lower():
        reason = "must not be the user name"
    else:
        return password
    raise ValidationError([Issue("password", reason)])


def secret_digest(secret: str) -> str:
    """How a session or API token is stored and looked up: SHA-256, hex.

    These secrets are 256 random bits, so a fast hash is enough (no guessing to slow down)
    and lets the store find the row by the digest; passwords get argon2 instead.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def session_expires(started: datetime) -> datetime:
    """When a session started at ``started`` stops working (no sliding renewal)."""
    return started + SESSION_LIFETIME
