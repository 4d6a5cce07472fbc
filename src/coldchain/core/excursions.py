"""Excursion rules: pure functions over one device's recent readings.

Each rule looks at ``history``, the device's readings in time order ending with the reading
being judged, and returns the event that reading raises, if any. A rule raises once per
onset (the reading that completes the condition), not on every reading while it lasts, so
a compressor that fails for an hour raises one excursion rather than hundreds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from coldchain.core.events import Event, EventKind
from coldchain.core.profile import Profile
from coldchain.core.reading import Reading

Rule = Callable[[Sequence[Reading], Profile], "Event | None"]


def _event(kind: EventKind, reading: Reading, value: float, threshold: float, detail: str) -> Event:
    return Event(
        kind, reading.device_id, reading.fleet_id, reading.timestamp, value, threshold, detail
    )


def _consecutive_onset(
    history: Sequence[Reading], count: int, violates: Callable[[Reading], bool]
) -> bool:
    """True when the last ``count`` readings violate and the one before them (if any) did not."""
    if len(history) < count:
        return False
    run = history[-count:]
    if not all(violates(reading) for reading in run):
        return False
    before = history[-count - 1] if len(history) > count else None
    return before is None or not violates(before)


def temperature_high(history: Sequence[Reading], profile: Profile) -> Event | None:
    """Temperature above the band's top for N consecutive readings."""
    limit = profile.temperature_high_c
    if not _consecutive_onset(
        history, profile.consecutive_readings, lambda r: r.temperature_c > limit
    ):
        return None
    newest = history[-1]
    peak = max(r.temperature_c for r in history[-profile.consecutive_readings :])
    return _event(
        EventKind.TEMPERATURE_HIGH,
        newest,
        peak,
        limit,
        f"temperature above {limit} °C for {profile.consecutive_readings} consecutive readings",
    )


def temperature_low(history: Sequence[Reading], profile: Profile) -> Event | None:
    """Temperature below the band's bottom for N consecutive readings."""
    limit = profile.temperature_low_c
    if not _consecutive_onset(
        history, profile.consecutive_readings, lambda r: r.temperature_c < limit
    ):
        return None
    newest = history[-1]
    low = min(r.temperature_c for r in history[-profile.consecutive_readings :])
    return _event(
        EventKind.TEMPERATURE_LOW,
        newest,
        low,
        limit,
        f"temperature below {limit} °C for {profile.consecutive_readings} consecutive readings",
    )


def battery_low(history: Sequence[Reading], profile: Profile) -> Event | None:
    """Battery below the profile's floor (raised when it first drops below)."""
    limit = profile.battery_low_pct
    if not _consecutive_onset(history, 1, lambda r: r.battery_pct < limit):
        return None
    newest = history[-1]
    return _event(
        EventKind.BATTERY_LOW, newest, newest.battery_pct, limit, f"battery below {limit} %"
    )


def shock(history: Sequence[Reading], profile: Profile) -> Event | None:
    """Every reading whose shock exceeds the limit is a handling event of its own."""
    newest = history[-1] if history else None
    if newest is None or newest.shock_g <= profile.shock_high_g:
        return None
    return _event(
        EventKind.SHOCK,
        newest,
        newest.shock_g,
        profile.shock_high_g,
        f"shock above {profile.shock_high_g} g",
    )


RULES: tuple[Rule, ...] = (temperature_high, temperature_low, battery_low, shock)


def detect(history: Sequence[Reading], profile: Profile) -> list[Event]:
    """Every event the newest reading of ``history`` raises under ``profile``."""
    events = (rule(history, profile) for rule in RULES)
    return [event for event in events if event is not None]
