"""Alarm rule kinds, with hand-computed expectations (readings one minute apart)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

import pytest

from coldchain.core.reading import Reading
from coldchain.core.rules import Rule, RuleKind, Severity, evaluate, weights
from coldchain.core.timestamps import to_canonical
from tests.factories import T0

MINUTE = timedelta(minutes=1)
GAP = timedelta(minutes=5)
HIGH_30 = Rule(
    "High30",
    "temperature_c",
    ">",
    8.0,
    RuleKind.DURATION,
    Severity.CRITICAL,
    duration=timedelta(minutes=30),
)


def minutes(temps: Sequence[float], start_min: int = 0, step: timedelta = MINUTE) -> list[Reading]:
    return [
        Reading(
            "dev-1",
            to_canonical(T0 + (start_min * MINUTE) + i * step),
            t,
            60.0,
            0.0,
            90.0,
            fleet_id="f",
        )
        for i, t in enumerate(temps)
    ]


def test_29_minutes_above_does_not_raise_a_30_minute_rule() -> None:
    readings = minutes([4] + [9] * 29 + [4, 4])
    assert evaluate(HIGH_30, readings, GAP) == []


def test_30_minutes_above_raises_it_and_the_return_clears_it() -> None:
    readings = minutes([4] + [9] * 30 + [4, 4])
    [occurrence] = evaluate(HIGH_30, readings, GAP)
    assert occurrence.started_at == T0 + MINUTE
    assert occurrence.raised_at == T0 + 31 * MINUTE  # known when the in-range reading comes
    assert occurrence.cleared_at == T0 + 31 * MINUTE
    assert occurrence.out_of_range == timedelta(minutes=30)
    assert occurrence.peak == 9


def test_an_ongoing_violation_raises_once_its_time_is_reached() -> None:
    [occurrence] = evaluate(HIGH_30, minutes([4] + [9] * 31), GAP)
    assert occurrence.raised_at == T0 + 31 * MINUTE
    assert occurrence.cleared_at is None


def test_one_in_range_reading_resets_the_duration() -> None:
    readings = minutes([9] * 20 + [7.9] + [9] * 20 + [4])
    assert evaluate(HIGH_30, readings, GAP) == []


def test_gaps_count_at_most_max_gap() -> None:
    # Two readings above, two hours apart: the first stands for 5 minutes, not 120.
    readings = minutes([9, 9, 4], step=timedelta(hours=2))
    assert evaluate(HIGH_30, readings, GAP) == []
    assert weights(readings, GAP)[0] == GAP


def test_cumulative_time_adds_up_across_separate_violations() -> None:
    rule = Rule(
        "Cum60",
        "temperature_c",
        "outside",
        8.0,
        RuleKind.CUMULATIVE,
        Severity.CRITICAL,
        duration=timedelta(minutes=60),
        window=timedelta(hours=24),
        low=2.0,
    )
    # 25 min high, 10 in range, 25 min low, 10 in range, 10 min high: 60 min in total.
    temps = [9] * 25 + [5] * 10 + [1] * 25 + [5] * 10 + [9] * 10 + [5] * 3
    [occurrence] = evaluate(rule, minutes(temps), GAP)
    assert occurrence.out_of_range == timedelta(minutes=60)
    assert occurrence.raised_at == T0 + timedelta(minutes=80)  # end of the 10th minute high
    assert occurrence.started_at == T0
    assert occurrence.peak == 9
    assert occurrence.cleared_at is None  # time out of range does not come back
    # 59 minutes in total does not raise.
    assert evaluate(rule, minutes([*temps[:79], 5, 5]), GAP) == []


def test_cumulative_forgets_what_leaves_the_window() -> None:
    rule = Rule(
        "Cum30in1h",
        "temperature_c",
        ">",
        8.0,
        RuleKind.CUMULATIVE,
        Severity.WARNING,
        duration=timedelta(minutes=30),
        window=timedelta(hours=1),
    )
    # 20 min high, 50 min fine, 20 min high: never 30 within one hour.
    assert evaluate(rule, minutes([9] * 20 + [5] * 50 + [9] * 20 + [5]), GAP) == []


def test_consecutive_and_instant() -> None:
    early = Rule(
        "Early", "temperature_c", ">", 8.0, RuleKind.CONSECUTIVE, Severity.WARNING, count=2
    )
    instant = Rule("Any", "temperature_c", ">", 8.0, RuleKind.INSTANT, Severity.INFO)
    readings = minutes([4, 9, 4, 9, 9, 9, 4])
    assert [o.raised_at for o in evaluate(early, readings, GAP)] == [T0 + 4 * MINUTE]
    assert [o.started_at for o in evaluate(instant, readings, GAP)] == [
        T0 + MINUTE,
        T0 + 3 * MINUTE,
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_out_of_order_readings_give_the_same_occurrences(seed: int) -> None:
    readings = minutes([4] + [9] * 35 + [4] * 5 + [1] * 20 + [5])
    shuffled = list(readings)
    random.Random(seed).shuffle(shuffled)
    for rule in (
        HIGH_30,
        Rule(
            "Low15",
            "temperature_c",
            "<",
            2.0,
            RuleKind.DURATION,
            Severity.CRITICAL,
            duration=timedelta(minutes=15),
        ),
    ):
        assert evaluate(rule, shuffled, GAP) == evaluate(rule, readings, GAP)
        assert len(evaluate(rule, readings, GAP)) == 1


def test_a_rule_checks_its_own_fields() -> None:
    with pytest.raises(ValueError, match="metric"):
        Rule("X", "pressure", ">", 1, RuleKind.INSTANT, Severity.INFO)
    with pytest.raises(ValueError, match="duration"):
        Rule("X", "temperature_c", ">", 1, RuleKind.DURATION, Severity.INFO)
    with pytest.raises(ValueError, match="low"):
        Rule("X", "temperature_c", "outside", 8, RuleKind.INSTANT, Severity.INFO)
