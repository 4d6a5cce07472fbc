"""Profiles from TOML, with errors that name the rule and the field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coldchain.core.alarm_profile import default_profile, parse_duration, parse_profile
from coldchain.core.errors import ConfigurationError
from coldchain.core.rules import RuleKind, Severity

GOOD = """
name = "vaccines"
max_gap = "2m"
silence_after = "10m"
reminder_every = "30m"

[[rules]]
name = "High"
metric = "temperature_c"
comparison = ">"
threshold = 8
kind = "duration"
duration = "30m"
severity = "critical"

[[rules]]
name = "Out"
metric = "temperature_c"
comparison = "outside"
low = 2.0
threshold = 8.0
kind = "cumulative"
duration = "1h"
window = "24h"
severity = "critical"
"""


def test_a_profile_loads() -> None:
    profile = parse_profile(GOOD)
    assert profile.name == "vaccines"
    assert profile.silence_after == timedelta(minutes=10)
    high, out = profile.rules
    assert (high.kind, high.duration, high.severity) == (
        RuleKind.DURATION,
        timedelta(minutes=30),
        Severity.CRITICAL,
    )
    assert out.low == 2.0
    assert profile.lookback == timedelta(hours=24, minutes=2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('duration = "30m"', 'duration = "30 minutes"'), "rule 1 (High): duration:"),
        (('kind = "duration"', 'kind = "eventually"'), "rule 1 (High): kind: 'eventually'"),
        (
            ('severity = "critical"\n\n[[rules]]', 'severity = "loud"\n\n[[rules]]'),
            "rule 1 (High): severity: 'loud'",
        ),
        (("threshold = 8\n", 'threshold = "8"\n'), "rule 1 (High): threshold: must be a number"),
        (("low = 2.0", "low = 9.0"), "rule 2 (Out): comparison 'outside' needs low"),
        (
            ('metric = "temperature_c"\ncomparison = ">"', 'metric = "pressure"\ncomparison = ">"'),
            "rule 1 (High): metric must be one of",
        ),
        (('duration = "1h"', 'duratoin = "1h"'), "rule 2 (Out): unknown field 'duratoin'"),
        (('max_gap = "2m"', 'max_gap = "two"'), "max_gap:"),
        (("[[rules]]", "[[rule]]"), "unknown key 'rule'"),
        (('name = "vaccines"', 'name = "vaccines'), "not valid TOML"),
    ],
)
def test_a_bad_profile_names_the_rule_and_field(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigurationError, match=r"profile\.toml") as caught:
        parse_profile(GOOD.replace(old, new, 1), source="profile.toml")
    assert message in str(caught.value)


def test_the_default_keeps_the_original_tier_and_adds_pharma_rules() -> None:
    names = {rule.name: rule for rule in default_profile().rules}
    assert names["TemperatureExcursion"].count == 2
    assert names["BatteryLow"].threshold == 15
    assert names["ShockDetected"].threshold == 2.0
    assert names["TemperatureHigh30m"].duration == timedelta(minutes=30)
    assert names["TemperatureLow15m"].duration == timedelta(minutes=15)
    assert names["TemperatureCumulative60m"].kind is RuleKind.CUMULATIVE
    assert default_profile().silence_after == timedelta(minutes=5)


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
