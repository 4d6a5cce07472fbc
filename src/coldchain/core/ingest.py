"""The one ingest step: a batch of raw messages in, everything that follows from it out.

Every entry point (the local worker, the Lambda handlers, dead-letter replay) calls
:meth:`Ingest.run` and only wires adapters. Per batch:

1. each message is validated, stored (idempotently) or dead-lettered (:class:`Processor`);
2. each device with stored or duplicate readings has its state read once;
3. readings newer than the state's last one advance it (constant work each); a reading at or
   before it was applied already (a redelivery) and changes nothing; a reading older than the
   last one applied, stored now, is *late*: the device's state is rebuilt by replaying a
   bounded window of its stored readings, and the alarms in that window reconciled;
4. alarm transitions are saved, notifications enqueued, and the state written once per device
   with the version it was read at (a concurrent writer makes it fail, and the caller retries).

Redelivery is harmless: a reading whose write succeeded but whose state was not written comes
back as a duplicate newer than the state, and is applied then; one whose effects were applied
is a duplicate at or before the state's last reading, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice

from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.alarms import SILENCE_RULE, Alarm, AlarmState
from coldchain.core.device_state import (
    DeviceState,
    Replayed,
    Transition,
    advance,
    replay,
    silence,
)
from coldchain.core.errors import StateConflictError
from coldchain.core.events import Event, EventKind, event_kind
from coldchain.core.messages import Message, Outcome
from coldchain.core.notifications import Notification, NotificationKind
from coldchain.core.ports import (
    AlarmStore,
    DeviceStateStore,
    EventSink,
    NotificationOutbox,
)
from coldchain.core.processing import Processor, Result
from coldchain.core.reading import Reading
from coldchain.core.rules import ChangeKind, Severity
from coldchain.core.timestamps import LAST_TIMESTAMP, to_canonical

RETRACTED = " (retracted: a late reading showed the rule was not met)"
REPAIR_LIMIT = 50_000  # readings a late reading may replay (24 h at one per 2 s)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one batch did."""

    results: list[Result]
    transitions: list[Transition] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    repairs: int = 0  # devices whose state a late reading made us rebuild (first sight aside)
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep did: the notifications it enqueued, and how many devices are silent."""

    notifications: list[Notification]
    silent_devices: int


class Ingest:
    """Validates, stores, advances device state and alarms, for a batch at a time."""

    def __init__(
        self,
        processor: Processor,
        states: DeviceStateStore,
        alarms: AlarmStore,
        outbox: NotificationOutbox,
        profile: AlarmProfile,
        events: EventSink | None = None,
    ) -> None:
        self._processor = processor
        self._events = events
        self._readings = processor.readings
        self._states = states
        self._alarms = alarms
        self._outbox = outbox
        self.profile = profile

    def run(
        self,
        messages: Sequence[Message],
        now: datetime,
        uncounted: dict[str, list[str]] | None = None,
    ) -> IngestResult:
        """Ingest a batch; stores are written, nothing is committed here (the caller's unit of
        work commits, then acknowledges).

        Raises:
            StorageError: a store failed; nothing of the batch may be acknowledged.
            StateConflictError: another process advanced one of the devices meanwhile.
        """
        results = self._processor.process_batch(messages)
        by_device: dict[str, list[Reading]] = {}
        for result in results:
            if result.outcome in (Outcome.STORED, Outcome.DUPLICATE) and result.reading:
                by_device.setdefault(result.reading.device_id, []).append(result.reading)
        # Readings this step stored, per device, until its state (which counts them) is
        # written; run_retrying passes them on when another writer won the state write.
        stored = {} if uncounted is None else uncounted
        for result in results:
            if result.outcome is Outcome.STORED and result.reading:
                stored.setdefault(result.reading.device_id, []).append(result.reading.timestamp)
        if not by_device:
            return IngestResult(results)
        states = self._states.get_many(sorted(by_device))
        transitions: list[Transition] = []
        moved: list[str] = []
        writes: list[tuple[DeviceState, int]] = []
        repairs = 0
        for device_id, readings in by_device.items():
            before = states.get(device_id) or DeviceState(device_id)
            after, changed, removed = self._device(before, readings, now)
            unapplied = [  # stored before a crash, never counted: newer than the state
                r.timestamp
                for r in readings
                if before.last is None or r.timestamp > before.last.timestamp
            ]
            counted = sorted({*stored.get(device_id, []), *unapplied})
            after = _counted(before, after, counted)
            repairs += removed is not None and before.version > 0
            transitions += changed
            moved += removed or []
            if after != before:
                writes.append((after, before.version))
        # Effects first, the state last: a failure in between leaves the state behind, so the
        # redelivered reading is applied again and its (idempotent) effects written again. The
        # other order would lose them: the state would say "applied".
        if moved:
            self._alarms.delete(moved)
        alarms = {t.alarm.id: t.alarm for t in transitions}  # the last record of each
        if alarms:
            self._alarms.save(list(alarms.values()))
        notes = [note for t in transitions if (note := _notification(t)) is not None]
        if notes:
            self._outbox.enqueue(notes)
        raised = [e for t in transitions if (e := self._event(t)) is not None]
        if raised and self._events is not None:
            self._events.publish(raised)
        for state, version in writes:
            self._states.put(state, expected_version=version)
            stored.pop(state.device_id, None)
        return IngestResult(results, transitions, notes, repairs, raised)

    def _event(self, transition: Transition) -> Event | None:
        """The event a raise counts as: one alarm model, events derived from it."""
        if transition.kind is not ChangeKind.RAISED:
            return None
        alarm = transition.alarm
        if alarm.rule == SILENCE_RULE:
            kind: EventKind | None = EventKind.DEVICE_SILENCE
            threshold = self.profile.silence_after.total_seconds() / 60
        else:
            rule = self.profile.rule(alarm.rule)
            if rule is None:
                return None
            threshold = rule.threshold
            kind = event_kind(rule.metric, rule.comparison, alarm.peak > rule.threshold)
        if kind is None:
            return None
        return Event(
            kind,
            alarm.device_id,
            alarm.fleet_id,
            to_canonical(alarm.raised_at),
            alarm.peak,
            threshold,
            f"{alarm.rule}: {alarm.detail}",
        )

    def run_retrying(
        self, messages: Sequence[Message], now: datetime, attempts: int = 5
    ) -> IngestResult:
        """:meth:`run`, again when another process advanced one of the devices meanwhile (a
        store without transactions, such as DynamoDB: the readings are already stored, so the
        next attempt sees them as duplicates and applies what is not applied yet).

        Raises:
            StateConflictError: still conflicting after ``attempts``.
        """
        uncounted: dict[str, list[str]] = {}  # stored by an attempt whose state lost
        for attempt in range(1, attempts + 1):
            try:
                return self.run(messages, now, uncounted)
            except StateConflictError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def sweep(self, now: datetime) -> Sweep:
        """Raise DeviceSilence for devices quiet too long (read from their state, not from
        history), remind about unacknowledged critical alarms (from the active ones), and
        count the devices silent now (one fleet-level figure, not a metric per device).
        """
        transitions: list[Transition] = []
        writes: list[tuple[DeviceState, int]] = []
        silent_devices = 0
        for state in self._states.all():
            silent, raised = silence(state, self.profile, now)
            silent_devices += silent.silence is not None
            if raised is not None:
                writes.append((silent, state.version))
                transitions.append(raised)
        reminders: list[Alarm] = []
        for alarm in self._alarms.list(active=True, limit=1_000_000):
            if alarm.severity.rank < Severity.CRITICAL.rank or alarm.acknowledgement is not None:
                continue
            if now - (alarm.last_notified_at or alarm.raised_at) >= self.profile.reminder_every:
                reminders.append(replace(alarm, last_notified_at=now))
        changed = [t.alarm for t in transitions] + reminders
        if changed:
            self._alarms.save(changed)
        notes = [note for t in transitions if (note := _notification(t)) is not None]
        notes += [Notification(NotificationKind.REMINDER, alarm) for alarm in reminders]
        if notes:
            self._outbox.enqueue(notes)
        for (silent, version), raised in zip(writes, transitions, strict=True):  # last, as in run
            try:
                self._states.put(silent, expected_version=version)
            except StateConflictError:  # it reported meanwhile: that silence is already over
                over = replace(raised.alarm, state=AlarmState.CLEARED, cleared_at=now)
                self._alarms.save([over])
                silent_devices -= 1
        return Sweep(notes, silent_devices)

    def _device(
        self, state: DeviceState, readings: list[Reading], now: datetime
    ) -> tuple[DeviceState, list[Transition], list[str] | None]:
        """The device's new state, its alarm transitions, and (after a repair, else None) the
        ids of alarm records a late reading re-keyed.
        """
        last = state.last
        late = [
            r
            for r in readings
            if last is not None and r.timestamp < last.timestamp and not state.applied(r.timestamp)
        ]  # stored late, or stored earlier and never applied
        if late:  # the replay covers this batch's newer readings too: they are stored
            return self._repair(state, min(r.at for r in late), now)
        if state.version == 0:  # first sight (or state kept by an older version): the store
            return self._repair(state, min(r.at for r in readings), now)  # may hold history
        transitions: list[Transition] = []
        for reading in sorted(readings, key=lambda r: r.timestamp):
            if state.last is None or reading.timestamp > state.last.timestamp:
                state, changed = advance(state, reading, self.profile, now)
                transitions += changed
            # else a redelivery of a reading already applied: nothing to do
        return state, transitions, None

    def _repair(
        self, state: DeviceState, earliest: datetime, now: datetime
    ) -> tuple[DeviceState, list[Transition], list[str]]:
        """Rebuild a device's state from a bounded window of its stored readings and
        reconcile the alarms of that window with what the replay finds.
        """
        profile = self.profile
        starts = [earliest - profile.lookback]
        if (open_since := state.open_since()) is not None:
            starts.append(open_since - profile.max_gap)
        stored = self._alarms.for_device(state.device_id, min(starts))
        starts += [a.started_at - profile.max_gap for a in stored if a.state is AlarmState.ACTIVE]
        start = min(starts)
        window = self._readings.between(state.device_id, to_canonical(start), LAST_TIMESTAMP)
        replayed = replay(state.device_id, islice(window, REPAIR_LIMIT), profile, now)
        rebuilt = replace(replayed.state, silence=state.silence, version=state.version)
        transitions, moved = reconcile(stored, replayed, start, now)
        return rebuilt, transitions, moved


def _counted(before: DeviceState, after: DeviceState, stored: list[str]) -> DeviceState:
    """``after`` with the counters carried over from ``before`` and the readings it has not
    counted yet added: those this step stored, and duplicates newer than the state (stored
    by a delivery that failed before writing the state). A late duplicate counts only if
    this step stored it: one stored long ago cannot be told apart from one never counted.
    """
    firsts = [t for t in (before.first, *stored) if t is not None]
    return replace(
        after, readings=before.readings + len(stored), first=min(firsts) if firsts else None
    )


def reconcile(
    stored: Sequence[Alarm], replayed: Replayed, start: datetime, now: datetime
) -> tuple[list[Transition], list[str]]:
    """Transitions that bring the stored alarms of a replayed window to what the replay
    computed: new occurrences raised, changed ones updated or cleared, an occurrence a late
    reading re-keyed to its true start moved (one record, no second raise), and an open alarm
    whose run a late reading split or ended cleared. Acknowledgements are kept.
    """
    by_id = {alarm.id: alarm for alarm in stored if alarm.rule != SILENCE_RULE}
    transitions: list[Transition] = []
    moved: list[str] = []
    computed = replayed.final
    for key, found in computed.items():
        old = by_id.pop(key, None) or _same_occurrence(found, by_id, computed)
        if old is None:  # new: raised as it was when the rule was met, then maybe cleared
            raised = replace(replayed.raised.get(key, found), last_notified_at=now)
            transitions.append(Transition(ChangeKind.RAISED, raised))
            if found.state is AlarmState.CLEARED:
                cleared = replace(found, last_notified_at=now)
                transitions.append(Transition(ChangeKind.CLEARED, cleared))
            continue
        if old.id != key:  # a late reading moved the start of a run already alarmed
            by_id.pop(old.id, None)
            moved.append(old.id)
        merged = replace(
            found, acknowledgement=old.acknowledgement, last_notified_at=old.last_notified_at
        )
        if merged == old:
            continue
        ended = old.state is AlarmState.ACTIVE and merged.state is AlarmState.CLEARED
        transitions.append(Transition(ChangeKind.CLEARED if ended else ChangeKind.UPDATED, merged))
    for old in by_id.values():
        if old.started_at < start or old.detail.endswith(RETRACTED):
            continue
        # Raised on what was known then; a late reading shows the rule was never met. The
        # record stays (operators were told), cleared and marked.
        retracted = replace(
            old,
            state=AlarmState.CLEARED,
            cleared_at=old.cleared_at or old.raised_at,
            detail=f"{old.detail}{RETRACTED}",
        )
        ended = old.state is AlarmState.ACTIVE
        transitions.append(
            Transition(ChangeKind.CLEARED if ended else ChangeKind.UPDATED, retracted)
        )
    return transitions, moved


def _same_occurrence(
    found: Alarm, stored: dict[str, Alarm], computed: dict[str, Alarm]
) -> Alarm | None:
    """A stored alarm of the same rule, not itself recomputed, whose time overlaps ``found``."""
    far = datetime.max.replace(tzinfo=found.started_at.tzinfo)
    end = found.cleared_at or far
    for old in stored.values():
        if old.rule != found.rule or old.id in computed:
            continue
        if old.started_at <= end and found.started_at <= (old.cleared_at or far):
            return old
    return None


def _notification(transition: Transition) -> Notification | None:
    if transition.kind is ChangeKind.RAISED:
        return Notification(NotificationKind.RAISED, transition.alarm)
    if transition.kind is ChangeKind.CLEARED:
        return Notification(NotificationKind.CLEARED, transition.alarm)
    return None
