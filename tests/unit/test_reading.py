"""The wire format: strict validation, canonical timestamps, forgiving GPS."""

from __future__ import annotations

import json

import pytest

from coldchain.core.errors import ValidationError
from coldchain.core.reading import MAX_PAYLOAD_BYTES, decode_reading
from tests.factories import payload


def decode(body: dict[str, object]) -> object:
    return decode_reading(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("2024-01-15T09:23:41Z", "2024-01-15T09:23:41.000Z"),
        ("2024-01-15T09:23:41.25Z", "2024-01-15T09:23:41.250Z"),
        ("2024-01-15T10:23:41.123456+01:00", "2024-01-15T09:23:41.123Z"),
        (1705310621, "2024-01-15T09:23:41.000Z"),
    ],
)
def test_timestamps_become_canonical_utc_with_milliseconds(sent: object, canonical: str) -> None:
    decoded = decode_reading(json.dumps(payload(timestamp=sent)).encode())
    assert decoded.reading.timestamp == canonical


def test_canonical_string_order_is_time_order() -> None:
    sent = ["2024-01-15T09:23:41.5Z", "2024-01-15T09:23:41Z", "2024-01-15T10:23:40+01:00"]
    stamps = [decode_reading(json.dumps(payload(timestamp=t)).encode()).reading for t in sent]
    by_string = sorted(stamps, key=lambda r: r.timestamp)
    by_time = sorted(stamps, key=lambda r: r.at)
    assert by_string == by_time
    assert by_string[0].timestamp == "2024-01-15T09:23:40.000Z"


def test_number_sent_as_string_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        decode(payload(temperature_c="3.2"))
    assert [issue.field for issue in caught.value.issues] == ["temperature_c"]
    assert "number" in caught.value.issues[0].reason


def test_every_failing_field_is_reported() -> None:
    body = payload(temperature_c=90, humidity_pct=-1, battery_pct=None, timestamp="yesterday")
    with pytest.raises(ValidationError) as caught:
        decode(body)
    fields = {issue.field for issue in caught.value.issues}
    assert fields == {"temperature_c", "humidity_pct", "battery_pct", "timestamp"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"device_id": "x", "temperature_c": NaN}', "finite"),
    ],
)
def test_malformed_payloads_get_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        decode_reading(raw)


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError, match="zone"):
        decode(payload(timestamp="2024-01-15T09:23:41"))


def test_boolean_is_not_a_number() -> None:
    with pytest.raises(ValidationError, match="shock_g"):
        decode(payload(shock_g=True))


def test_oversized_payload_is_rejected_before_parsing() -> None:
    body = payload(firmware_version="x" * (MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(ValidationError, match="larger than"):
        decode(body)


def test_zero_zero_fix_is_dropped_with_a_warning_not_rejected() -> None:
    decoded = decode_reading(json.dumps(payload(latitude=0, longitude=0)).encode())
    assert decoded.reading.latitude is None
    assert decoded.reading.longitude is None
    assert decoded.reading.temperature_c == 4.0
    assert "no GPS fix" in decoded.warnings[0]


def test_real_fix_is_kept() -> None:
    decoded = decode_reading(json.dumps(payload(latitude=52.52, longitude=13.4)).encode())
    assert (decoded.reading.latitude, decoded.reading.longitude) == (52.52, 13.4)
    assert decoded.warnings == ()


def test_integers_are_stored_as_floats_and_round_trip_to_wire() -> None:
    decoded = decode_reading(json.dumps(payload(temperature_c=4, seq=7)).encode())
    wire = decoded.reading.to_wire()
    assert wire["temperature_c"] == 4.0
    assert isinstance(wire["temperature_c"], float)
    assert wire["seq"] == 7
    assert decode_reading(json.dumps(wire).encode()).reading == decoded.reading


def test_original_reference_payload_is_accepted() -> None:
    original = {
        "device_id": "cold-chain-sim-01",
        "timestamp": "2024-01-15T09:23:41Z",
        "temperature_c": 3.2,
        "humidity_pct": 68,
        "shock_g": 0.02,
        "battery_pct": 94,
        "latitude": 47.6062,
        "longitude": -122.3321,
        "firmware_version": "1.0.0",
    }
    reading = decode_reading(json.dumps(original).encode()).reading
    assert reading.device_id == "cold-chain-sim-01"
    assert reading.seq is None
    assert reading.fleet_id is None
    assert reading.latitude == 47.6062
