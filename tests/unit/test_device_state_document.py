"""The state document the stores keep: it round-trips exactly, stays small, and a document
written by the first format is still read."""

from __future__ import annotations

import json
from datetime import timedelta

from coldchain.core.alarm_profile import default_profile
from coldchain.core.device_state import DeviceState, advance, state_document, state_from_document
from coldchain.core.reading import Reading
from coldchain.core.timestamps import to_canonical
from tests.factories import T0


def flapping(count: int) -> DeviceState:
    """A device alternating in and out of band: the cumulative rule keeps one interval each."""
    state, profile = DeviceState("dev-1"), default_profile()
    for n in range(count):
        at = T0 + timedelta(minutes=2 * n, milliseconds=7 * n)
        reading = Reading("dev-1", to_canonical(at), 9.5 if n % 2 else 4.0, 60.0, 0.0, 90.0)
        state, _ = advance(state, reading, profile, at)
    return state


def round_trip(state: DeviceState) -> DeviceState:
    text = json.dumps(state_document(state), separators=(",", ":"))
    return state_from_document(json.loads(text), state.version)


def test_the_document_round_trips_exactly() -> None:
    for count in (1, 2, 7, 40):
        state = flapping(count)
        assert round_trip(state) == state


def test_a_device_with_many_separate_excursions_stays_within_a_bounded_size() -> None:
    size = len(json.dumps(state_document(flapping(400)), separators=(",", ":")))
    assert size < 2 * 1024, size  # 64 intervals at most, each a few bytes


def test_a_format_1_document_is_still_read() -> None:
    document = {
        "format": 1,
        "device_id": "dev-1",
        "last": None,
        "silence": None,
        "recent": ["2024-01-15T09:00:00.000Z"],
        "rules": {
            "TemperatureCumulative60m": {
                "run": {
                    "started_at": "2024-01-15T09:00:00.000Z",
                    "count": 1,
                    "elapsed_s": 120.0,
                    "peak": 9.5,
                    "raised_at": None,
                    "fleet_id": "f",
                },
                "intervals": [["2024-01-15T09:00:00.000Z", "2024-01-15T09:02:00.000Z", 9.5]],
            }
        },
    }
    state = state_from_document(document, 3)
    rule = state.rule("TemperatureCumulative60m")
    assert rule.run is not None
    assert rule.run.elapsed == timedelta(minutes=2)
    assert rule.intervals[0].end - rule.intervals[0].start == timedelta(minutes=2)
    assert state.recent == ("2024-01-15T09:00:00.000Z",)
    assert state.version == 3
    assert round_trip(state) == state
