"""A device's status as operators see it, decided in one place for the CLI and the API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from coldchain.core.alarm_profile import AlarmProfile


class DeviceStatus(StrEnum):
    OK = "ok"
    ALARM = "alarm"  # an active alarm of any rule (temperature, battery, shock, silence)
    SILENT = "silent"  # no reading for the profile's silence_after


def device_status(
    last_reading_at: datetime, has_active_alarm: bool, profile: AlarmProfile, now: datetime
) -> DeviceStatus:
    """Silent first (what a quiet device last said is stale), then any active alarm."""
    if now - last_reading_at >= profile.silence_after:
        return DeviceStatus.SILENT
    return DeviceStatus.ALARM if has_active_alarm else DeviceStatus.OK
