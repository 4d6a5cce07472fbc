"""One function decides a device's status for the CLI and the API."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from coldchain.core.alarm_profile import default_profile
from coldchain.core.device_status import DeviceStatus, device_status
from tests.factories import T0


def test_silence_follows_the_profile_and_wins_over_an_alarm() -> None:
    profile = replace(default_profile(), silence_after=timedelta(minutes=10))
    assert device_status(T0, False, profile, T0 + timedelta(minutes=9)) is DeviceStatus.OK
    assert device_status(T0, True, profile, T0 + timedelta(minutes=9)) is DeviceStatus.ALARM
    assert device_status(T0, True, profile, T0 + timedelta(minutes=10)) is DeviceStatus.SILENT
    assert device_status(T0, False, profile, T0 + timedelta(hours=1)) is DeviceStatus.SILENT


def test_the_band_comes_from_the_rules() -> None:
    assert default_profile().band == (2.0, 8.0)
    without_outside = replace(
        default_profile(),
        rules=tuple(r for r in default_profile().rules if r.comparison != "outside"),
    )
    assert without_outside.band == (2.0, 8.0)  # TemperatureLow15m and TemperatureHigh30m
    battery_only = replace(
        default_profile(),
        rules=tuple(r for r in default_profile().rules if r.metric != "temperature_c"),
    )
    assert battery_only.band == (None, None)
