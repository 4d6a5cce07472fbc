"""Alarm rules and their evaluation: pure functions over one device's readings in time order.

A rule compares one metric of each reading with a threshold. A *run* is a maximal sequence
of consecutive readings that violate it. Each reading stands for the time until the next
reading, capped at ``max_gap`` (a longer gap is time we know nothing about and counts for
no more than ``max_gap``). The kinds:

* ``instant``: a run raises at its first reading;
* ``consecutive``: a run raises at its ``count``-th reading;
* ``duration``: a run raises once the time it stands for reaches ``duration``; one in-range
  reading ends the run and resets the clock;
* ``cumulative``: the time out of range, summed over separate runs within ``window`` of
  device time, raises once it reaches ``duration``; it stays raised for the window (time
  spent out of range does not come back).

Every kind clears at the first in-range reading after its run (cumulative: when the window
no longer holds ``duration`` of violations). The same readings give the same occurrences
whatever order they arrived in: evaluation always runs over readings sorted by time.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from coldchain.core.reading import Reading


class RuleKind(StrEnum):
    INSTANT = "instant"
    CONSECUTIVE = "consecutive"
    DURATION = "duration"
    CUMULATIVE = "cumulative"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


METRICS: Final = ("temperature_c", "humidity_pct", "shock_g", "battery_pct")
COMPARISONS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
OUTSIDE: Final = "outside"  # below ``low`` or above ``threshold``


@dataclass(frozen=True, slots=True)
class Rule:
    """One alarm rule, e.g. ``temperature_c > 8 for 30 minutes, critical``."""

    name: str
    metric: str
    comparison: str
    threshold: float
    kind: RuleKind
    severity: Severity
    count: int = 1
    duration: timedelta = timedelta(0)
    window: timedelta = timedelta(hours=24)
    low: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}")
        if self.comparison not in (*COMPARISONS, OUTSIDE):
            raise ValueError(f"comparison must be one of {', '.join([*COMPARISONS, OUTSIDE])}")
        if self.comparison == OUTSIDE and (self.low is None or self.low >= self.threshold):
            raise ValueError("comparison 'outside' needs low below threshold (the band's top)")
        if self.kind is RuleKind.CONSECUTIVE and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.kind in (RuleKind.DURATION, RuleKind.CUMULATIVE) and self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if self.kind is RuleKind.CUMULATIVE and self.window < self.duration:
            raise ValueError("window must be at least the duration")

    def violates(self, reading: Reading) -> bool:
        value = float(getattr(reading, self.metric))
        if self.comparison == OUTSIDE:
            assert self.low is not None
            return value > self.threshold or value < self.low
        return COMPARISONS[self.comparison](value, self.threshold)

    def value(self, reading: Reading) -> float:
        return float(getattr(reading, self.metric))

    @property
    def lookback(self) -> timedelta:
        """How far back before a new reading the rule may need to look."""
        if self.kind is RuleKind.CUMULATIVE:
            return self.window
        return self.duration

    def describe(self) -> str:
        unit = {"temperature_c": " °C", "humidity_pct": " %", "shock_g": " g", "battery_pct": " %"}
        if self.comparison == OUTSIDE:
            base = f"{self.metric} outside {self.low:g}..{self.threshold:g}{unit[self.metric]}"
        else:
            base = f"{self.metric} {self.comparison} {self.threshold:g}{unit[self.metric]}"
        minutes = self.duration.total_seconds() / 60
        if self.kind is RuleKind.CONSECUTIVE:
            return f"{base} for {self.count} consecutive readings"
        if self.kind is RuleKind.DURATION:
            return f"{base} for {minutes:g} min"
        if self.kind is RuleKind.CUMULATIVE:
            hours = self.window.total_seconds() / 3600
            return f"{base} for {minutes:g} min in total within {hours:g} h"
        return base


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of a rule on a device: raised (and maybe cleared) by device time."""

    rule: str
    device_id: str
    fleet_id: str | None
    started_at: datetime
    raised_at: datetime
    cleared_at: datetime | None
    peak: float
    out_of_range: timedelta

    @property
    def key(self) -> tuple[str, str, datetime]:
        """Identifies an occurrence across evaluations: the same run starts at the same time."""
        return (self.device_id, self.rule, self.started_at)


def weights(readings: Sequence[Reading], max_gap: timedelta) -> list[timedelta]:
    """The time each reading stands for: until the next one, at most ``max_gap``; the last
    stands for nothing yet."""
    times = [r.at for r in readings]
    out = [min(b - a, max_gap) for a, b in itertools.pairwise(times)]
    return [*out, timedelta(0)] if readings else []


