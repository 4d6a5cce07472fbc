"""The shipment (trip) summary a QA person releases a shipment on: pure arithmetic over one
device's readings in a window.

Every reading stands for the time until the next one, capped at ``max_gap`` (as in the alarm
rules), so uneven intervals and gaps weigh correctly. Mean kinetic temperature follows
USP <1160>: MKT = (ΔH/R) / -ln( Σ tᵢ·exp(-ΔH/(R·Tᵢ)) / Σ tᵢ ), temperatures in kelvin,
ΔH/R = 10,000 K (ΔH = 83.144 kJ/mol).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.errors import ConfigurationError
from coldchain.core.reading import Reading
from coldchain.core.rules import evaluate, weights

DELTA_H_OVER_R: Final = 10_000.0  # kelvin
KELVIN: Final = 273.15


@dataclass(frozen=True, slots=True)
class Excursion:
    rule: str
    severity: str
    started_at: datetime
    ended_at: datetime | None
    duration: timedelta
    peak: float


@dataclass(frozen=True, slots=True)
class TripSummary:
    device_id: str
    fleet_id: str | None
    window_start: datetime
    window_end: datetime
    first_reading: datetime
    last_reading: datetime
    received: int
    interval: timedelta
    expected_by_interval: int
    expected_by_seq: int | None
    missing_seq: int | None
    missing_ranges: tuple[tuple[int, int], ...]
    minimum: float
    maximum: float
    mean: float
    mkt: float
    band_low: float | None  # None: the profile bounds no temperature on this side
    band_high: float | None
    time_in_range: timedelta
    time_above: timedelta
    time_below: timedelta
    excursions: tuple[Excursion, ...]

    @property
    def limits(self) -> list[float]:
        """The band's limits that exist, low first (what charts draw)."""
        return [v for v in (self.band_low, self.band_high) if v is not None]

    @property
    def band_text(self) -> str:
        if self.band_low is None:
            return f"at most {self.band_high:g} °C"
        if self.band_high is None:
            return f"at least {self.band_low:g} °C"
        return f"{self.band_low:g} to {self.band_high:g} °C"

    @property
    def covered(self) -> timedelta:
        return self.time_in_range + self.time_above + self.time_below

    @property
    def percent_in_range(self) -> float:
        total = self.covered.total_seconds()
        return 100.0 * self.time_in_range.total_seconds() / total if total else 0.0

    @property
    def verdict(self) -> str:
        return "excursions present" if self.excursions else "within profile"


def seq_gaps(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Inclusive ranges of sequence numbers missing between the lowest and highest seen."""
    ordered = sorted(set(seqs))
    return [(a + 1, b - 1) for a, b in itertools.pairwise(ordered) if b - a > 1]


def mean_kinetic_temperature(readings: Sequence[Reading], spans: Sequence[timedelta]) -> float:
    """MKT in °C of readings weighted by the time each stands for.

    Raises:
        ValueError: no reading stands for any time.
    """
    total = sum(span.total_seconds() for span in spans)
    if total <= 0:
        raise ValueError("MKT needs readings that stand for some time")
    acc = sum(
        span.total_seconds() * math.exp(-DELTA_H_OVER_R / (r.temperature_c + KELVIN))
        for r, span in zip(readings, spans, strict=True)
    )
    return DELTA_H_OVER_R / -math.log(acc / total) - KELVIN


def summarise_trip(
    readings: Sequence[Reading], start: datetime, end: datetime, profile: AlarmProfile
) -> TripSummary:
    """The summary of one device's readings in ``[start, end]`` (any order, duplicates ignored).

    Raises:
        ValueError: no readings in the window.
        ConfigurationError: the profile bounds no temperature band.
    """
    unique = {r.timestamp: r for r in readings if start <= r.at <= end}
    ordered = [unique[ts] for ts in sorted(unique)]
    if not ordered:
        raise ValueError("no readings in the window")
    gaps = [b.at - a.at for a, b in itertools.pairwise(ordered)]
    interval = (
        timedelta(seconds=statistics.median(g.total_seconds() for g in gaps))
        if gaps
        else timedelta(0)
    )
    # A reading stands for up to two of the device's usual intervals (or the profile's
    # max_gap, if longer): a logger at 10 minutes is not "missing" between its readings.
    max_gap = max(profile.max_gap, 2 * interval)
    profile = replace(profile, max_gap=max_gap)
    spans = weights(ordered, max_gap)
    # The last reading has no successor: it stands for the usual interval, within the window.
    spans[-1] = min(interval, max_gap, end - ordered[-1].at)
    band_low, band_high = profile.band
    if band_low is None and band_high is None:
        raise ConfigurationError(f"profile {profile.name!r} has no temperature band to report on")
    low = -math.inf if band_low is None else band_low
    high = math.inf if band_high is None else band_high
    above = below = inside = timedelta(0)
    for reading, span in zip(ordered, spans, strict=True):
        if reading.temperature_c > high:
            above += span
        elif reading.temperature_c < low:
            below += span
        else:
            inside += span
    seqs = sorted({r.seq for r in ordered if r.seq is not None})
    expected_seq = seqs[-1] - seqs[0] + 1 if seqs else None
    first, last = ordered[0].at, ordered[-1].at
    expected = int((last - first) / interval) + 1 if interval else 1
    temps = [r.temperature_c for r in ordered]
    excursions = []
    for rule in profile.rules:
        if rule.metric != "temperature_c":
            continue
        for occurrence in evaluate(rule, ordered, profile.max_gap):
            end_at = occurrence.cleared_at
            excursions.append(
                Excursion(
                    rule.name,
                    rule.severity.value,
                    occurrence.started_at,
                    end_at,
                    (end_at or last) - occurrence.started_at,
                    occurrence.peak,
                )
            )
    excursions.sort(key=lambda e: (e.started_at, e.rule))
    return TripSummary(
        device_id=ordered[0].device_id,
        fleet_id=ordered[-1].fleet_id,
        window_start=start,
        window_end=end,
        first_reading=first,
        last_reading=last,
        received=len(ordered),
        interval=interval,
        expected_by_interval=expected,
        expected_by_seq=expected_seq,
        missing_seq=None if expected_seq is None else expected_seq - len(seqs),
        missing_ranges=tuple(seq_gaps(seqs)),
        minimum=min(temps),
        maximum=max(temps),
        mean=statistics.fmean(temps),
        mkt=mean_kinetic_temperature(ordered, spans),
        band_low=band_low,
        band_high=band_high,
        time_in_range=inside,
        time_above=above,
        time_below=below,
        excursions=tuple(excursions),
    )
