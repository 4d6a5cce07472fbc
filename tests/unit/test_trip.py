"""Shipment arithmetic on hand-computed cases: MKT, time in range, completeness."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

import pytest

from coldchain.core.alarm_profile import AlarmProfile, default_profile
from coldchain.core.reading import Reading
from coldchain.core.rules import Rule, RuleKind, Severity
from coldchain.core.timestamps import to_canonical
from coldchain.core.trip import summarise_trip
from tests.factories import T0

HOUR = timedelta(hours=1)
WIDE = AlarmProfile("wide-gap", default_profile().rules, max_gap=timedelta(hours=2))


def series(
    temps: Sequence[float], step: timedelta = HOUR, seqs: Sequence[int] | None = None
) -> list[Reading]:
    return [
        Reading(
            "dev-1",
            to_canonical(T0 + i * step),
            t,
            60.0,
            0.0,
            90.0,
            fleet_id="f",
            seq=None if seqs is None else seqs[i],
        )
        for i, t in enumerate(temps)
    ]


def test_constant_temperature_has_that_mkt() -> None:
    trip = summarise_trip(series([5.0] * 25), T0, T0 + 24 * HOUR, WIDE)
    assert trip.mkt == pytest.approx(5.0, abs=1e-9)
    assert trip.time_in_range == 24 * HOUR  # the last reading stands for nothing past the window
    assert trip.percent_in_range == 100.0


def test_the_reference_step_23h_at_5_and_1h_at_15_gives_5_76() -> None:
    readings = series([5.0] * 23 + [15.0])  # hourly; the last stands for the hour to the end
    trip = summarise_trip(readings, T0, T0 + 24 * HOUR, WIDE)
    assert trip.mkt == pytest.approx(5.76, abs=0.005)
    assert trip.time_above == HOUR
    assert trip.time_in_range == 23 * HOUR
    assert (trip.minimum, trip.maximum) == (5.0, 15.0)
    assert trip.mean == pytest.approx((23 * 5 + 15) / 24)


def test_uneven_intervals_weigh_by_time_not_by_count() -> None:
    # 5 °C for 3 h (one reading), then 15 °C readings every 20 min for 1 h: same as 3 h + 1 h.
    at = [
        T0,
        T0 + 3 * HOUR,
        T0 + 3 * HOUR + timedelta(minutes=20),
        T0 + 3 * HOUR + timedelta(minutes=40),
    ]
    temps = [5.0, 15.0, 15.0, 15.0]
    readings = [
        Reading("dev-1", to_canonical(t), v, 60.0, 0.0, 90.0)
        for t, v in zip(at, temps, strict=True)
    ]
    profile = AlarmProfile("p", default_profile().rules, max_gap=timedelta(hours=4))
    trip = summarise_trip(readings, T0, T0 + 4 * HOUR, profile)
    assert trip.time_above == HOUR
    assert trip.time_in_range == 3 * HOUR
    # MKT of 3 h at 5 and 1 h at 15, by the formula:
    import math

    expected = (
        10_000 / -math.log((3 * math.exp(-10_000 / 278.15) + math.exp(-10_000 / 288.15)) / 4)
        - 273.15
    )
    assert trip.mkt == pytest.approx(expected, abs=1e-9)


def test_a_gap_counts_at_most_max_gap_and_completeness_sees_it() -> None:
    temps = [4.0] * 10
    readings = series(temps, step=timedelta(minutes=10), seqs=list(range(10)))
    del readings[4:7]  # 30 minutes lost: seq 4, 5, 6
    profile = AlarmProfile("p", default_profile().rules, max_gap=timedelta(minutes=10))
    trip = summarise_trip(readings, T0, T0 + timedelta(minutes=100), profile)
    assert trip.received == 7
    assert trip.interval == timedelta(minutes=10)
    assert trip.expected_by_interval == 10
    assert (trip.expected_by_seq, trip.missing_seq) == (10, 3)
    # Each reading stands for its 10 minutes; the one before the 40-minute gap for two
    # intervals (20 min) at most; the last for one interval: 5 x 10 + 20 + 10.
    assert trip.covered == timedelta(minutes=80)


def test_out_of_order_and_duplicated_input_gives_the_same_summary() -> None:
    readings = series([4.0, 5.0, 9.5, 9.6, 4.0, 1.5, 4.0], step=timedelta(minutes=10))
    shuffled = readings + readings[:3]
    random.Random(5).shuffle(shuffled)
    window = (T0, T0 + timedelta(hours=1, minutes=10))
    assert summarise_trip(shuffled, *window, default_profile()) == summarise_trip(
        readings, *window, default_profile()
    )


def test_excursions_and_verdict_come_from_the_profile_rules() -> None:
    profile = AlarmProfile(
        "p",
        (
            Rule(
                "High20m",
                "temperature_c",
                ">",
                8.0,
                RuleKind.DURATION,
                Severity.CRITICAL,
                duration=timedelta(minutes=20),
            ),
        ),
        max_gap=timedelta(minutes=15),
    )
    readings = series([4, 9, 10, 9, 4, 4], step=timedelta(minutes=10))
    trip = summarise_trip(readings, T0, T0 + timedelta(minutes=60), profile)
    [excursion] = trip.excursions
    assert (excursion.rule, excursion.peak) == ("High20m", 10)
    assert excursion.started_at == T0 + timedelta(minutes=10)
    assert excursion.duration == timedelta(minutes=30)
    assert trip.verdict == "excursions present"
    calm = summarise_trip(series([4, 5, 4], step=timedelta(minutes=10)), T0, T0 + HOUR, profile)
    assert calm.verdict == "within profile"


def test_empty_window_is_an_error() -> None:
    with pytest.raises(ValueError, match="no readings"):
        summarise_trip(series([4.0]), T0 + HOUR, T0 + 2 * HOUR, WIDE)
