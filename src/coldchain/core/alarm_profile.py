"""Alarm profiles: a list of rules plus the timing of silence and reminders, from TOML.

name = "pharma-2-8"
max_gap = "5m"          # the longest time one reading may stand for
silence_after = "5m"    # DeviceSilence when a device that reported is quiet this long
reminder_every = "15m"  # reminders for unacknowledged critical alarms

[[rules]]
name = "TemperatureHigh"
metric = "temperature_c"      # temperature_c, humidity_pct, shock_g, battery_pct
comparison = ">"              # >, >=, <, <=, outside (with low = ...)
threshold = 8.0
kind = "duration"             # instant, consecutive (count), duration, cumulative (window)
duration = "30m"
severity = "critical"         # info, warning, critical
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from coldchain.core.errors import ConfigurationError
from coldchain.core.rules import OUTSIDE, Rule, RuleKind, Severity

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$")
_UNITS: Final = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_RULE_FIELDS: Final = {
    "name",
    "metric",
    "comparison",
    "threshold",
    "low",
    "kind",
    "severity",
    "count",
    "duration",
    "window",
}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``1.5h``, ``2d``.

    Raises:
        ValueError: not such a duration.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 1h or 2d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True, slots=True)
class AlarmProfile:
    """Rules and timing for one kind of cargo."""

    name: str
    rules: tuple[Rule, ...]
    max_gap: timedelta = timedelta(minutes=5)
    silence_after: timedelta = timedelta(minutes=5)
    silence_severity: Severity = Severity.WARNING
    reminder_every: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        names = [rule.name for rule in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rule names must be unique")

    @property
    def lookback(self) -> timedelta:
        """How much history before a new reading evaluation needs."""
        longest = max((rule.lookback for rule in self.rules), default=timedelta(0))
        return longest + self.max_gap

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    @property
    def band(self) -> tuple[float | None, float | None]:
        """The temperature band ``(low, high)`` the rules keep cargo in: an ``outside``
        temperature rule's, else the highest "below" and the lowest "above" threshold; a side
        no rule bounds is None.
        """
        temperature = [rule for rule in self.rules if rule.metric == "temperature_c"]
        for rule in temperature:
            if rule.comparison == OUTSIDE and rule.low is not None:
                return rule.low, rule.threshold
        lows = [rule.threshold for rule in temperature if rule.comparison.startswith("<")]
        highs = [rule.threshold for rule in temperature if rule.comparison.startswith(">")]
        return max(lows, default=None), min(highs, default=None)


def default_profile() -> AlarmProfile:
    """The original reference's early-warning tier, an early freezing alarm, and the
    pharma 2-8 °C rules.
    """
    low, high = 2.0, 8.0  # the band, written once
    return AlarmProfile(
        name="default",
        rules=(
            Rule(
                "TemperatureExcursion",
                "temperature_c",
                ">",
                high,
                RuleKind.CONSECUTIVE,
                Severity.WARNING,
                count=2,
            ),
            # Freezing destroys vaccines faster than warmth: critical at the second reading
            # below 0 °C, long before the 15-minute low-temperature rule.
            Rule(
                "Freezing",
                "temperature_c",
                "<",
                0.0,
                RuleKind.CONSECUTIVE,
                Severity.CRITICAL,
                count=2,
            ),
            Rule("BatteryLow", "battery_pct", "<", 15.0, RuleKind.INSTANT, Severity.WARNING),
            Rule("ShockDetected", "shock_g", ">", 2.0, RuleKind.INSTANT, Severity.WARNING),
            Rule(
                "TemperatureHigh30m",
                "temperature_c",
                ">",
                high,
                RuleKind.DURATION,
                Severity.CRITICAL,
                duration=timedelta(minutes=30),
            ),
            Rule(
                "TemperatureLow15m",
                "temperature_c",
                "<",
                low,
                RuleKind.DURATION,
                Severity.CRITICAL,
                duration=timedelta(minutes=15),
            ),
            Rule(
                "TemperatureCumulative60m",
                "temperature_c",
                "outside",
                high,
                RuleKind.CUMULATIVE,
                Severity.CRITICAL,
                duration=timedelta(minutes=60),
                window=timedelta(hours=24),
                low=low,
            ),
        ),
    )


def parse_profile(text: str, source: str = "profile") -> AlarmProfile:
    """A profile from TOML text.

    Raises:
        ConfigurationError: naming the rule and the field that is wrong.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid TOML: {exc}") from None
    return profile_from_mapping(document, source)


