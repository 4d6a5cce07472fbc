"""The one error tree of coldchain.

ColdchainError
├── ValidationError        a payload or argument that breaks the rules (carries every issue)
├── BadRequestError        a request parameter the dashboard API cannot use (HTTP 400)
├── ConfigurationError     settings, profiles or files that cannot be used
│   ├── AlreadyRunningError       another process holds this data folder (or port)
│   └── ConnectError              the broker refused us or cannot be reached at start
├── StorageError           a store could not do what was asked (adapters translate SDK errors)
│   ├── StorageUnavailableError   the store is down or read-only; retry later
│   ├── StoreLostError            the database file was deleted or replaced under us
│   └── StateConflictError        a device's state changed since it was read; retry
├── BrokerError            the MQTT broker cannot be reached or refused a request
├── DeliveryError          a notification channel could not deliver; the outbox retries
├── NotFoundError          a device, alarm or dead letter that does not exist
├── PkiError               certificates and keys that cannot be made or read
├── AuthenticationError    no valid credentials: unknown name, wrong password, expired session
└── PermissionDeniedError  signed in, but the role does not allow the action
"""

from __future__ import annotations

from dataclasses import dataclass


class ColdchainError(Exception):
    """Root of every error coldchain raises on purpose."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One failing field and a human reason, e.g. ``temperature_c: must be <= 85``."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class ValidationError(ColdchainError):
    """Input that breaks the rules; ``issues`` names every failing field."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = tuple(issues)
        super().__init__("; ".join(str(issue) for issue in self.issues))


class ConfigurationError(ColdchainError):
    """Settings, profiles or files that cannot be used."""


class StorageError(ColdchainError):
    """A store could not do what was asked."""


class StorageUnavailableError(StorageError):
    """The store is down, locked or read-only; the work can be retried later."""


class StoreLostError(StorageError):
    """The database file the process opened was deleted or replaced: stop, acknowledge nothing."""


class StateConflictError(StorageError):
    """A device's state was written by someone else since it was read: reload and retry."""


class AlreadyRunningError(ConfigurationError):
    """Another process holds the data folder (or the part of it this command needs)."""


class BrokerError(ColdchainError):
    """The MQTT broker cannot be reached, or refused a request."""


class NotFoundError(ColdchainError):
    """A device, alarm or dead letter that does not exist."""


class PkiError(ColdchainError):
    """Certificates and keys that cannot be made or read."""


class AuthenticationError(ColdchainError):
    """No valid credentials: an unknown name, a wrong password, an expired session or token."""


class PermissionDeniedError(ColdchainError):
    """An authenticated user whose role does not allow the action."""


class BadRequestError(ColdchainError):
    """A request parameter the dashboard API cannot use (a 400: the message says which)."""


class ConnectError(ConfigurationError):
    """The broker refused the connection or could not be reached."""


class DeliveryError(ColdchainError):
    """A notification channel could not deliver; the outbox will try again later."""
