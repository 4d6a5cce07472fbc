"""Alarm stores (memory, SQLite, DynamoDB) and the ingest step's alarms on top of them."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coldchain.adapters.clock import FixedClock
from coldchain.adapters.dynamodb import (
    DynamoAlarmStore,
    DynamoDeviceStateStore,
    DynamoReadingStore,
)
from coldchain.adapters.memory import (
    MemoryAlarmStore,
    MemoryDeadLetterStore,
    MemoryDeviceStateStore,
    MemoryOutbox,
    MemoryReadingStore,
)
from coldchain.adapters.sqlite import (
    SqliteAlarmStore,
    SqliteDatabase,
    SqliteDeviceStateStore,
    SqliteOutbox,
    SqliteReadingStore,
)
from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.alarms import SILENCE_RULE, Alarm, AlarmState, acknowledge, alarm_id
from coldchain.core.errors import ValidationError
from coldchain.core.ingest import Ingest
from coldchain.core.messages import Message
from coldchain.core.notifications import Notification, NotificationKind
from coldchain.core.ports import AlarmStore, DeviceStateStore, ReadingStore
from coldchain.core.processing import Processor
from coldchain.core.reading import Reading
from coldchain.core.rules import Rule, RuleKind, Severity
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic
from tests.aws import fake_credentials, mocked_aws
from tests.factories import T0

MINUTE = timedelta(minutes=1)
PROFILE = AlarmProfile(
    name="short",
    rules=(
        Rule("Early", "temperature_c", ">", 8.0, RuleKind.CONSECUTIVE, Severity.WARNING, count=2),
        Rule(
            "High5m",
            "temperature_c",
            ">",
            8.0,
            RuleKind.DURATION,
            Severity.CRITICAL,
            duration=timedelta(minutes=5),
        ),
        Rule("Battery", "battery_pct", "<", 15.0, RuleKind.INSTANT, Severity.WARNING),
    ),
    max_gap=timedelta(minutes=2),
    silence_after=timedelta(minutes=3),
    reminder_every=timedelta(minutes=10),
)

Parts = tuple[ReadingStore, AlarmStore, DeviceStateStore]


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def parts(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Parts]:
    if request.param == "memory":
        yield MemoryReadingStore(), MemoryAlarmStore(), MemoryDeviceStateStore()
        return
    if request.param == "dynamodb":
        fake_credentials(monkeypatch)
        with mocked_aws() as aws:
            yield (
                # The state store writes the latest values (as in the Lambda wiring).
                DynamoReadingStore(aws.dynamodb, aws.telemetry, aws.devices, record_latest=False),
                DynamoAlarmStore(aws.dynamodb, aws.alarms, FixedClock(T0 + timedelta(days=30))),
                DynamoDeviceStateStore(aws.dynamodb, aws.devices),
            )
        return
    db = SqliteDatabase(tmp_path / "alarms.db")
    yield SqliteReadingStore(db), SqliteAlarmStore(db), SqliteDeviceStateStore(db)
    db.close()


def alarm(n: int = 0, **changes: object) -> Alarm:
    base = Alarm(
        id=alarm_id("dev-1", "High5m", T0 + n * MINUTE),
        device_id="dev-1",
        fleet_id="f",
        rule="High5m",
        severity=Severity.CRITICAL,
        state=AlarmState.ACTIVE,
        started_at=T0 + n * MINUTE,
        raised_at=T0 + (n + 5) * MINUTE,
        cleared_at=None,
        peak=9.5,
        out_of_range=timedelta(minutes=5),
        detail="temperature_c > 8 °C for 5 min",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_save_get_and_list(parts: Parts) -> None:
    _, store, _ = parts
    first, second = alarm(0), alarm(10, device_id="dev-2", fleet_id="g")
    store.save([first, second])
    assert store.get(first.id) == first
    assert store.get("nope") is None
    assert store.list() == [second, first]
    assert store.list(device_id="dev-2") == [second]
    assert store.list(fleet_id="f") == [first]
    cleared = replace(first, state=AlarmState.CLEARED, cleared_at=T0 + 9 * MINUTE)
    store.save([cleared])
    assert store.list(active=True) == [second]
    assert store.list(active=False) == [cleared]


def test_evaluation_never_erases_an_acknowledgement(parts: Parts) -> None:
    _, store, _ = parts
    acked = acknowledge(alarm(0), "ana", "door left open, cargo moved", T0 + 20 * MINUTE)
    store.save([acked])
    store.save([replace(alarm(0), peak=10.5)])  # re-evaluated, without the acknowledgement
    stored = store.get(acked.id)
    assert stored is not None
    assert stored.peak == 10.5
    assert stored.acknowledgement == acked.acknowledgement


def test_acknowledging_needs_a_comment() -> None:
    with pytest.raises(ValidationError, match="comment"):
        acknowledge(alarm(0), "ana", "   ", T0)


def test_for_device_returns_open_and_recently_cleared_alarms(parts: Parts) -> None:
    _, store, _ = parts
    old_open, old_closed = alarm(0), alarm(1, state=AlarmState.CLEARED, cleared_at=T0)
    long_run = alarm(2, state=AlarmState.CLEARED, cleared_at=T0 + 40 * MINUTE)
    recent = alarm(60, state=AlarmState.CLEARED, cleared_at=T0 + 70 * MINUTE)
    store.save([old_open, old_closed, long_run, recent])
    found = store.for_device("dev-1", T0 + 30 * MINUTE)
    assert found == [old_open, long_run, recent]


def readings(temps: Sequence[float], battery: float = 90.0) -> list[Reading]:
    return [
        Reading("dev-1", to_canonical(T0 + i * MINUTE), t, 60.0, 0.0, battery, fleet_id="f")
        for i, t in enumerate(temps)
    ]


def as_message(reading: Reading) -> Message:
    body = {name: getattr(reading, name) for name in Reading.__dataclass_fields__}
    body = {k: v for k, v in body.items() if v is not None}
    arrival = reading.at + timedelta(seconds=1)
    return Message(telemetry_topic(reading.device_id), json.dumps(body).encode(), arrival)


class Engine:
    """The ingest step driven with readings, as the alarm tests speak."""

    def __init__(self, parts: Parts, outbox: MemoryOutbox | SqliteOutbox) -> None:
        readings, alarms, states = parts
        processor = Processor(readings, MemoryDeadLetterStore())
        self.ingest = Ingest(processor, states, alarms, outbox, PROFILE)

    def after_store(self, batch: Sequence[Reading], now: datetime) -> list[Notification]:
        return self.ingest.run([as_message(r) for r in batch], now).notifications

    def sweep(self, now: datetime) -> list[Notification]:
        return self.ingest.sweep(now).notifications


def run_engine(parts: Parts, batches: list[list[Reading]]) -> tuple[Engine, MemoryOutbox]:
    outbox = MemoryOutbox()
    engine = Engine(parts, outbox)
    for batch in batches:
        engine.after_store(batch, now=T0 + timedelta(hours=1))
    return engine, outbox


def test_raise_and_clear_are_notified_once(parts: Parts) -> None:
    temps = [4, 9, 9, 9, 9, 9, 9, 9, 4, 4]
    _, outbox = run_engine(parts, [[r] for r in readings(temps)])
    kinds = [(n.kind, n.alarm.rule) for n in outbox.notifications]
    assert kinds == [
        (NotificationKind.RAISED, "Early"),
        (NotificationKind.RAISED, "High5m"),
        (NotificationKind.CLEARED, "Early"),
        (NotificationKind.CLEARED, "High5m"),
    ]
    stored = parts[1].list()
    assert {a.rule: a.state for a in stored} == {
        "Early": AlarmState.CLEARED,
        "High5m": AlarmState.CLEARED,
    }
    high = next(a for a in stored if a.rule == "High5m")
    assert high.started_at == T0 + MINUTE
    assert high.cleared_at == T0 + 8 * MINUTE
    assert high.duration == timedelta(minutes=7)


@pytest.mark.parametrize("seed", [3, 4])
def test_out_of_order_arrival_ends_with_the_same_alarms(parts: Parts, seed: int) -> None:
    temps = [4, 9, 9, 9, 9, 9, 9, 9, 4, 4, 9, 4]
    in_order = readings(temps)
    shuffled = list(in_order)
    random.Random(seed).shuffle(shuffled)
    run_engine(parts, [[r] for r in shuffled])
    got = {(a.rule, a.started_at, a.state, a.cleared_at) for a in parts[1].list()}
    expected_parts: Parts = (MemoryReadingStore(), MemoryAlarmStore(), MemoryDeviceStateStore())
    run_engine(expected_parts, [[r] for r in in_order])
    expected = {(a.rule, a.started_at, a.state, a.cleared_at) for a in expected_parts[1].list()}
    assert got == expected
    assert len(expected) == 2


def test_healthy_readings_cost_no_evaluation(parts: Parts) -> None:
    _, outbox = run_engine(parts, [readings([4, 5, 4, 5])])
    assert outbox.notifications == []
    assert parts[1].list() == []


def test_silence_is_raised_after_the_limit_and_cleared_by_a_reading(parts: Parts) -> None:
    _, alarm_store, _ = parts
    engine, _ = run_engine(parts, [readings([4, 4])])
    last = T0 + MINUTE
    assert engine.sweep(last + timedelta(minutes=2, seconds=59)) == []
    [raised] = engine.sweep(last + timedelta(minutes=3))
    assert (raised.kind, raised.alarm.rule) == (NotificationKind.RAISED, SILENCE_RULE)
    assert engine.sweep(last + timedelta(minutes=4)) == []  # raised once
    assert engine.ingest.sweep(last + timedelta(minutes=5)).silent_devices == 1  # still silent
    back = Reading(
        "dev-1", to_canonical(last + timedelta(minutes=6)), 4.0, 60.0, 0.0, 90.0, fleet_id="f"
    )
    [cleared] = engine.after_store([back], now=last + timedelta(minutes=6))
    assert (cleared.kind, cleared.alarm.state) == (NotificationKind.CLEARED, AlarmState.CLEARED)
    assert alarm_store.list(active=True) == []


def test_unacknowledged_critical_alarms_are_repeated(parts: Parts) -> None:
    _, alarm_store, _ = parts
    engine, _ = run_engine(parts, [readings([4] + [9] * 8)])
    now = T0 + timedelta(hours=1)  # the raise was notified at this wall time
    early = engine.sweep(now + timedelta(minutes=9))
    assert [n for n in early if n.kind is NotificationKind.REMINDER] == []
    assert [n.alarm.rule for n in early] == [SILENCE_RULE]  # the device went quiet meanwhile
    reminders = [
        n for n in engine.sweep(now + timedelta(minutes=10)) if n.kind is NotificationKind.REMINDER
    ]
    assert [n.alarm.rule for n in reminders] == ["High5m"]  # critical only, not "Early"
    current = alarm_store.get(reminders[0].alarm.id)
    assert current is not None
    alarm_store.save([acknowledge(current, "ana", "on it", now)])
    later = engine.sweep(now + timedelta(minutes=40))
    assert [n for n in later if n.kind is NotificationKind.REMINDER] == []


def test_sqlite_outbox_filters_by_channel_severity(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "o.db")
    outbox = SqliteOutbox(db, {"log": Severity.INFO, "pager": Severity.CRITICAL})
    engine = Engine(
        (SqliteReadingStore(db), SqliteAlarmStore(db), SqliteDeviceStateStore(db)), outbox
    )
    batch = readings([4] + [9] * 8, battery=10)
    engine.after_store(batch, now=T0)
    soon = datetime.now(UTC) + timedelta(seconds=1)  # the outbox stamps rows with wall time
    due = outbox.due(soon)
    assert {item.channel for item in due if item.document["rule"] == "High5m"} == {"log", "pager"}
    assert {item.channel for item in due if item.document["rule"] == "Battery"} == {"log"}
    outbox.delivered(due[0].id, T0)
    outbox.failed(due[1].id, "timeout", None)
    assert outbox.pending() == len(due) - 1
    assert due[1].id not in {i.id for i in outbox.due(soon + timedelta(days=365))}


def test_cleared_alarms_expire_on_dynamodb_and_active_ones_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_credentials(monkeypatch)
    with mocked_aws() as aws:
        store = DynamoAlarmStore(aws.dynamodb, aws.alarms)
        cleared = alarm(1, state=AlarmState.CLEARED, cleared_at=T0 + 9 * MINUTE)
        store.save([alarm(0), cleared])

        def expires(alarm_id: str) -> str | None:
            item = aws.dynamodb.get_item(TableName=aws.alarms, Key={"id": {"S": alarm_id}})
            value = item["Item"].get("expires_at")
            return None if value is None else str(value["N"])

        assert expires(alarm(0).id) is None
        ninety = T0 + 9 * MINUTE + timedelta(days=90)
        assert expires(cleared.id) == str(int(ninety.timestamp()))
