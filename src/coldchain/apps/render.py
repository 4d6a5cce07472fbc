"""Terminal and JSON renderings shared by the CLI commands: local time with the zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from coldchain.core.alarms import Alarm
from coldchain.core.timestamps import to_canonical


def local(moment: datetime | None) -> str:
    """A stored UTC time shown in the machine's zone, with the zone."""
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def span(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def alarm_document(alarm: Alarm) -> dict[str, Any]:
    ack = alarm.acknowledgement
    return {
        "id": alarm.id,
        "device_id": alarm.device_id,
        "fleet_id": alarm.fleet_id,
        "rule": alarm.rule,
        "severity": alarm.severity.value,
        "state": alarm.state.value,
        "started_at": to_canonical(alarm.started_at),
        "raised_at": to_canonical(alarm.raised_at),
        "cleared_at": None if alarm.cleared_at is None else to_canonical(alarm.cleared_at),
        "duration_s": alarm.duration.total_seconds(),
        "peak": alarm.peak,
        "detail": alarm.detail,
        "acknowledgement": None
        if ack is None
        else {"by": ack.by, "at": to_canonical(ack.at), "comment": ack.comment},
    }


def print_alarms(alarms: list[Alarm], console: Console | None = None) -> None:
    table = Table(title=f"{len(alarms)} alarms")
    for column in (
        "id",
        "device",
        "rule",
        "severity",
        "state",
        "started",
        "duration",
        "peak",
        "acknowledged",
    ):
        table.add_column(column)
    for alarm in alarms:
        ack = alarm.acknowledgement
        table.add_row(
            alarm.id,
            alarm.device_id,
            alarm.rule,
            alarm.severity.value,
            alarm.state.value,
            local(alarm.started_at),
            span(alarm.duration.total_seconds()),
            f"{alarm.peak:g}",
            "-" if ack is None else f"{ack.by}: {ack.comment}",
        )
    (console or Console()).print(table)
