"""The limits a message is validated against, beside its schema: how far ahead of its arrival
a reading may be dated (a clock fault) and how old it may be. What readings *mean* (bands,
durations, alarms) lives in the alarm profile only (:mod:`coldchain.core.alarm_profile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Profile:
    """Validation limits."""

    name: str = "default"
    max_clock_skew: timedelta = timedelta(minutes=5)
    # Older readings are dead-lettered as "too old": a device with a reset clock (2001) must
    # not raise alarms dated decades ago, nor write rows the 90-day retention never reaches.
    max_reading_age: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if self.max_clock_skew < timedelta(0):
            raise ValueError("max_clock_skew must not be negative")
        if self.max_reading_age <= timedelta(0):
            raise ValueError("max_reading_age must be positive")


DEFAULT_PROFILE = Profile()
