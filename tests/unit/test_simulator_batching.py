"""The simulator's batch payloads: what core/batches.py expands, within its limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from coldchain.apps.simulator.batching import encode_batch, encode_reading
from coldchain.core.batches import MAX_BYTES, MAX_READINGS, expand
from coldchain.core.device_model import DeviceModel
from coldchain.core.messages import Message
from coldchain.core.reading import Reading, decode_reading
from coldchain.core.topics import telemetry_topic
from tests.factories import T0


def readings(count: int, device_id: str = "dev-1") -> list[Reading]:
    model = DeviceModel(device_id, seed=3, gps=True, fleet_id="fleet-a")
    return [model.sample(T0 + timedelta(seconds=10 * n)) for n in range(count)]


def test_one_reading_per_message_is_the_original_payload() -> None:
    reading = readings(1)[0]
    assert json.loads(encode_reading(reading)) == reading.to_wire()


def test_a_batch_expands_to_the_same_readings_in_order() -> None:
    sent = readings(25)
    taken, payload = encode_batch("dev-1", sent, 10)
    assert taken == 10
    document = json.loads(payload)
    assert document["device_id"] == "dev-1"
    assert all("device_id" not in element for element in document["readings"])  # implied
    parts = expand(Message(telemetry_topic("dev-1"), payload, T0 + timedelta(hours=1)))
    assert [part.refused for part in parts] == [None] * 10
    decoded = [decode_reading(part.message.payload).reading for part in parts]
    assert decoded == sent[:10]


def test_fewer_than_asked_when_fewer_are_buffered() -> None:
    taken, payload = encode_batch("dev-1", readings(3), 10)
    assert taken == 3
    assert len(json.loads(payload)["readings"]) == 3


def test_never_more_than_the_format_allows() -> None:
    taken, payload = encode_batch("dev-1", readings(MAX_READINGS + 20), 10_000)
    assert taken == MAX_READINGS
    assert len(payload) <= MAX_BYTES


def test_a_batch_stops_below_the_byte_limit() -> None:
    # Readings of about 2 KB each: 100 of them would be about 200 KB.
    big = [replace(reading, firmware_version="x" * 2000) for reading in readings(MAX_READINGS)]
    taken, payload = encode_batch("dev-1", big, MAX_READINGS)
    assert 0 < taken < MAX_READINGS
    assert len(payload) <= MAX_BYTES
    wire = big[taken].to_wire()
    del wire["device_id"]
    next_part = json.dumps(wire, separators=(",", ":")).encode()
    assert len(payload) + 1 + len(next_part) > MAX_BYTES  # one more would not fit
    parts = expand(Message(telemetry_topic("dev-1"), payload, T0))
    assert [part.refused for part in parts] == [None] * taken


def test_an_empty_batch_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="at least one reading"):
        encode_batch("dev-1", [], 10)