def profile_from_mapping(document: Mapping[str, Any], source: str = "profile") -> AlarmProfile:
    """A profile from the keys and values of its TOML (or of :func:`profile_mapping`).

    Raises:
        ConfigurationError: naming the rule and the field that is wrong.
    """
    unknown = set(document) - {"name", "max_gap", "silence_after", "reminder_every", "rules"}
    if unknown:
        raise ConfigurationError(f"{source}: unknown key {sorted(unknown)[0]!r}")
    rules_data = document.get("rules")
    if not isinstance(rules_data, list) or not rules_data:
        raise ConfigurationError(f"{source}: needs at least one [[rules]] table")
    rules = tuple(_rule(entry, index, source) for index, entry in enumerate(rules_data, start=1))
    timing: dict[str, Any] = {}
    for key in ("max_gap", "silence_after", "reminder_every"):
        if key in document:
            try:
                timing[key] = parse_duration(str(document[key]))
            except ValueError as exc:
                raise ConfigurationError(f"{source}: {key}: {exc}") from None
    try:
        return AlarmProfile(name=str(document.get("name", source)), rules=rules, **timing)
    except ValueError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None


def _rule(entry: object, index: int, source: str) -> Rule:  # noqa: PLR0912 - one check a field
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{source}: rule {index} is not a table")
    label = f"{source}: rule {index} ({entry.get('name', 'unnamed')})"
    unknown = set(entry) - _RULE_FIELDS
    if unknown:
        raise ConfigurationError(f"{label}: unknown field {sorted(unknown)[0]!r}")
    for required in ("name", "metric", "comparison", "threshold", "kind", "severity"):
        if required not in entry:
            raise ConfigurationError(f"{label}: {required} is required")
    try:
        kind = RuleKind(entry["kind"])
    except ValueError:
        raise ConfigurationError(
            f"{label}: kind: {entry['kind']!r} is not one of {', '.join(k.value for k in RuleKind)}"
        ) from None
    try:
        severity = Severity(entry["severity"])
    except ValueError:
        raise ConfigurationError(
            f"{label}: severity: {entry['severity']!r} is not one of "
            f"{', '.join(s.value for s in Severity)}"
        ) from None
    values: dict[str, Any] = {}
    for key in ("duration", "window"):
        if key in entry:
            try:
                values[key] = parse_duration(str(entry[key]))
            except ValueError as exc:
                raise ConfigurationError(f"{label}: {key}: {exc}") from None
    for key in ("threshold", "low"):
        if key in entry:
            if isinstance(entry[key], bool) or not isinstance(entry[key], int | float):
                raise ConfigurationError(f"{label}: {key}: must be a number")
            values[key] = float(entry[key])
    if "count" in entry:
        if isinstance(entry["count"], bool) or not isinstance(entry["count"], int):
            raise ConfigurationError(f"{label}: count: must be a whole number")
        values["count"] = entry["count"]
    if kind in (RuleKind.DURATION, RuleKind.CUMULATIVE) and "duration" not in values:
        raise ConfigurationError(f"{label}: duration is required for kind {kind.value}")
    if kind is RuleKind.CONSECUTIVE and "count" not in values:
        raise ConfigurationError(f"{label}: count is required for kind consecutive")
    try:
        return Rule(
            name=str(entry["name"]),
            metric=str(entry["metric"]),
            comparison=str(entry["comparison"]),
            kind=kind,
            severity=severity,
            **values,
        )
    except ValueError as exc:
        raise ConfigurationError(f"{label}: {exc}") from None


def _duration_text(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


def profile_mapping(profile: AlarmProfile) -> dict[str, Any]:
    """The profile as the keys and values of its TOML (JSON-ready): what a worker records so
    that ``dlq replay``, the dashboard and the CLI use the rules it runs with.
    """
    rules = []
    for rule in profile.rules:
        entry: dict[str, Any] = {
            "name": rule.name,
            "metric": rule.metric,
            "comparison": rule.comparison,
            "threshold": rule.threshold,
            "kind": rule.kind.value,
            "severity": rule.severity.value,
        }
        if rule.low is not None:
            entry["low"] = rule.low
        if rule.kind is RuleKind.CONSECUTIVE:
            entry["count"] = rule.count
        if rule.kind in (RuleKind.DURATION, RuleKind.CUMULATIVE):
            entry["duration"] = _duration_text(rule.duration)
        if rule.kind is RuleKind.CUMULATIVE:
            entry["window"] = _duration_text(rule.window)
        rules.append(entry)
    return {
        "name": profile.name,
        "max_gap": _duration_text(profile.max_gap),
        "silence_after": _duration_text(profile.silence_after),
        "reminder_every": _duration_text(profile.reminder_every),
        "rules": rules,
    }
