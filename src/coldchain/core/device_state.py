"""A device's state between readings: its newest applied reading, each rule's state, an open
silence. Advancing it by one in-order reading is constant work; a late reading is handled by
replaying a bounded window of stored readings (:func:`replay`).

The state is a plain value with a ``version``: stores write it with optimistic concurrency
(the version they read must still be there), so two processes that advance the same device
at once cannot overwrite each other; the loser reloads and applies again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.alarms import SILENCE_RULE, Alarm, AlarmState, alarm_id, from_occurrence
from coldchain.core.reading import Reading
from coldchain.core.rules import EMPTY, ChangeKind, Interval, Rule, RuleState, Run, step
from coldchain.core.timestamps import parse_iso, to_canonical

STATE_FORMAT: Final = 2
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
    # What the device listing shows beside the newest reading (DynamoDB keeps no devices
    # table of its own): readings stored so far and the earliest one's timestamp. Counted
    # by the step that stored them, so a state write lost to a concurrent writer leaves a
    # few uncounted (see Ingest.run); informational, reports count the readings themselves.
    readings: int = 0
    first: str | None = None

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
        # An active occurrence's growing peak and time out of range stay in the rule's state
        # (see live_figures), not in its alarm record: `step` reports raises and clears only,
        # so a device in a long excursion costs no alarm write per reading.
        transitions += [
            Transition(change.kind, _alarm(rule, change.kind, change.occurrence, now))
            for change in changes
        ]
    recent = (*state.recent, reading.timestamp)[-RECENT_KEPT:]
    after = replace(state, last=reading, rules=rules, silence=None, recent=recent)
    return after, transitions


def live_figures(alarm: Alarm, state: DeviceState | None) -> Alarm:
    """An active alarm with its peak and time out of range as of the device's newest reading
    (its record keeps them as they were when it was raised; the rule's state has them live).
    """
    if state is None or alarm.state is not AlarmState.ACTIVE:
        return alarm
    run = state.rule(alarm.rule).run
    if run is None or run.raised_at is None or run.started_at != alarm.started_at:
        return alarm
    return replace(alarm, peak=run.peak, out_of_range=run.elapsed)


def with_live_figures(
    alarms: Sequence[Alarm], states: Callable[[Sequence[str]], Mapping[str, DeviceState]]
) -> list[Alarm]:
    """:func:`live_figures` for a listing; ``states`` is a state store's ``get_many`` (one
    read for the devices with active alarms).
    """
    devices = sorted({a.device_id for a in alarms if a.state is AlarmState.ACTIVE})
    found = states(devices) if devices else {}
    return [live_figures(alarm, found.get(alarm.device_id)) for alarm in alarms]


@dataclass(frozen=True, slots=True)
class Replayed:
    """What folding a window of readings found: the state, and each alarm's record as it was
    raised and as it ended up (the same record when it is still as raised).
    """

    state: DeviceState
    final: dict[str, Alarm]
    raised: dict[str, Alarm]


def replay(
    device_id: str, readings: Iterable[Reading], profile: AlarmProfile, now: datetime
) -> Replayed:
    """Fold ``readings`` (sorted here) from an empty state."""
    state = DeviceState(device_id)
    final: dict[str, Alarm] = {}
    raised: dict[str, Alarm] = {}
    for reading in sorted(readings, key=lambda r: r.timestamp):
        if state.last is not None and reading.timestamp <= state.last.timestamp:
            continue
        state, transitions = advance(state, reading, profile, now)
        for transition in transitions:
            final[transition.alarm.id] = transition.alarm
            if transition.kind is ChangeKind.RAISED:
                raised[transition.alarm.id] = transition.alarm
    return Replayed(state, final, raised)


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
# Compact, because DynamoDB bills each write by the whole item's size in KiB: times are epoch
# milliseconds, a cumulative rule's intervals are delta-encoded (each start after the previous
# end, each end after its start). Format 1 (ISO strings) is still read.


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _moment(value: int | str) -> datetime:
    if isinstance(value, str):  # format 1
        return parse_iso(value)
    return datetime.fromtimestamp(value / 1000, UTC)


def _run_document(run: Run | None) -> list[Any] | None:
    if run is None:
        return None
    raised = None if run.raised_at is None else _ms(run.raised_at)
    elapsed = round(run.elapsed.total_seconds() * 1000)
    return [_ms(run.started_at), run.count, elapsed, run.peak, raised, run.fleet_id]


def _run(document: Mapping[str, Any] | list[Any] | None) -> Run | None:
    if document is None:
        return None
    if isinstance(document, Mapping):  # format 1
        raised = document["raised_at"]
        return Run(
            started_at=parse_iso(document["started_at"]),
            count=int(document["count"]),
            elapsed=timedelta(seconds=float(document["elapsed_s"])),
            peak=float(document["peak"]),
            raised_at=None if raised is None else parse_iso(raised),
            fleet_id=document["fleet_id"],
        )
    started, count, elapsed, peak, raised, fleet = document
    return Run(
        started_at=_moment(started),
        count=int(count),
        elapsed=timedelta(milliseconds=elapsed),
        peak=float(peak),
        raised_at=None if raised is None else _moment(raised),
        fleet_id=fleet,
    )


def _intervals_document(intervals: Sequence[Interval]) -> list[list[float]]:
    out: list[list[float]] = []
    previous = 0
    for interval in intervals:
        start, end = _ms(interval.start), _ms(interval.end)
        out.append([start - previous, end - start, interval.peak])
        previous = end
    return out


def _intervals(document: Sequence[Sequence[Any]], format_: int) -> tuple[Interval, ...]:
    if format_ == 1:
        return tuple(
            Interval(parse_iso(start), parse_iso(end), float(peak)) for start, end, peak in document
        )
    out: list[Interval] = []
    previous = 0
    for gap, length, peak in document:
        start = previous + int(gap)
        previous = start + int(length)
        out.append(Interval(_moment(start), _moment(previous), float(peak)))
    return tuple(out)


def state_document(state: DeviceState) -> dict[str, Any]:
    """A JSON-ready document (the version is kept by the store, beside it)."""
    last = None
    if state.last is not None:
        last = {f.name: getattr(state.last, f.name) for f in fields(Reading)}
    rules: dict[str, Any] = {}
    for name, rule in sorted(state.rules.items()):
        entry: dict[str, Any] = {}
        if rule.run is not None:
            entry["run"] = _run_document(rule.run)
        if rule.intervals:
            entry["intervals"] = _intervals_document(rule.intervals)
        rules[name] = entry
    document: dict[str, Any] = {
        "format": STATE_FORMAT,
        "device_id": state.device_id,
        "last": last,
        "recent": [_ms(parse_iso(t)) for t in state.recent],
        "rules": rules,
    }
    if state.silence is not None:
        document["silence"] = _run_document(state.silence)
    if state.readings:
        document["readings"] = state.readings
    if state.first is not None:
        document["first"] = _ms(parse_iso(state.first))
    return document


def state_from_document(document: Mapping[str, Any], version: int) -> DeviceState:
    """The state a store kept, at ``version``."""
    format_ = int(document.get("format", 1))
    last = document.get("last")
    rules = {
        name: RuleState(_run(entry.get("run")), _intervals(entry.get("intervals", []), format_))
        for name, entry in document.get("rules", {}).items()
    }
    recent = tuple(
        t if isinstance(t, str) else to_canonical(_moment(t)) for t in document.get("recent", ())
    )
    return DeviceState(
        device_id=str(document["device_id"]),
        last=None if last is None else Reading(**last),
        rules=rules,
        silence=_run(document.get("silence")),
        recent=recent,
        version=version,
        readings=int(document.get("readings", 0)),
        first=None if document.get("first") is None else to_canonical(_moment(document["first"])),
    )
