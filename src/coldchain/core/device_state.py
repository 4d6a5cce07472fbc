"""A device's state between readings: its newest applied reading, each rule's state, an open
silence. Advancing it by one in-order reading is constant work; a late reading is handled by
replaying a bounded window of stored readings (:func:`replay`).

The state is a plain value with a ``version``: stores write it with optimistic concurrency
(the version they read must still be there), so two processes that advance the same device
at once cannot overwrite each other; the loser reloads and applies again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Final

from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.alarms import SILENCE_RULE, Alarm, AlarmState, alarm_id, from_occurrence
from coldchain.core.reading import Reading
from coldchain.core.rules import EMPTY, ChangeKind, Interval, Rule, RuleState, Run, step
from coldchain.core.timestamps import parse_iso, to_canonical

STATE_FORMAT: Final = 1
RECENT_KEPT: Final = 8  # timestamps of the newest readings applied, to recognise redeliveries


@dataclass(frozen=True, slots=True)
class DeviceState:
    """Everything the rules need of a device between readings."""

    device_id: str
    last: Reading | None = None
    rules: Mapping[str, RuleState] = field(default_factory=dict)
    silence: Run | None = None  # an open DeviceSilence, started at the last reading's time
    recent: tuple[str, ...] = ()  # the newest applied readings' timestamps, oldest first
    version: int = 0

    def applied(self, timestamp: str) -> bool:
        """Whether the reading at ``timestamp`` is known to have been applied."""
        return timestamp in self.recent

    def rule(self, name: str) -> RuleState:
        return self.rules.get(name, EMPTY)

    def open_since(self) -> datetime | None:
        """The earliest start of an open run or occurrence (where a repair must begin)."""
        starts = [s.run.started_at for s in self.rules.values() if s.run is not None]
        starts += [s.intervals[0].start for s in self.rules.values() if s.intervals]
        return min(starts, default=None)

    @property
    def last_at(self) -> datetime | None:
        return None if self.last is None else self.last.at


@dataclass(frozen=True, slots=True)
class Transition:
    """An alarm record that changed: raised, updated (still active) or cleared."""

    kind: ChangeKind
    alarm: Alarm


def _alarm(rule: Rule, transition_kind: ChangeKind, occurrence: Any, now: datetime) -> Alarm:
    alarm = from_occurrence(occurrence, rule.severity, rule.describe())
    if transition_kind is ChangeKind.RAISED:
        return replace(alarm, last_notified_at=now)
    return alarm


def advance(
    state: DeviceState, reading: Reading, profile: AlarmProfile, now: datetime
) -> tuple[DeviceState, list[Transition]]:
    """The state after ``reading``, which must be newer than every reading applied so far.

    Raises:
        ValueError: the reading is not newer than the last one applied (use :func:`replay`).
    """
    previous = state.last
    if previous is not None and reading.timestamp <= previous.timestamp:
        raise ValueError(f"{reading.timestamp} is not after {previous.timestamp}")
    transitions: list[Transition] = []
    if state.silence is not None:  # a device that reports again is no longer silent
        transitions.append(
            Transition(ChangeKind.CLEARED, _silence_alarm(state, profile, reading.at))
        )
    rules: dict[str, RuleState] = {}
    for rule in profile.rules:
        rule_state, changes = step(rule, state.rule(rule.name), previous, reading, profile.max_gap)
        if rule_state != EMPTY:
            rules[rule.name] = rule_state
        transitions += [
            Transition(change.kind, _alarm(rule, change.kind, change.occurrence, now))
            for change in changes
        ]
    recent = (*state.recent, reading.timestamp)[-RECENT_KEPT:]
    return DeviceState(state.device_id, reading, rules, None, recent, state.version), transitions


def replay(
    device_id: str, readings: Iterable[Reading], profile: AlarmProfile, now: datetime
) -> tuple[DeviceState, dict[str, Alarm]]:
    """Fold ``readings`` (sorted here) from an empty state; returns the state and every alarm
    record the fold produced, by id (the last record of each occurrence)."""
    state = DeviceState(device_id)
    computed: dict[str, Alarm] = {}
    for reading in sorted(readings, key=lambda r: r.timestamp):
        if state.last is not None and reading.timestamp <= state.last.timestamp:
            continue
        state, transitions = advance(state, reading, profile, now)
        for transition in transitions:
            computed[transition.alarm.id] = transition.alarm
    return state, computed


def silence(
    state: DeviceState, profile: AlarmProfile, now: datetime
) -> tuple[DeviceState, Transition | None]:
    """Raise DeviceSilence when the device has been quiet for ``silence_after``."""
    last = state.last
    if last is None or state.silence is not None or now - last.at < profile.silence_after:
        return state, None
    run = Run(last.at, 0, now - last.at, 0.0, now, last.fleet_id)
    silent = replace(state, silence=run)
    alarm = replace(_silence_alarm(silent, profile, None), last_notified_at=now)
    return silent, Transition(ChangeKind.RAISED, alarm)


def _silence_alarm(state: DeviceState, profile: AlarmProfile, cleared_at: datetime | None) -> Alarm:
    run = state.silence
    assert run is not None
    assert run.raised_at is not None
    quiet = (cleared_at or run.raised_at) - run.started_at
    return Alarm(
        id=alarm_id(state.device_id, SILENCE_RULE, run.started_at),
        device_id=state.device_id,
        fleet_id=run.fleet_id,
        rule=SILENCE_RULE,
        severity=profile.silence_severity,
        state=AlarmState.ACTIVE if cleared_at is None else AlarmState.CLEARED,
        started_at=run.started_at,
        raised_at=run.raised_at,
        cleared_at=cleared_at,
        peak=round(quiet.total_seconds() / 60, 1),
        out_of_range=max(quiet, timedelta(0)),
        detail=f"no reading for {profile.silence_after.total_seconds() / 60:g} min",
    )


# -- a JSON document for the stores -----------------------------------------------------------


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def _run_document(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "started_at": to_canonical(run.started_at),
        "count": run.count,
        "elapsed_s": _seconds(run.elapsed),
        "peak": run.peak,
        "raised_at": None if run.raised_at is None else to_canonical(run.raised_at),
        "fleet_id": run.fleet_id,
    }


def _run(document: Mapping[str, Any] | None) -> Run | None:
    if document is None:
        return None
    raised = document["raised_at"]
    return Run(
        started_at=parse_iso(document["started_at"]),
        count=int(document["count"]),
        elapsed=timedelta(seconds=float(document["elapsed_s"])),
        peak=float(document["peak"]),
        raised_at=None if raised is None else parse_iso(raised),
        fleet_id=document["fleet_id"],
    )


def state_document(state: DeviceState) -> dict[str, Any]:
    """A JSON-ready document (the version is kept by the store, beside it)."""
    last = None
    if state.last is not None:
        last = {f.name: getattr(state.last, f.name) for f in fields(Reading)}
    return {
        "format": STATE_FORMAT,
        "device_id": state.device_id,
        "last": last,
        "silence": _run_document(state.silence),
        "recent": list(state.recent),
        "rules": {
            name: {
                "run": _run_document(rule.run),
                "intervals": [
                    [to_canonical(i.start), to_canonical(i.end), i.peak] for i in rule.intervals
                ],
            }
            for name, rule in sorted(state.rules.items())
        },
    }


def state_from_document(document: Mapping[str, Any], version: int) -> DeviceState:
    """The state a store kept, at ``version``."""
    last = document.get("last")
    rules = {
        name: RuleState(
            _run(entry.get("run")),
            tuple(
                Interval(parse_iso(start), parse_iso(end), float(peak))
                for start, end, peak in entry.get("intervals", [])
            ),
        )
        for name, entry in document.get("rules", {}).items()
    }
    return DeviceState(
        device_id=str(document["device_id"]),
        last=None if last is None else Reading(**last),
        rules=rules,
        silence=_run(document.get("silence")),
        recent=tuple(document.get("recent", ())),
        version=version,
    )
