"""Validation and storage, and the ingest step's alarms and events, on the in-memory fakes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from coldchain.adapters.memory import (
    MemoryAlarmStore,
    MemoryDeadLetterStore,
    MemoryDeviceStateStore,
    MemoryEventSink,
    MemoryOutbox,
    MemoryReadingStore,
)
from coldchain.core.alarm_profile import default_profile
from coldchain.core.events import EventKind
from coldchain.core.ingest import Ingest
from coldchain.core.messages import DeadLetterKind, Message, Outcome
from coldchain.core.processing import Processor
from coldchain.core.timestamps import parse_iso
from coldchain.core.topics import telemetry_topic
from tests.factories import T0, message, payload, series

NOW = T0 + timedelta(days=1)


@pytest.fixture
def parts() -> tuple[Processor, MemoryReadingStore, MemoryDeadLetterStore, MemoryEventSink]:
    readings, letters, events = MemoryReadingStore(), MemoryDeadLetterStore(), MemoryEventSink()
    return Processor(readings, letters), readings, letters, events


Parts = tuple[Processor, MemoryReadingStore, MemoryDeadLetterStore, MemoryEventSink]


def test_valid_reading_is_stored(parts: Parts) -> None:
    processor, readings, letters, _ = parts
    result = processor.process(message(payload()))
    assert result.outcome is Outcome.STORED
    assert [r.timestamp for r in readings.latest()] == ["2024-01-15T09:00:00.000Z"]
    assert letters.count() == 0


def test_same_reading_twice_is_a_duplicate_not_a_dead_letter(parts: Parts) -> None:
    processor, _, letters, _ = parts
    first = processor.process(message(payload()))
    second = processor.process(message(payload()))
    assert (first.outcome, second.outcome) == (Outcome.STORED, Outcome.DUPLICATE)
    assert letters.count() == 0


def test_same_key_other_content_is_a_conflict_kept_as_dead_letter(parts: Parts) -> None:
    processor, readings, letters, _ = parts
    processor.process(message(payload(temperature_c=4.0)))
    result = processor.process(message(payload(temperature_c=5.0)))
    assert result.outcome is Outcome.CONFLICT
    assert "temperature_c" in (result.reason or "")
    [letter] = letters.list()
    assert letter.letter.kind is DeadLetterKind.CONFLICT
    assert json.loads(letter.letter.payload)["temperature_c"] == 5.0
    assert readings.latest()[0].temperature_c == 4.0


def test_a_device_cannot_speak_for_another(parts: Parts) -> None:
    processor, readings, letters, _ = parts
    result = processor.process(message(payload(device_id="dev-b"), topic_device="dev-a"))
    assert result.outcome is Outcome.REJECTED
    assert "does not match topic device" in (result.reason or "")
    assert readings.latest() == []
    assert letters.list()[0].letter.topic == telemetry_topic("dev-a")


def test_reading_from_the_future_is_a_clock_fault(parts: Parts) -> None:
    processor, _, _, _ = parts
    ahead = message(payload(at=T0 + timedelta(minutes=6)), received_at=T0)
    just_inside = message(payload(at=T0 + timedelta(minutes=4, seconds=59)), received_at=T0)
    assert processor.process(ahead).outcome is Outcome.REJECTED
    assert "clock fault" in (processor.process(ahead).reason or "")
    assert processor.process(just_inside).outcome is Outcome.STORED


def test_a_reading_older_than_the_maximum_age_is_dead_lettered_as_too_old(parts: Parts) -> None:
    processor, readings, letters, events = parts
    from_2001 = message(payload(at=T0.replace(year=2001), battery_pct=3.0), received_at=T0)
    old = message(payload(at=T0 - timedelta(days=30, seconds=1)), received_at=T0)
    just_inside = message(payload(at=T0 - timedelta(days=29, hours=23)), received_at=T0)
    assert processor.process(from_2001).outcome is Outcome.REJECTED
    assert "too old" in (processor.process(old).reason or "")
    assert processor.process(just_inside).outcome is Outcome.STORED
    assert letters.count() == 2
    assert [r.timestamp[:4] for r in readings.latest()] != ["2001"]
    assert events.list() == []  # no alarm dated 2001


@pytest.mark.parametrize("firmware", ["2.1\x1b[31m", "a\nb", "\u202e1.0", "x" * 65])
def test_firmware_strings_are_printable_ascii_or_rejected(parts: Parts, firmware: str) -> None:
    processor, _, _, _ = parts
    text = firmware.encode().decode("unicode_escape")
    assert processor.process(message(payload(firmware_version=text))).outcome is Outcome.REJECTED


def test_not_a_telemetry_topic_is_rejected(parts: Parts) -> None:
    processor, _, letters, _ = parts
    result = processor.process(Message("dt/other/dev-1/x", json.dumps(payload()).encode(), T0))
    assert result.outcome is Outcome.REJECTED
    assert letters.count() == 1


def test_rejected_payload_is_kept_byte_for_byte_with_every_reason(parts: Parts) -> None:
    processor, _, letters, _ = parts
    raw = b'{"device_id": "dev-1", "temperature_c": "3.2"}'
    processor.process(message(raw))
    [stored] = letters.list()
    assert stored.letter.payload == raw
    assert "temperature_c" in stored.letter.reason
    assert "timestamp" in stored.letter.reason


def test_the_same_bad_message_twice_is_one_dead_letter_with_two_attempts(parts: Parts) -> None:
    processor, _, letters, _ = parts
    processor.process(message(b"garbage"))
    processor.process(message(b"garbage"))
    [stored] = letters.list()
    assert stored.attempts == 2


def test_batch_results_come_back_in_order(parts: Parts) -> None:
    processor, _, _, _ = parts
    batch = [
        message(payload()),
        message(b"bad"),
        message(payload()),
        message(payload(temperature_c=9)),
    ]
    outcomes = [r.outcome for r in processor.process_batch(batch)]
    assert outcomes == [Outcome.STORED, Outcome.REJECTED, Outcome.DUPLICATE, Outcome.CONFLICT]


def ingest_parts() -> tuple[Ingest, MemoryEventSink, MemoryAlarmStore]:
    events, alarms = MemoryEventSink(), MemoryAlarmStore()
    processor = Processor(MemoryReadingStore(), MemoryDeadLetterStore())
    ingest = Ingest(
        processor, MemoryDeviceStateStore(), alarms, MemoryOutbox(), default_profile(), events
    )
    return ingest, events, alarms


def test_an_excursion_is_an_alarm_and_its_event() -> None:
    ingest, events, alarms = ingest_parts()
    done = ingest.run(series("dev-1", [4, 9, 9.5, 9.8]), NOW)
    assert [e.kind for e in done.events] == [EventKind.TEMPERATURE_HIGH]
    assert [e.kind for e in events.events] == [EventKind.TEMPERATURE_HIGH]
    assert [a.rule for a in alarms.list()] == ["TemperatureExcursion"]


def test_a_late_reading_is_judged_where_it_belongs_in_time() -> None:
    ingest, events, alarms = ingest_parts()
    first, second, third, fourth = series("dev-1", [4, 9, 9, 4])
    ingest.run([first, third, fourth], NOW)
    assert events.events == []
    done = ingest.run([second], NOW)
    # The run completes at the third reading, as it would have in order.
    [alarm] = alarms.list()
    assert (alarm.started_at, alarm.raised_at) == (second_at(second), second_at(third))
    assert done.repairs == 1


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [0, 2, 4, 1, 3, 5], [0, 2, 1, 3, 5, 4]])
def test_arrival_order_does_not_change_the_alarms(order: list[int]) -> None:
    ingest, _, alarms = ingest_parts()
    stream = series("dev-1", [4, 9, 9, 9, 4, 1], battery_pct=14)
    for index in order:
        ingest.run([stream[index]], NOW)
    assert sorted((a.rule, a.started_at, a.cleared_at) for a in alarms.list()) == [
        ("BatteryLow", T0, None),
        ("TemperatureExcursion", T0 + timedelta(seconds=10), T0 + timedelta(seconds=40)),
    ]


def test_duplicates_raise_nothing_twice() -> None:
    ingest, events, _ = ingest_parts()
    batch = series("dev-1", [9, 9])
    ingest.run(batch, NOW)
    ingest.run(batch, NOW)
    assert len(events.events) == 1


def second_at(one: Message) -> datetime:
    return parse_iso(json.loads(one.payload)["timestamp"])


def test_importing_the_core_imports_no_sdk() -> None:
    code = (
        "import sys, coldchain.core.processing, coldchain.core.ports;"
        "bad = [m for m in ('boto3', 'botocore', 'paho', 'sqlite3', 'click') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
