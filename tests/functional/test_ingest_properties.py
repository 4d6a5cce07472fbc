"""The ingest step is order- and redelivery-proof: a device's readings shuffled, repeated and
cut into batches end in the same alarms and device state as the same readings processed once
in time order. Runs against the in-memory stores, SQLite and DynamoDB (moto)."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from coldchain.adapters.dynamodb import (
    DynamoAlarmStore,
    DynamoDeviceStateStore,
    DynamoEventStore,
    DynamoReadingStore,
)
from coldchain.adapters.memory import (
    MemoryAlarmStore,
    MemoryDeadLetterStore,
    MemoryDeviceStateStore,
    MemoryEventSink,
    MemoryOutbox,
    MemoryReadingStore,
)
from coldchain.adapters.sqlite import (
    SqliteAlarmStore,
    SqliteDatabase,
    SqliteDeadLetterStore,
    SqliteDeviceStateStore,
    SqliteEventStore,
    SqliteOutbox,
    SqliteReadingStore,
)
from coldchain.core.alarm_profile import default_profile
from coldchain.core.alarms import Alarm
from coldchain.core.device_state import DeviceState
from coldchain.core.ingest import RETRACTED, Ingest
from coldchain.core.messages import Message
from coldchain.core.processing import Processor
from coldchain.core.rules import Severity
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic
from tests.aws import create_stack, fake_credentials
from tests.factories import T0

NOW = T0 + timedelta(days=1)
_names = itertools.count()  # hypothesis reseeds ``random`` for every example: count instead


@dataclass
class Pipeline:
    ingest: Ingest
    alarms: Any
    states: Any
    close: Any = None

    def final(self) -> tuple[set[Alarm], DeviceState | None]:
        alarms = {
            replace(a, last_notified_at=None)
            for a in self.alarms.list(limit=100_000)
            if not a.detail.endswith(RETRACTED)
        }
        state = self.states.get_many(["dev-1"]).get("dev-1")
        return alarms, None if state is None else replace(state, version=0, recent=())


def memory_pipeline(_: Path) -> Pipeline:
    readings, alarms, states = MemoryReadingStore(), MemoryAlarmStore(), MemoryDeviceStateStore()
    processor = Processor(readings, MemoryDeadLetterStore())
    ingest = Ingest(processor, states, alarms, MemoryOutbox(), default_profile(), MemoryEventSink())
    return Pipeline(ingest, alarms, states)


def sqlite_pipeline(folder: Path) -> Pipeline:
    folder.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(folder / f"{next(_names)}.db")
    readings, alarms, states = (
        SqliteReadingStore(db),
        SqliteAlarmStore(db),
        SqliteDeviceStateStore(db),
    )
    processor = Processor(readings, SqliteDeadLetterStore(db))
    outbox = SqliteOutbox(db, {"log": Severity.INFO})
    ingest = Ingest(processor, states, alarms, outbox, default_profile(), SqliteEventStore(db))
    return Pipeline(ingest, alarms, states, db.close)


def dynamodb_pipeline(_: Path) -> Pipeline:
    aws = create_stack(prefix=f"p{next(_names)}")
    readings = DynamoReadingStore(aws.dynamodb, aws.telemetry, aws.devices, record_latest=False)
    alarms = DynamoAlarmStore(aws.dynamodb, aws.alarms)
    states = DynamoDeviceStateStore(aws.dynamodb, aws.devices)
    processor = Processor(readings, MemoryDeadLetterStore())
    ingest = Ingest(
        processor,
        states,
        alarms,
        MemoryOutbox(),
        default_profile(),
        DynamoEventStore(aws.dynamodb, aws.events),
    )
    return Pipeline(ingest, alarms, states)


PIPELINES = {"memory": memory_pipeline, "sqlite": sqlite_pipeline, "dynamodb": dynamodb_pipeline}


@pytest.fixture(params=sorted(PIPELINES))
def make(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    made: list[Pipeline] = []
    fake_credentials(monkeypatch)

    def build() -> Pipeline:
        pipeline = PIPELINES[request.param](tmp_path)
        made.append(pipeline)
        return pipeline

    with mock_aws():
        yield build
    for pipeline in made:
        if pipeline.close:
            pipeline.close()


def message(step: int, gap_s: int, temperature: float, battery: float, shock: float) -> Message:
    at = T0 + timedelta(seconds=gap_s)
    body = {
        "device_id": "dev-1",
        "timestamp": to_canonical(at),
        "temperature_c": temperature,
        "humidity_pct": 60.0,
        "shock_g": shock,
        "battery_pct": battery,
        "fleet_id": "fleet-a",
        "seq": step,
    }
    return Message(telemetry_topic("dev-1"), json.dumps(body).encode(), at + timedelta(seconds=1))


@st.composite
def histories(draw: st.DrawFn) -> list[Message]:
    count = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.integers(20, 600), min_size=count, max_size=count))
    temperatures = draw(
        st.lists(
            st.sampled_from([-1.0, 1.5, 3.0, 5.0, 7.9, 8.0, 8.5, 11.0]),
            min_size=count,
            max_size=count,
        )
    )
    batteries = draw(st.lists(st.sampled_from([90.0, 14.0]), min_size=count, max_size=count))
    shocks = draw(st.lists(st.sampled_from([0.0, 0.0, 3.0]), min_size=count, max_size=count))
    elapsed = 0
    out = []
    for index in range(count):
        elapsed += gaps[index]
        out.append(message(index, elapsed, temperatures[index], batteries[index], shocks[index]))
    return out


# ``make`` builds new stores on every call, so sharing the fixture across examples is safe.
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories(), seed=st.integers(0, 2**32 - 1))
def test_shuffled_repeated_and_batched_equals_once_in_order(
    make: Any, history: list[Message], seed: int
) -> None:
    rng = random.Random(seed)
    reference = make()
    for one in history:
        reference.ingest.run([one], NOW)
    delivered = history + [rng.choice(history) for _ in range(rng.randint(0, len(history)))]
    rng.shuffle(delivered)
    candidate = make()
    position = 0
    while position < len(delivered):
        size = rng.randint(1, 6)
        candidate.ingest.run(delivered[position : position + size], NOW)
        position += size
    for redelivery in rng.sample(history, k=min(3, len(history))):
        candidate.ingest.run([redelivery], NOW)
    assert candidate.final() == reference.final()
