"""Commands: transient actions sent to one device (run a self-test, change the reporting
interval now, reboot), on ``cmd/{device_id}/request``, answered on ``cmd/{device_id}/response``.

A command carries a ``command_id`` (UUID), a name, arguments, its issue time and an expiry.
The device acts on a ``command_id`` once: the same command again gets the same response. The
cloud side keeps each command's lifecycle::

    sent ──response──▶ acknowledged ──▶ succeeded | failed | rejected
      │                    │
      └─ no answer within its timeout ─▶ timed_out ──(answer before expiry)──▶ a final state
                                              └────(expiry passes)──────────▶ expired

A command is *delivered* while it has not expired (the broker holds it for an offline device's
persistent session, with the MQTT v5 message expiry set to what is left); after its expiry
a device drops it. ``retry`` sends the same ``command_id`` again, a finished one too until it
expires (the device answers from its memory if it already acted, so nothing happens twice;
the answer is recorded again).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from coldchain.core.errors import Issue
from coldchain.core.errors import ValidationError as DomainValidationError
from coldchain.core.timestamps import parse_iso, to_canonical

COMMAND_NAME_MAX: Final = 64
ARGS_MAX: Final = 16
DEFAULT_TIMEOUT: Final = timedelta(seconds=30)
DEFAULT_EXPIRY: Final = timedelta(hours=1)


class CommandStatus(StrEnum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL: Final = frozenset(
    {CommandStatus.SUCCEEDED, CommandStatus.FAILED, CommandStatus.REJECTED, CommandStatus.EXPIRED}
)
# What a device may answer.
DEVICE_STATUSES: Final = frozenset(
    {
        CommandStatus.ACKNOWLEDGED,
        CommandStatus.SUCCEEDED,
        CommandStatus.FAILED,
        CommandStatus.REJECTED,
    }
)


@dataclass(frozen=True, slots=True)
class Command:
    command_id: str
    device_id: str
    name: str
    args: Mapping[str, str]
    issued_at: datetime
    expires_at: datetime
    timeout: timedelta
    status: CommandStatus = CommandStatus.SENT
    updated_at: datetime | None = None
    result: Mapping[str, Any] | None = None
    attempts: int = 1
    sent_at: datetime | None = None  # when it was last handed to the broker (None: not yet)

    def request(self) -> dict[str, Any]:
        """The document the device receives."""
        return {
            "command_id": self.command_id,
            "name": self.name,
            "args": dict(self.args),
            "issued_at": to_canonical(self.issued_at),
            "expires_at": to_canonical(self.expires_at),
        }

    def answer_due(self) -> datetime:
        return (self.sent_at or self.issued_at) + self.timeout


def new_command(
    device_id: str,
    name: str,
    args: Mapping[str, str],
    now: datetime,
    timeout: timedelta = DEFAULT_TIMEOUT,
    expires_in: timedelta = DEFAULT_EXPIRY,
    command_id: str | None = None,
) -> Command:
    """A command to send.

    Raises:
        ValidationError: an empty or too long name, too many arguments, a timeout or expiry
            that is not positive, or an expiry shorter than the timeout.
    """
    issues = []
    if not name or len(name) > COMMAND_NAME_MAX or not name.replace("-", "").isalnum():
        issues.append(Issue("name", f"1-{COMMAND_NAME_MAX} letters, digits or '-'"))
    if len(args) > ARGS_MAX:
        issues.append(Issue("args", f"at most {ARGS_MAX}"))
    if timeout <= timedelta(0):
        issues.append(Issue("timeout", "must be positive"))
    if expires_in < timeout:
        issues.append(Issue("expires_in", "must be at least the timeout"))
    if issues:
        raise DomainValidationError(issues)
    return Command(
        command_id=command_id or str(uuid.uuid4()),
        device_id=device_id,
        name=name,
        args=dict(args),
        issued_at=now,
        expires_at=now + expires_in,
        timeout=timeout,
        updated_at=now,
    )


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Field(min_length=1, max_length=64)
    status: CommandStatus
    timestamp: str
    result: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandResponse:
    command_id: str
    status: CommandStatus
    at: datetime
    result: Mapping[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "status": self.status.value,
            "timestamp": to_canonical(self.at),
            "result": dict(self.result),
        }


def parse_response(payload: bytes) -> CommandResponse:
    """A device's answer.

    Raises:
        ValidationError: not JSON, a missing or unknown field, a status a device cannot give.
    """
    try:
        parsed = _Response.model_validate_json(payload)
        at = parse_iso(parsed.timestamp)
    except ValidationError as exc:
        raise DomainValidationError(
            [Issue(".".join(map(str, e["loc"])) or "payload", e["msg"]) for e in exc.errors()]
        ) from None
    except ValueError as exc:
        raise DomainValidationError([Issue("timestamp", str(exc))]) from None
    if parsed.status not in DEVICE_STATUSES:
        raise DomainValidationError([Issue("status", f"{parsed.status} is not a device's")])
    return CommandResponse(parsed.command_id, parsed.status, at, parsed.result)


def parse_request(payload: bytes) -> Command:
    """What a device receives (the simulator's side).

    Raises:
        ValidationError: not a command document.
    """
    try:
        document = json.loads(payload)
        args = document.get("args") or {}
        issued = parse_iso(str(document["issued_at"]))
        expires = parse_iso(str(document["expires_at"]))
        return Command(
            command_id=str(document["command_id"]),
            device_id="",
            name=str(document["name"]),
            args={str(k): str(v) for k, v in dict(args).items()},
            issued_at=issued,
            expires_at=expires,
            timeout=expires - issued,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DomainValidationError([Issue("payload", f"not a command: {exc}")]) from None


def answered(command: Command, response: CommandResponse, now: datetime) -> Command:
    """The command after the device's answer. A final answer after a time-out still counts
    (the device did act); nothing changes a final state, and an acknowledgement never
    overrides a final answer that overtook it.
    """
    if command.status.final:
        return command
    if response.status is CommandStatus.ACKNOWLEDGED and command.status is CommandStatus.TIMED_OUT:
        return replace(command, updated_at=now)
    return replace(command, status=response.status, updated_at=now, result=dict(response.result))


def overdue(command: Command, now: datetime) -> Command | None:
    """The command timed out or expired as of ``now``, or None when nothing changes."""
    if command.status.final:
        return None
    if now >= command.expires_at:
        return replace(command, status=CommandStatus.EXPIRED, updated_at=now)
    waiting = command.status in (CommandStatus.SENT, CommandStatus.ACKNOWLEDGED)
    if waiting and command.sent_at is not None and now >= command.answer_due():
        return replace(command, status=CommandStatus.TIMED_OUT, updated_at=now)
    return None


def retried(command: Command, now: datetime) -> Command:
    """The same command (same id) to send again; its expiry stands. A device that already
    acted answers from its memory, so a retry never acts twice.

    Raises:
        ValidationError: it has expired (send a new one).
    """
    if command.status is CommandStatus.EXPIRED or now >= command.expires_at:
        raise DomainValidationError(
            [Issue("command", f"{command.command_id} has expired: send a new one")]
        )
    return replace(
        command,
        status=CommandStatus.SENT,
        sent_at=None,
        updated_at=now,
        attempts=command.attempts + 1,
    )
