"""What one reading costs in DynamoDB requests on the Lambda path (one reading per
invocation), per case; moto counts the calls. The hot path (in order, in band or not) reads
no history: one state read and one state write per device, whatever its alarms."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

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
from coldchain.core.ingest import Ingest
from coldchain.core.processing import Processor
from tests.aws import AwsStack, create_stack, fake_credentials
from tests.factories import T0, message, payload

NOW = T0 + timedelta(days=1)
READS = {"get_item", "batch_get_item", "query", "scan"}


class Counting:
    """A boto3 client that counts its calls by (operation, table)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[tuple[str, str]] = Counter()
        self.keys_read = 0  # items asked for by batch_get_item

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            table = kwargs.get("TableName") or next(iter(kwargs.get("RequestItems", {"-": 0})))
            self.calls[(name, str(table).rsplit("-", 1)[-1])] += 1
            if name == "batch_get_item":
                self.keys_read += sum(len(t["Keys"]) for t in kwargs["RequestItems"].values())
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    fake_credentials(monkeypatch)
    with mock_aws():
        yield create_stack()


def item_kib(stack: AwsStack, table: str, key: dict[str, Any]) -> float:
    """An item's size as DynamoDB bills it, roughly: attribute names and values, in KiB."""
    item = stack.dynamodb.get_item(TableName=table, Key=key).get("Item", {})

    def size(value: Any) -> int:
        kind, inner = next(iter(value.items()))
        if kind == "M":
            return sum(len(k) + size(v) for k, v in inner.items())
        if kind == "L":
            return sum(size(v) for v in inner)
        return len(str(inner))

    return sum(len(k) + size(v) for k, v in item.items()) / 1024


def counted_ingest(stack: AwsStack) -> tuple[Counting, Ingest]:
    """The Lambda's ingest step on moto, through a client that counts its calls."""
    client = Counting(stack.dynamodb)
    readings = DynamoReadingStore(client, stack.telemetry, stack.devices, record_latest=False)  # type: ignore[arg-type]
    ingest = Ingest(
        Processor(readings, MemoryDeadLetterStore()),
        DynamoDeviceStateStore(client, stack.devices),  # type: ignore[arg-type]
        DynamoAlarmStore(client, stack.alarms),  # type: ignore[arg-type]
        MemoryOutbox(),
        default_profile(),
        DynamoEventStore(client, stack.events),  # type: ignore[arg-type]
    )
    return client, ingest


def test_each_reading_costs_one_state_read_and_write_and_no_history(stack: AwsStack) -> None:
    client, ingest = counted_ingest(stack)

    def one(minute: int, **fields: Any) -> Counter[tuple[str, str]]:
        client.calls.clear()
        body = payload(at=T0 + timedelta(minutes=minute), **fields)
        ingest.run([message(body, received_at=NOW)], NOW)
        return Counter(client.calls)

    first = one(0)
    healthy = one(2)
    raising = one(4, temperature_c=9.5)  # out of band, not yet an alarm
    raised = one(6, temperature_c=10.0)  # the second: TemperatureExcursion raised
    held = one(8, temperature_c=10.5)  # a device with an open alarm
    duplicate = one(8, temperature_c=10.5)
    late = one(7, temperature_c=10.2)
    cases = {
        "first reading of a device": first,
        "healthy, in order": healthy,
        "out of band, in order": raising,
        "out of band, raises an alarm": raised,
        "device with an open alarm": held,
        "duplicate": duplicate,
        "late": late,
    }
    for name in ("healthy, in order", "out of band, in order", "device with an open alarm"):
        calls = cases[name]
        assert not {op for op, _ in calls} & {"query", "scan"}, (name, calls)
        assert calls[("batch_get_item", "devices")] == 1, (name, calls)
        assert calls[("put_item", "telemetry")] == 1, (name, calls)
    assert {op for op, _ in duplicate} & {"query", "scan"} == set()
    assert {op for op, _ in late} & {"query"}  # the bounded repair reads its window
    telemetry_kib = item_kib(
        stack,
        stack.telemetry,
        {"device_id": {"S": "dev-1"}, "timestamp": {"S": "2024-01-15T09:08:00.000Z"}},
    )
    device_kib = item_kib(stack, stack.devices, {"device_id": {"S": "dev-1"}})
    print(f"\ntelemetry item {telemetry_kib:.2f} KiB, device item {device_kib:.2f} KiB")
    for name, calls in cases.items():
        writes = sum(n for (op, _), n in calls.items() if op not in READS)
        reads = sum(n for (op, _), n in calls.items() if op in READS)
        print(f"| {name} | {reads} | {writes} | {dict(sorted(calls.items()))} |")
    # The Lambda target for an in-order reading, in band or out: 2 WRU and 1 RRU. Each write
    # is billed per KiB of the whole item, so the devices item (latest values and state in one
    # update) must stay under 1 KiB; a strongly consistent read of it is 1 RRU up to 4 KiB.
    assert telemetry_kib < 1
    assert device_kib < 1
    for name in ("healthy, in order", "out of band, in order", "device with an open alarm"):
        calls = cases[name]
        writes = sum(n for (op, _), n in calls.items() if op not in READS)
        reads = sum(n for (op, _), n in calls.items() if op in READS)
        assert (writes, reads) == (2, 1), (name, calls)
        assert writes * math.ceil(max(telemetry_kib, device_kib)) <= 2


def test_a_kinesis_batch_reads_and_writes_each_device_once(stack: AwsStack) -> None:
    """Kinesis mode: a batch of 100 readings from 10 devices, every other one out of band.
    Target: at most 1.3 WRU and 0.3 RRU per reading."""
    client, ingest = counted_ingest(stack)
    devices = [f"dev-{n}" for n in range(10)]

    def batch(first_minute: int) -> list[Any]:
        return [
            message(
                payload(
                    device,
                    at=T0 + timedelta(minutes=first_minute + 2 * n),
                    temperature_c=9.5 if n % 2 else 4.0,
                ),
                received_at=NOW,
            )
            for n in range(10)
            for device in devices
        ]

    ingest.run(batch(0), NOW)  # first sight of each device: the repair path, not counted
    client.calls.clear()
    client.keys_read = 0
    done = ingest.run(batch(20), NOW)
    assert len(done.results) == 100
    assert not {op for op, _ in client.calls} & {"query", "scan"}, client.calls
    device_kib = max(item_kib(stack, stack.devices, {"device_id": {"S": d}}) for d in devices)
    telemetry_kib = item_kib(
        stack,
        stack.telemetry,
        {"device_id": {"S": "dev-0"}, "timestamp": {"S": "2024-01-15T09:20:00.000Z"}},
    )
    wru = client.calls[("put_item", "telemetry")] * math.ceil(telemetry_kib) + client.calls[
        ("update_item", "devices")
    ] * math.ceil(device_kib)
    other_writes = sum(
        n
        for (op, table), n in client.calls.items()
        if op not in READS and table not in ("telemetry", "devices")
    )
    rru = client.keys_read  # strongly consistent, each item under 4 KiB: 1 RRU a key
    total = wru + other_writes
    print(f"\nKinesis batch of 100: {total} WRU, {rru} RRU, device item {device_kib:.2f} KiB")
    assert client.calls[("update_item", "devices")] == 10
    assert (wru + other_writes) / 100 <= 1.3
    assert rru / 100 <= 0.3
