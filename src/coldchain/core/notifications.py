"""What operators are told about an alarm: raised, cleared, or a reminder."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from coldchain.core.alarms import Alarm
from coldchain.core.timestamps import to_canonical


class NotificationKind(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"
    REMINDER = "reminder"


@dataclass(frozen=True, slots=True)
class Notification:
    kind: NotificationKind
    alarm: Alarm

    @property
    def key(self) -> str:
        """The same for the same notification however often it is produced (a redelivered
        reading raises the same alarm again): outboxes keep one per key.
        """
        if self.kind is NotificationKind.REMINDER:
            sent = self.alarm.last_notified_at
            return f"{self.alarm.id}:reminder:{'' if sent is None else sent.isoformat()}"
        return f"{self.alarm.id}:{self.kind.value}"


def notification_document(notification: Notification) -> dict[str, Any]:
    """The JSON document every channel sends (the webhook body, the email's data)."""
    alarm = notification.alarm
    ack = alarm.acknowledgement
    return {
        "notification": notification.kind.value,
        "alarm_id": alarm.id,
        "device_id": alarm.device_id,
        "fleet_id": alarm.fleet_id,
        "rule": alarm.rule,
        "severity": alarm.severity.value,
        "state": alarm.state.value,
        "detail": alarm.detail,
        "started_at": to_canonical(alarm.started_at),
        "raised_at": to_canonical(alarm.raised_at),
        "cleared_at": None if alarm.cleared_at is None else to_canonical(alarm.cleared_at),
        "peak": alarm.peak,
        "duration_s": alarm.duration.total_seconds(),
        "acknowledged_by": None if ack is None else ack.by,
    }


def subject(notification: Notification) -> str:
    """A one-line summary, e.g. ``[CRITICAL] raised: TemperatureHigh30m on reefer-0007``."""
    alarm = notification.alarm
    return (
        f"[{alarm.severity.value.upper()}] {notification.kind.value}: {alarm.rule} on "
        f"{alarm.device_id} (peak {alarm.peak:g})"
    )
