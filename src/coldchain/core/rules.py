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
from dataclasses import dataclass, replace
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
UNITS: Final = {"temperature_c": "°C", "humidity_pct": "%", "shock_g": "g", "battery_pct": "%"}
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
        unit = {metric: f" {symbol}" for metric, symbol in UNITS.items()}
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
    stands for nothing yet.
    """
    times = [r.at for r in readings]
    out = [min(b - a, max_gap) for a, b in itertools.pairwise(times)]
    return [*out, timedelta(0)] if readings else []


# -- state between readings ---------------------------------------------------------------
# A rule's evaluation is a fold over one device's readings in time order: ``step`` takes the
# rule's state after the previous reading and returns it after this one, with what changed.
# The state is all a rule needs between readings, so it can be stored with the device and a
# new reading costs constant work; ``evaluate`` folds a whole sequence the same way.

MAX_INTERVALS: Final = 64  # a cumulative rule's out-of-range intervals kept (see step)


@dataclass(frozen=True, slots=True)
class Run:
    """A run of violating readings (run rules), or a raised cumulative occurrence."""

    started_at: datetime
    count: int
    elapsed: timedelta  # the time the run's readings stand for, the newest excluded
    peak: float
    raised_at: datetime | None = None
    fleet_id: str | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    """Out-of-range time of a cumulative rule: ``[start, end)`` and its worst value."""

    start: datetime
    end: datetime
    peak: float


@dataclass(frozen=True, slots=True)
class RuleState:
    """What one rule remembers of a device between readings."""

    run: Run | None = None
    intervals: tuple[Interval, ...] = ()


EMPTY: Final = RuleState()


class ChangeKind(StrEnum):
    RAISED = "raised"
    UPDATED = "updated"  # a stored record corrected by a repair (see ingest.reconcile)
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class Change:
    """What one reading did to one rule's occurrence."""

    kind: ChangeKind
    occurrence: Occurrence


def _peak(rule: Rule, values: Sequence[float]) -> float:
    """The worst value: highest above a top, lowest below a bottom (outside: farthest out)."""
    if rule.comparison == OUTSIDE:
        assert rule.low is not None
        low = rule.low
        return max(values, key=lambda v: v - rule.threshold if v > rule.threshold else low - v)
    return max(values) if rule.comparison.startswith(">") else min(values)


def _worse(rule: Rule, peak: float, value: float) -> float:
    """``_peak(rule, [peak, value])``, without the list (once per violating reading)."""
    if rule.comparison == OUTSIDE:
        assert rule.low is not None
        top, low = rule.threshold, rule.low
        return (
            value
            if (value - top if value > top else low - value)
            > (peak - top if peak > top else low - peak)
            else peak
        )
    if rule.comparison[0] == ">":
        return value if value > peak else peak
    return value if value < peak else peak


def _occurrence(
    rule: Rule, device_id: str, run: Run, cleared_at: datetime | None = None
) -> Occurrence:
    assert run.raised_at is not None
    return Occurrence(
        rule=rule.name,
        device_id=device_id,
        fleet_id=run.fleet_id,
        started_at=run.started_at,
        raised_at=run.raised_at,
        cleared_at=cleared_at,
        peak=run.peak,
        out_of_range=run.elapsed,
    )


def step(
    rule: Rule,
    state: RuleState,
    previous: Reading | None,
    reading: Reading,
    max_gap: timedelta,
) -> tuple[RuleState, list[Change]]:
    """The rule's state after ``reading``, the device's next reading in time order after
    ``previous`` (None: its first), and the changes to its occurrence.
    """
    if rule.kind is RuleKind.CUMULATIVE:
        return _step_cumulative(rule, state, previous, reading, max_gap)
    # One Run built per reading (this is the hot path: once per rule per reading).
    before = state.run
    changes: list[Change] = []
    if before is None:
        if not rule.violates(reading):
            return EMPTY, changes
        at, fleet = reading.at, reading.fleet_id
        raises = rule.kind is RuleKind.INSTANT or (
            rule.kind is RuleKind.CONSECUTIVE and rule.count <= 1
        )
        run = Run(at, 1, timedelta(0), rule.value(reading), at if raises else None, fleet)
        if raises:
            changes.append(Change(ChangeKind.RAISED, _occurrence(rule, reading.device_id, run)))
        return RuleState(run), changes
    # The previous reading violated: the time it stands for joins the run.
    elapsed = before.elapsed
    if previous is not None:
        elapsed += min(reading.at - previous.at, max_gap)
    raised_at = before.raised_at
    if raised_at is None and rule.kind is RuleKind.DURATION and elapsed >= rule.duration:
        raised_at = reading.at  # known at the next reading, in range or not
        run = Run(before.started_at, before.count, elapsed, before.peak, raised_at, before.fleet_id)
        changes.append(Change(ChangeKind.RAISED, _occurrence(rule, reading.device_id, run)))
    if not rule.violates(reading):
        if raised_at is not None:
            run = Run(
                before.started_at, before.count, elapsed, before.peak, raised_at, before.fleet_id
            )
            cleared = _occurrence(rule, reading.device_id, run, reading.at)
            changes.append(Change(ChangeKind.CLEARED, cleared))
        return EMPTY, changes
    count = before.count + 1
    peak = _worse(rule, before.peak, rule.value(reading))
    if raised_at is None and rule.kind is RuleKind.CONSECUTIVE and count >= rule.count:
        raised_at = reading.at
        run = Run(before.started_at, count, elapsed, peak, raised_at, reading.fleet_id)
        changes.append(Change(ChangeKind.RAISED, _occurrence(rule, reading.device_id, run)))
        return RuleState(run), changes
    # An active occurrence's growing figures stay in the state (see evaluate, live_figures).
    return RuleState(
        Run(before.started_at, count, elapsed, peak, raised_at, reading.fleet_id)
    ), changes


