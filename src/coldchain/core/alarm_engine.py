"""Turns readings into alarm records and notifications.

After a batch is stored, each device that needs it (a new reading violates a rule, or the
device has alarms that may change) is re-evaluated over its readings from ``lookback``
before the earliest new one (further back when an alarm that is still open started earlier),
and the occurrences found are reconciled with the stored records: new ones are raised,
ended ones cleared, and an operator's acknowledgement is never overwritten. A device
without violations or open alarms costs nothing. ``sweep`` raises ``DeviceSilence`` for
devices quiet too long and reminds about unacknowledged critical alarms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.alarms import SILENCE_RULE, Alarm, AlarmState, alarm_id, from_occurrence
from coldchain.core.notifications import Notification, NotificationKind
from coldchain.core.ports import AlarmStore, NotificationOutbox, ReadingStore
from coldchain.core.reading import Reading
from coldchain.core.rules import evaluate
from coldchain.core.timestamps import LAST_TIMESTAMP, to_canonical


class AlarmEngine:
    """Evaluates a profile's rules against stored readings; keeps alarm records."""

    def __init__(
        self,
        readings: ReadingStore,
        alarms: AlarmStore,
        outbox: NotificationOutbox,
        profile: AlarmProfile,
    ) -> None:
        self._readings = readings
        self._alarms = alarms
        self._outbox = outbox
        self.profile = profile

    def after_store(self, stored: Sequence[Reading], now: datetime) -> list[Notification]:
        """Update alarms for newly stored readings; returns what was enqueued."""
        by_device: dict[str, list[Reading]] = {}
        for reading in stored:
            by_device.setdefault(reading.device_id, []).append(reading)
        notifications: list[Notification] = []
        changed: list[Alarm] = []
        for device_id, new in by_device.items():
            device_changes, device_notes = self._device(device_id, new, now)
            changed.extend(device_changes)
            notifications.extend(device_notes)
        if changed:
            self._alarms.save(changed)
        if notifications:
            self._outbox.enqueue(notifications)
        return notifications

    def _device(  # noqa: PLR0912 - one reconciliation, read top to bottom
        self, device_id: str, new: list[Reading], now: datetime
    ) -> tuple[list[Alarm], list[Notification]]:
        profile = self.profile
        earliest = min(reading.at for reading in new)
        stored = self._alarms.for_device(device_id, earliest - profile.lookback)
        changed: list[Alarm] = []
        notes: list[Notification] = []
        for alarm in stored:  # a device that reports again is no longer silent
            if alarm.rule == SILENCE_RULE and alarm.state is AlarmState.ACTIVE:
                cleared = replace(
                    alarm,
                    state=AlarmState.CLEARED,
                    cleared_at=earliest,
                    out_of_range=max(earliest - alarm.started_at, timedelta(0)),
                )
                changed.append(cleared)
                notes.append(Notification(NotificationKind.CLEARED, cleared))
        rule_alarms = {a.id: a for a in stored if a.rule != SILENCE_RULE}
        # Only rules that a new reading violates, or that have an open or recent alarm, can
        # change: the others are not evaluated (a battery alarm does not pay for 24 h of the
        # cumulative temperature rule).
        rules = [
            rule
            for rule in profile.rules
            if any(rule.violates(r) for r in new)
            or any(a.rule == rule.name for a in rule_alarms.values())
        ]
        if not rules:
            return changed, notes
        lookback = max(rule.lookback for rule in rules) + profile.max_gap
        start = min(
            [earliest - lookback, *(a.started_at - profile.max_gap for a in rule_alarms.values())]
        )
        window = list(self._readings.between(device_id, to_canonical(start), LAST_TIMESTAMP))
        computed: dict[str, Alarm] = {}
        for rule in rules:
            for occurrence in evaluate(rule, window, profile.max_gap):
                alarm = from_occurrence(occurrence, rule.severity, rule.describe())
                computed[alarm.id] = alarm
        replaced: list[str] = []
        for key, found in computed.items():
            old = rule_alarms.get(key) or _same_occurrence(found, rule_alarms, computed)
            if old is None:
                raised = replace(found, last_notified_at=now)
                changed.append(raised)
                notes.append(Notification(NotificationKind.RAISED, raised))
                if raised.state is AlarmState.CLEARED:
                    notes.append(Notification(NotificationKind.CLEARED, raised))
                continue
            if old.id != key:
                # A late reading moved the start of a run already alarmed: one occurrence,
                # one record, under the id of its true start; no second raise.
                replaced.append(old.id)
                rule_alarms.pop(old.id)
            merged = replace(
                found, acknowledgement=old.acknowledgement, last_notified_at=old.last_notified_at
            )
            if merged != old:
                changed.append(merged)
                if old.state is AlarmState.ACTIVE and merged.state is AlarmState.CLEARED:
                    notes.append(Notification(NotificationKind.CLEARED, merged))
        if replaced:
            self._alarms.delete(replaced)
        latest = max(reading.at for reading in new)
        for key, old in rule_alarms.items():
            # An open alarm whose run a late reading split or ended: it is over.
            if key not in computed and old.state is AlarmState.ACTIVE and old.started_at >= start:
                cleared = replace(old, state=AlarmState.CLEARED, cleared_at=latest)
                changed.append(cleared)
                notes.append(Notification(NotificationKind.CLEARED, cleared))
        return changed, notes

    def sweep(self, now: datetime) -> list[Notification]:
        """Raise DeviceSilence for quiet devices; remind about unacknowledged critical alarms."""
        profile = self.profile
        changed: list[Alarm] = []
        notes: list[Notification] = []
        silent_now = {
            a.device_id
            for a in self._alarms.list(active=True, limit=1_000_000)
            if a.rule == SILENCE_RULE
        }
        for reading in self._readings.latest():
            quiet = now - reading.at
            if quiet < profile.silence_after or reading.device_id in silent_now:
                continue
            alarm = Alarm(
                id=alarm_id(reading.device_id, SILENCE_RULE, reading.at),
                device_id=reading.device_id,
                fleet_id=reading.fleet_id,
                rule=SILENCE_RULE,
                severity=profile.silence_severity,
                state=AlarmState.ACTIVE,
                started_at=reading.at,
                raised_at=now,
                cleared_at=None,
                peak=round(quiet.total_seconds() / 60, 1),
                out_of_range=quiet,
                detail=f"no reading for {profile.silence_after.total_seconds() / 60:g} min",
                last_notified_at=now,
            )
            if self._alarms.get(alarm.id) is not None:
                continue  # this silence was raised and cleared before
            changed.append(alarm)
            notes.append(Notification(NotificationKind.RAISED, alarm))
        for alarm in self._alarms.list(active=True, limit=1_000_000):
            if alarm.severity.rank < 2 or alarm.acknowledgement is not None:
                continue
            last = alarm.last_notified_at or alarm.raised_at
            if now - last >= profile.reminder_every:
                reminded = replace(alarm, last_notified_at=now)
                changed.append(reminded)
                notes.append(Notification(NotificationKind.REMINDER, reminded))
        if changed:
            self._alarms.save(changed)
        if notes:
            self._outbox.enqueue(notes)
        return notes


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
