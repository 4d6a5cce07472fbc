"""Excursion thresholds: a profile object, never constants buried in rule code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Profile:
    """The thresholds one fleet's readings are judged by.

    The defaults are the original reference's: a 2-8 °C band with an excursion after two
    consecutive readings outside it, battery below 15 %, shock above 2.0 g and five minutes
    of silence. Comparisons are strict: 8.0 °C is in band, 8.01 °C is not.
    """

    name: str = "default"
    temperature_high_c: float = 8.0
    temperature_low_c: float = 2.0
    consecutive_readings: int = 2
    battery_low_pct: float = 15.0
    shock_high_g: float = 2.0
    silence_after: timedelta = timedelta(minutes=5)
    max_clock_skew: timedelta = timedelta(minutes=5)
    # Older readings are dead-lettered as "too old": a device with a reset clock (2001) must
    # not raise alarms dated decades ago, nor write rows the 90-day retention never reaches.
    max_reading_age: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if self.temperature_low_c >= self.temperature_high_c:
            raise ValueError("temperature_low_c must be below temperature_high_c")
        if self.consecutive_readings < 1:
            raise ValueError("consecutive_readings must be at least 1")
        if self.max_reading_age <= timedelta(0):
            raise ValueError("max_reading_age must be positive")

    @property
    def history_needed(self) -> int:
        """How many readings, the newest included, the rules look at."""
        return self.consecutive_readings + 1


DEFAULT_PROFILE = Profile()
