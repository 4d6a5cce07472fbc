"""Batched uploads: up to 100 readings in one message, each validated and stored on its own;
a bad one dead-lettered with its index while the rest are stored."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from coldchain.adapters.sqlite import SqliteDatabase, SqliteDeadLetterStore, SqliteReadingStore
from coldchain.apps.local_ingest import local_ingest
from coldchain.core.alarm_profile import default_profile
from coldchain.core.batches import MAX_READINGS, expand
from coldchain.core.messages import Message
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic
from tests.factories import T0

BAD: dict[int, dict[str, Any]] = {
    17: {"temperature_c": "cold"},
    42: {"battery_pct": None},
    99: {"humidity_pct": 140},
}


def batch(device: str = "dev-1", count: int = 100) -> dict[str, Any]:
    """A device's batch with three invalid readings (at 17, 42 and 99)."""
    readings = []
    for n in range(count):
        reading = {
            "timestamp": to_canonical(T0 + timedelta(seconds=10 * n)),
            "temperature_c": 4.5,
            "humidity_pct": 60.0,
            "shock_g": 0.0,
            "battery_pct": 80.0,
            "seq": n,
        }
        for name, value in BAD.get(n, {}).items():
            if value is None:
                reading.pop(name)
            else:
                reading[name] = value
        readings.append(reading)
    return {"device_id": device, "readings": readings}


def test_97_stored_and_3_dead_lettered_with_their_index(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "b.db")
    ingest = local_ingest(db, default_profile())
    raw = json.dumps(batch()).encode()
    arrival = T0 + timedelta(hours=1)
    with db.transaction():
        done = ingest.run([Message(telemetry_topic("dev-1"), raw, arrival)], arrival)
    outcomes = [r.outcome.value for r in done.results]
    assert outcomes.count("stored") == 97
    assert outcomes.count("rejected") == 3
    assert len(list(SqliteReadingStore(db).between("dev-1", "2000", "9999"))) == 97
    reasons = sorted(s.letter.reason for s in SqliteDeadLetterStore(db).list(limit=10))
    assert [r.split(":", 1)[0] for r in reasons] == ["readings[17]", "readings[42]", "readings[99]"]
    assert any("temperature_c" in r for r in reasons)
    assert any("battery_pct: is required" in r for r in reasons)
    db.close()


def test_a_batch_is_refused_whole_when_too_large_and_single_readings_pass_untouched() -> None:
    too_many = batch(count=MAX_READINGS + 1)
    [part] = expand(Message(telemetry_topic("dev-1"), json.dumps(too_many).encode(), T0))
    assert part.refused is not None
    assert "at most 100" in part.refused
    single = Message(telemetry_topic("dev-1"), b'{"device_id": "dev-1"}', T0)
    assert [p.message for p in expand(single)] == [single]
    empty = Message(telemetry_topic("dev-1"), b'{"device_id": "dev-1", "readings": []}', T0)
    [refused] = expand(empty)
    assert refused.refused == "readings: must be a non-empty list of readings"