def _runs(rule: Rule, readings: Sequence[Reading]) -> list[tuple[int, int]]:
    """(first, last) indexes of each maximal run of violating readings."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, reading in enumerate(readings):
        if rule.violates(reading):
            if start is None:
                start = index
        elif start is not None:
            runs.append((start, index - 1))
            start = None
    if start is not None:
        runs.append((start, len(readings) - 1))
    return runs


def _peak(rule: Rule, readings: Sequence[Reading]) -> float:
    """The worst value: highest above a top, lowest below a bottom (outside: farthest out)."""
    values = [rule.value(r) for r in readings]
    if rule.comparison == OUTSIDE:
        assert rule.low is not None
        low = rule.low
        return max(values, key=lambda v: v - rule.threshold if v > rule.threshold else low - v)
    return max(values) if rule.comparison.startswith(">") else min(values)


def evaluate(rule: Rule, readings: Sequence[Reading], max_gap: timedelta) -> list[Occurrence]:
    """Every occurrence of ``rule`` in one device's readings (sorted here by time)."""
    ordered = sorted(readings, key=lambda r: r.timestamp)
    if not ordered:
        return []
    if rule.kind is RuleKind.CUMULATIVE:
        return _cumulative(rule, ordered, max_gap)
    spans = weights(ordered, max_gap)
    occurrences = []
    for first, last in _runs(rule, ordered):
        raised = _raised_index(rule, spans, first, last)
        if raised is None:
            continue
        ended = last + 1 < len(ordered)
        run = ordered[first : last + 1]
        occurrences.append(
            Occurrence(
                rule=rule.name,
                device_id=ordered[first].device_id,
                fleet_id=ordered[last].fleet_id,
                started_at=ordered[first].at,
                raised_at=ordered[raised].at if raised <= last else ordered[last + 1].at,
                cleared_at=ordered[last + 1].at if ended else None,
                peak=_peak(rule, run),
                out_of_range=sum(spans[first : last + 1], timedelta(0)),
            )
        )
    return occurrences


def _raised_index(rule: Rule, spans: list[timedelta], first: int, last: int) -> int | None:
    """The index of the reading at which the run meets the rule (last + 1: the in-range
    reading that completed the run's duration), or None when it never does."""
    if rule.kind is RuleKind.INSTANT:
        return first
    if rule.kind is RuleKind.CONSECUTIVE:
        index = first + rule.count - 1
        return index if index <= last else None
    # DURATION: the run's time accumulates reading by reading; it is known at the next one.
    elapsed = timedelta(0)
    for index in range(first, last + 1):
        elapsed += spans[index]
        if elapsed >= rule.duration:
            return index + 1
    return None


def _cumulative(rule: Rule, ordered: Sequence[Reading], max_gap: timedelta) -> list[Occurrence]:
    """Sliding window over device time: raise when violations in the window reach the limit."""
    spans = weights(ordered, max_gap)
    occurrences: list[Occurrence] = []
    total = timedelta(0)
    window_start = 0
    started: int | None = None  # index of the first violating reading counted in the occurrence
    raised: int | None = None
    for index, reading in enumerate(ordered):
        # Time before ``index`` counts when the reading before it violated.
        if index > 0 and rule.violates(ordered[index - 1]):
            total += spans[index - 1]
        while ordered[window_start].at < reading.at - rule.window:
            if rule.violates(ordered[window_start]) and window_start < index:
                total -= spans[window_start]
            window_start += 1
        if raised is None and total >= rule.duration:
            raised = index
            started = next(
                i for i in range(window_start, index + 1) if rule.violates(ordered[i]) or i == index
            )
        elif raised is not None and total < rule.duration:
            assert started is not None
            occurrences.append(_cumulative_occurrence(rule, ordered, spans, started, raised, index))
            raised = started = None
    if raised is not None:
        assert started is not None
        occurrences.append(_cumulative_occurrence(rule, ordered, spans, started, raised, None))
    return occurrences


def _cumulative_occurrence(
    rule: Rule,
    ordered: Sequence[Reading],
    spans: list[timedelta],
    started: int,
    raised: int,
    cleared: int | None,
) -> Occurrence:
    end = len(ordered) if cleared is None else cleared
    counted = [i for i in range(started, end) if rule.violates(ordered[i])]
    return Occurrence(
        rule=rule.name,
        device_id=ordered[started].device_id,
        fleet_id=ordered[raised].fleet_id,
        started_at=ordered[started].at,
        raised_at=ordered[raised].at,
        cleared_at=None if cleared is None else ordered[cleared].at,
        peak=_peak(rule, [ordered[i] for i in counted]) if counted else rule.value(ordered[raised]),
        out_of_range=sum((spans[i] for i in counted), timedelta(0)),
    )
