"""Two handlers on one device at once (DynamoDB on moto): the loser of a state write reloads
and applies again, and the end is the sequential result."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from moto import mock_aws

from coldchain.adapters.dynamodb import (
    DynamoAlarmStore,
    DynamoDeviceStateStore,
    DynamoEventStore,
    DynamoReadingStore,
)
from coldchain.adapters.memory import MemoryDeadLetterStore, MemoryOutbox
from coldchain.core.alarm_profile import default_profile
from coldchain.core.device_state import DeviceState
from coldchain.core.ingest import Ingest
from coldchain.core.messages import Message
from coldchain.core.processing import Processor
from tests.aws import AwsStack, create_stack, fake_credentials
from tests.factories import T0, message, payload

NOW = T0 + timedelta(days=1)


class RacingStates:
    """A state store that lets another handler run between this one's read and its write."""

    def __init__(self, inner: DynamoDeviceStateStore) -> None:
        self.inner = inner
        self.meanwhile: Callable[[], None] | None = None
        self.conflicts = 0

    def get_many(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        found = self.inner.get_many(device_ids)
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        return found

    def put(self, state: DeviceState, expected_version: int) -> None:
        try:
            self.inner.put(state, expected_version)
        except Exception:
            self.conflicts += 1
            raise

    def all(self) -> Iterator[DeviceState]:
        return self.inner.all()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], AwsStack]]:
    fake_credentials(monkeypatch)
    with mock_aws():
        yield create_stack


def handler(stack: AwsStack, states: object) -> Ingest:
    readings = DynamoReadingStore(
        stack.dynamodb, stack.telemetry, stack.devices, record_latest=False
    )
    processor = Processor(readings, MemoryDeadLetterStore())
    alarms = DynamoAlarmStore(stack.dynamodb, stack.alarms)
    events = DynamoEventStore(stack.dynamodb, stack.events)
    return Ingest(processor, states, alarms, MemoryOutbox(), default_profile(), events)  # type: ignore[arg-type]


def readings() -> list[Message]:
    temperatures = [5.0, 9.0, 9.5, 10.0, 4.0, 1.0, 0.5, 5.0, 12.0, 12.0, 3.0, 5.0]
    return [
        message(payload(at=T0 + timedelta(minutes=3 * n), temperature_c=t, seq=n), received_at=NOW)
        for n, t in enumerate(temperatures)
    ]


def final(stack: AwsStack) -> tuple[set[object], DeviceState]:
    alarms = DynamoAlarmStore(stack.dynamodb, stack.alarms).list(limit=1000)
    [state] = DynamoDeviceStateStore(stack.dynamodb, stack.devices).get_many(["dev-1"]).values()
    return {replace(a, last_notified_at=None) for a in alarms}, replace(state, version=0)


@pytest.mark.parametrize("seed", range(4))
def test_interleaved_handlers_end_in_the_sequential_result(
    aws: Callable[[str], AwsStack], seed: int
) -> None:
    sequential = aws("seq")
    one = handler(sequential, DynamoDeviceStateStore(sequential.dynamodb, sequential.devices))
    for each in readings():
        one.run([each], NOW)

    shared = aws("par")
    racing = RacingStates(DynamoDeviceStateStore(shared.dynamodb, shared.devices))
    first = handler(shared, racing)
    second = handler(shared, DynamoDeviceStateStore(shared.dynamodb, shared.devices))
    rng = random.Random(seed)
    pending = readings()
    rng.shuffle(pending)
    while pending:
        mine = pending.pop()
        if pending and rng.random() < 0.7:
            theirs = pending.pop()

            def meanwhile(other: Message = theirs) -> None:
                second.run_retrying([other], NOW)

            racing.meanwhile = meanwhile
        first.run_retrying([mine], NOW)
    assert racing.conflicts > 0
    assert final(shared) == final(sequential)
