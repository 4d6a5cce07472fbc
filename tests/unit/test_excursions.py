"""Excursion rules over a device's recent readings."""

from __future__ import annotations

from dataclasses import replace

from coldchain.core.events import EventKind
from coldchain.core.excursions import detect
from coldchain.core.profile import DEFAULT_PROFILE, Profile
from coldchain.core.reading import Reading


def readings(temperatures: list[float]) -> list[Reading]:
    base = Reading("dev-1", "", 4.0, 60.0, 0.0, 90.0, fleet_id="fleet-a")
    return [
        replace(base, timestamp=f"2024-01-15T09:00:{i:02d}.000Z", temperature_c=t)
        for i, t in enumerate(temperatures)
    ]


def kinds_at_each_step(
    history: list[Reading], profile: Profile = DEFAULT_PROFILE
) -> list[set[str]]:
    window = profile.history_needed
    return [
        {event.kind.value for event in detect(history[max(0, i + 1 - window) : i + 1], profile)}
        for i in range(len(history))
    ]


def test_high_excursion_raises_once_on_the_second_consecutive_reading() -> None:
    steps = kinds_at_each_step(readings([4, 9, 9.5, 10, 4, 9, 9]))
    high = EventKind.TEMPERATURE_HIGH.value
    assert [high in s for s in steps] == [False, False, True, False, False, False, True]


def test_one_reading_out_of_band_is_not_an_excursion() -> None:
    steps = kinds_at_each_step(readings([4, 9, 4, 9, 4]))
    assert all(not s for s in steps)


def test_the_top_of_the_band_itself_is_in_band() -> None:
    assert all(not s for s in kinds_at_each_step(readings([8.0, 8.0, 8.0])))


def test_low_excursion_and_its_peak() -> None:
    history = readings([4, 1.5, 0.5])
    events = detect(history, DEFAULT_PROFILE)
    assert [e.kind for e in events] == [EventKind.TEMPERATURE_LOW]
    assert events[0].value == 0.5
    assert events[0].threshold == 2.0


def test_thresholds_come_from_the_profile() -> None:
    strict = Profile(name="strict", temperature_high_c=6.0, consecutive_readings=3)
    steps = kinds_at_each_step(readings([7, 7, 7, 7]), strict)
    assert [EventKind.TEMPERATURE_HIGH.value in s for s in steps] == [False, False, True, False]


def test_battery_low_raises_when_it_first_drops() -> None:
    history = readings([4, 4, 4])
    history = [replace(r, battery_pct=b) for r, b in zip(history, [16, 14, 13], strict=True)]
    steps = kinds_at_each_step(history)
    assert [EventKind.BATTERY_LOW.value in s for s in steps] == [False, True, False]


def test_each_shock_above_the_limit_is_an_event() -> None:
    history = [
        replace(r, shock_g=g) for r, g in zip(readings([4, 4, 4]), [2.5, 2.0, 3.1], strict=True)
    ]
    steps = kinds_at_each_step(history)
    assert [EventKind.SHOCK.value in s for s in steps] == [True, False, True]
