"""Alarm records: one per occurrence, with a lifecycle (active -> cleared) and an
acknowledgement (who, when, a mandatory comment).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from coldchain.core.audit import AuditLog, AuditRecord, next_record
from coldchain.core.errors import Issue, NotFoundError, ValidationError
from coldchain.core.rules import UNITS, Occurrence, Severity
from coldchain.core.timestamps import to_canonical

SILENCE_RULE = "DeviceSilence"


class AlarmState(StrEnum):
    ACTIVE = "active"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    by: str
    at: datetime
    comment: str


@dataclass(frozen=True, slots=True)
class Alarm:
    """One occurrence of a rule on a device, as operators see and acknowledge it."""

    id: str
    device_id: str
    fleet_id: str | None
    rule: str
    severity: Severity
    state: AlarmState
    started_at: datetime
    raised_at: datetime
    cleared_at: datetime | None
    peak: float
    out_of_range: timedelta
    detail: str
    acknowledgement: Acknowledgement | None = None
    last_notified_at: datetime | None = None  # wall time of the last raise or reminder

    @property
    def duration(self) -> timedelta:
        """From the start of the violation to its clearing (or to the last evidence)."""
        end = self.cleared_at or self.started_at + self.out_of_range
        return max(end - self.started_at, self.out_of_range)


def peak_unit(alarm: Alarm) -> str:
    """The unit of an alarm's peak: its rule's metric (the first word of the rule's
    description, which every record carries), minutes of quiet for DeviceSilence.
    """
    if alarm.rule == SILENCE_RULE:
        return "min"
    return UNITS.get(alarm.detail.split(" ", 1)[0], "")


def alarm_id(device_id: str, rule: str, started_at: datetime) -> str:
    """A short id, the same for the same occurrence however often it is evaluated."""
    text = f"{device_id}\x00{rule}\x00{to_canonical(started_at)}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def from_occurrence(occurrence: Occurrence, severity: Severity, detail: str) -> Alarm:
    """The alarm record of an occurrence."""
    return Alarm(
        id=alarm_id(occurrence.device_id, occurrence.rule, occurrence.started_at),
        device_id=occurrence.device_id,
        fleet_id=occurrence.fleet_id,
        rule=occurrence.rule,
        severity=severity,
        state=AlarmState.ACTIVE if occurrence.cleared_at is None else AlarmState.CLEARED,
        started_at=occurrence.started_at,
        raised_at=occurrence.raised_at,
        cleared_at=occurrence.cleared_at,
        peak=occurrence.peak,
        out_of_range=occurrence.out_of_range,
        detail=detail,
    )


def acknowledge(alarm: Alarm, by: str, comment: str, at: datetime) -> Alarm:
    """The alarm with an acknowledgement.

    Raises:
        ValidationError: the comment or the name is empty.
    """
    issues = []
    if not comment.strip():
        issues.append(Issue("comment", "an acknowledgement needs a comment"))
    if not by.strip():
        issues.append(Issue("by", "an acknowledgement needs a name"))
    if issues:
        raise ValidationError(issues)
    return replace(alarm, acknowledgement=Acknowledgement(by.strip(), at, comment.strip()))


class _AlarmReader(Protocol):
    def get(self, alarm_id: str) -> Alarm | None: ...

    def save(self, alarms: Sequence[Alarm]) -> None: ...


def alarm_subject(alarm_id_: str) -> str:
    """The alarm's subject in the audit trail."""
    return f"alarm/{alarm_id_}"


def acknowledge_alarm(
    store: _AlarmReader, audit: AuditLog, alarm_id_: str, by: str, comment: str, at: datetime
) -> tuple[Alarm, AuditRecord]:
    """Acknowledge a stored alarm: the acknowledgement is appended to the audit trail; the
    alarm record keeps the first one (a second acknowledgement never overwrites it).

    Raises:
        NotFoundError: no alarm has that id.
        ValidationError: the comment or the name is empty.
        StateConflictError: someone acknowledged it at the same moment; try again.
    """
    alarm = store.get(alarm_id_)
    if alarm is None:
        raise NotFoundError(f"no alarm {alarm_id_!r}")
    acked = acknowledge(alarm, by, comment, at)
    subject = alarm_subject(alarm.id)
    data = {"rule": alarm.rule, "device_id": alarm.device_id, "state": alarm.state.value}
    record = next_record(audit.history(subject), subject, "acknowledged", by, at, comment, data)
    audit.append(record)
    if alarm.acknowledgement is None:
        store.save([acked])
        return acked, record
    return alarm, record
