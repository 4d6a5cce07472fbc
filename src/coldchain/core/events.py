"""Events the rules raise about a device: excursions, low battery, shocks, silence."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    """What happened. The values are the names operators see in logs and alarms."""

    TEMPERATURE_HIGH = "TemperatureExcursionHigh"
    TEMPERATURE_LOW = "TemperatureExcursionLow"
    BATTERY_LOW = "BatteryLow"
    SHOCK = "ShockDetected"
    DEVICE_SILENCE = "DeviceSilence"


@dataclass(frozen=True, slots=True)
class Event:
    """One raised event, stamped with the device time of the reading that raised it."""

    kind: EventKind
    device_id: str
    fleet_id: str | None
    timestamp: str
    value: float
    threshold: float
    detail: str


def event_order(event: Event) -> tuple[str, str, str]:
    """The order every event log lists in: reading time, then device, then kind."""
    return (event.timestamp, event.device_id, event.kind.value)


def event_kind(metric: str, comparison: str, high: bool) -> EventKind | None:
    """The kind of event an alarm rule's raise is counted as (metrics, excursion lists):
    by the metric it watches and the side it was broken on; None when no kind fits.
    """
    if metric == "temperature_c":
        return EventKind.TEMPERATURE_HIGH if high else EventKind.TEMPERATURE_LOW
    if metric == "battery_pct" and comparison.startswith("<"):
        return EventKind.BATTERY_LOW
    if metric == "shock_g" and comparison.startswith(">"):
        return EventKind.SHOCK
    return None