def _step_cumulative(
    rule: Rule,
    state: RuleState,
    previous: Reading | None,
    reading: Reading,
    max_gap: timedelta,
) -> tuple[RuleState, list[Change]]:
    """Out-of-range time is a set of intervals (each violating reading stands for
    ``[its time, the next reading's time)``, at most ``max_gap``); the rule counts the part
    of them inside ``[reading time - window, reading time]``, so time leaves the window
    continuously. Adjacent intervals merge; past :data:`MAX_INTERVALS` the two closest merge
    across their gap, which can only overstate the time (an alarm early, never late).
    """
    intervals = list(state.intervals)
    occurrence, changes = state.run, []
    added = timedelta(0)
    if previous is not None and rule.violates(previous):
        added = min(reading.at - previous.at, max_gap)
        value = rule.value(previous)
        start, end = previous.at, previous.at + added
        if intervals and intervals[-1].end >= start:
            last = intervals[-1]
            intervals[-1] = Interval(last.start, max(last.end, end), _worse(rule, last.peak, value))
        else:
            intervals.append(Interval(start, end, value))
        if len(intervals) > MAX_INTERVALS:
            gaps = [b.start - a.end for a, b in itertools.pairwise(intervals)]
            at = gaps.index(min(gaps))
            a, b = intervals[at], intervals[at + 1]
            intervals[at : at + 2] = [Interval(a.start, b.end, _worse(rule, a.peak, b.peak))]
    horizon = reading.at - rule.window
    intervals = [i for i in intervals if i.end > horizon]
    if intervals and intervals[0].start < horizon:
        intervals[0] = replace(intervals[0], start=horizon)
    total = sum((i.end - i.start for i in intervals), timedelta(0))
    violating = rule.violates(reading)
    if occurrence is not None:
        peak = occurrence.peak
        if violating:
            peak = _worse(rule, peak, rule.value(reading))
        occurrence = replace(
            occurrence, elapsed=occurrence.elapsed + added, peak=peak, fleet_id=reading.fleet_id
        )
        if total < rule.duration:
            changes.append(
                Change(
                    ChangeKind.CLEARED, _occurrence(rule, reading.device_id, occurrence, reading.at)
                )
            )
            occurrence = None
    elif total >= rule.duration:
        values = [i.peak for i in intervals] + ([rule.value(reading)] if violating else [])
        occurrence = Run(
            started_at=intervals[0].start,
            count=1,
            elapsed=total,
            peak=_peak(rule, values),
            raised_at=reading.at,
            fleet_id=reading.fleet_id,
        )
        changes.append(Change(ChangeKind.RAISED, _occurrence(rule, reading.device_id, occurrence)))
    return RuleState(occurrence, tuple(intervals)), changes


def evaluate(rule: Rule, readings: Sequence[Reading], max_gap: timedelta) -> list[Occurrence]:
    """Every occurrence of ``rule`` in one device's readings (sorted here by time): the same
    fold over :func:`step` that a device's stored state advances by.
    """
    ordered = sorted(readings, key=lambda r: r.timestamp)
    found: dict[datetime, Occurrence] = {}
    state, previous = EMPTY, None
    for reading in ordered:
        state, changes = step(rule, state, previous, reading, max_gap)
        for change in changes:
            found[change.occurrence.started_at] = change.occurrence
        previous = reading
    open_run = state.run
    if previous is not None and open_run is not None and open_run.raised_at is not None:
        # Still active: its figures as of the last reading (the state holds them).
        found[open_run.started_at] = _occurrence(rule, previous.device_id, open_run)
    return sorted(found.values(), key=lambda o: o.started_at)
