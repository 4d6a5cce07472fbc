"""The Lambda handlers against moto: the same records as the local worker, dead letters in SQS."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from coldchain.adapters import iot_rule_output
from coldchain.adapters.dynamodb import DynamoAlarmStore, DynamoEventStore, DynamoReadingStore
from coldchain.adapters.sqlite import (
    SqliteDatabase,
    SqliteEventStore,
    SqliteReadingStore,
)
from coldchain.apps import lambda_handler
from coldchain.apps.local_ingest import local_ingest
from coldchain.config import (
    ENV_ALARM_TOPIC_ARN,
    ENV_ALARMS_TABLE,
    ENV_DEVICES_TABLE,
    ENV_DLQ_URL,
    ENV_EVENTS_TABLE,
    ENV_TELEMETRY_TABLE,
)
from coldchain.core.alarm_profile import default_profile
from coldchain.core.messages import Message
from coldchain.core.timestamps import parse_iso, to_canonical
from coldchain.core.topics import telemetry_topic
from tests.aws import AwsStack, create_stack, mocked_aws
from tests.factories import T0
from tests.functional.test_batches import batch

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class FakeContext:
    function_name: str = "coldchain-processor"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:coldchain-processor"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mocked_aws() as stack:
        monkeypatch.setenv(ENV_TELEMETRY_TABLE, stack.telemetry)
        monkeypatch.setenv(ENV_DEVICES_TABLE, stack.devices)
        monkeypatch.setenv(ENV_EVENTS_TABLE, stack.events)
        monkeypatch.setenv(ENV_DLQ_URL, stack.dlq_url)
        monkeypatch.setenv(ENV_ALARMS_TABLE, stack.alarms)
        monkeypatch.setenv(ENV_ALARM_TOPIC_ARN, stack.topic_arn)
        lambda_handler._wiring.cache_clear()
        yield stack
        lambda_handler._wiring.cache_clear()


def trip() -> list[dict[str, Any]]:
    """Readings of two devices with an excursion, a low battery, a shock, out of order."""
    out = []
    for device, temps in (("dev-1", [4, 5, 9, 9.5, 10, 6, 4]), ("dev-2", [3, 3, 1, 0.5, 3, 3, 3])):
        for seq, temp in enumerate(temps):
            at = NOW - timedelta(minutes=10) + timedelta(seconds=10 * seq)
            out.append(
                {
                    "device_id": device,
                    "timestamp": to_canonical(at),
                    "temperature_c": temp,
                    "humidity_pct": 60,
                    "shock_g": 2.5 if seq == 3 else 0.01,
                    "battery_pct": 20 - seq,
                    "fleet_id": "fleet-a",
                    "seq": seq,
                    "latitude": 52.5,
                    "longitude": 13.4,
                }
            )
    out.insert(3, out.pop(5))  # a late reading
    out.append(dict(out[0]))  # a redelivery
    return out


def rule_output(body: dict[str, Any] | bytes, topic_device: str | None = None) -> dict[str, Any]:
    """What the IoT rule's SELECT hands the function: the exact bytes, base64, and the topic."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    device = topic_device or (body.get("device_id", "dev-1") if isinstance(body, dict) else "dev-1")
    return {
        iot_rule_output.PAYLOAD_FIELD: base64.b64encode(raw).decode(),
        iot_rule_output.TOPIC_FIELD: telemetry_topic(str(device)),
        iot_rule_output.RECEIVED_AT_FIELD: int(NOW.timestamp() * 1000),
    }


def kinesis_event(documents: list[bytes]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "dev",
                    "sequenceNumber": f"4959{index:020d}",
                    "data": base64.b64encode(document).decode(),
                    "approximateArrivalTimestamp": NOW.timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:4959{index:020d}",
                "eventName": "aws:kinesis:record",
                "awsRegion": "eu-west-1",
                "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/coldchain",
            }
            for index, document in enumerate(documents)
        ]
    }


def dlq_bodies(aws: AwsStack) -> list[dict[str, Any]]:
    found = aws.sqs.receive_message(
        QueueUrl=aws.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return [json.loads(m["Body"]) for m in found.get("Messages", [])]


def local_worker_result(tmp_path: Path, bodies: list[dict[str, Any]]) -> SqliteDatabase:
    db = SqliteDatabase(tmp_path / "local.db")
    ingest = local_ingest(db, default_profile())
    for body in bodies:  # one message at a time, as the IoT rule invokes the Lambda
        message = Message(telemetry_topic(body["device_id"]), json.dumps(body).encode(), NOW)
        with db.transaction():
            ingest.run([message], NOW)
    return db


def test_both_handlers_store_exactly_what_the_worker_stores(
    aws: AwsStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = trip()
    local = local_worker_result(tmp_path, bodies)
    local_readings = SqliteReadingStore(local)
    local_events = SqliteEventStore(local).list()
    assert local_events  # the trip raises events: the comparison below means something

    outcomes = [
        lambda_handler.iot_rule_handler(rule_output(b), FakeContext())["outcome"] for b in bodies
    ]
    assert outcomes.count("duplicate") == 1
    iot = DynamoReadingStore(aws.dynamodb, aws.telemetry, aws.devices)

    # The Kinesis path, into a second set of tables.
    other = create_stack("kinesis")
    monkeypatch.setenv(ENV_TELEMETRY_TABLE, other.telemetry)
    monkeypatch.setenv(ENV_DEVICES_TABLE, other.devices)
    monkeypatch.setenv(ENV_EVENTS_TABLE, other.events)
    monkeypatch.setenv(ENV_ALARMS_TABLE, other.alarms)  # alarms are a device's history too
    lambda_handler._wiring.cache_clear()
    response = lambda_handler.kinesis_handler(
        kinesis_event([json.dumps(rule_output(b)).encode() for b in bodies]), FakeContext()
    )
    assert response == {"batchItemFailures": []}
    kinesis = DynamoReadingStore(other.dynamodb, other.telemetry, other.devices)

    for device in ("dev-1", "dev-2"):
        expected = list(local_readings.between(device, "2000", "9999"))
        assert len(expected) == 7
        assert list(iot.between(device, "2000", "9999")) == expected
        assert list(kinesis.between(device, "2000", "9999")) == expected
    assert iot.latest() == local_readings.latest() == kinesis.latest()
    assert DynamoEventStore(aws.dynamodb, aws.events).list() == local_events
    assert DynamoEventStore(other.dynamodb, other.events).list() == local_events


def test_malformed_readings_reach_the_queue_with_their_reason(aws: AwsStack) -> None:
    good = trip()[0]
    bad = [
        rule_output({**good, "temperature_c": "3.2"}),
        rule_output({k: v for k, v in good.items() if k != "battery_pct"}),
        rule_output(good, topic_device="dev-9"),
        rule_output({**good, "timestamp": to_canonical(NOW + timedelta(hours=1))}),
    ]
    for event in bad:
        assert lambda_handler.iot_rule_handler(event, FakeContext()) == {"outcome": "rejected"}
    response = lambda_handler.kinesis_handler(kinesis_event([b"\x00not json"]), FakeContext())
    assert response == {"batchItemFailures": []}
    reasons = sorted(body["reason"] for body in dlq_bodies(aws))
    assert len(reasons) == 5
    joined = " | ".join(reasons)
    for fragment in (
        "temperature_c: must be a number",
        "battery_pct: is required",
        "does not match topic device 'dev-9'",
        "clock fault",
        "not a JSON object",
    ):
        assert fragment in joined
    rejected = [b for b in dlq_bodies(aws) if b.get("topic") == telemetry_topic("dev-9")]
    assert all(json.loads(b["payload"])["device_id"] == "dev-1" for b in rejected)


def test_unexpected_failures_raise_for_a_retry_or_fail_the_record(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_TELEMETRY_TABLE, "no-such-table")
    lambda_handler._wiring.cache_clear()
    with pytest.raises(Exception, match="DynamoDB"):
        lambda_handler.iot_rule_handler(rule_output(trip()[0]), FakeContext())
    documents = [json.dumps(rule_output(b)).encode() for b in trip()[:2]]
    # A store failure fails the whole batch: Lambda retries it (ingest is idempotent).
    with pytest.raises(Exception, match="DynamoDB"):
        lambda_handler.kinesis_handler(kinesis_event(documents), FakeContext())


def test_logs_and_metrics_name_what_alarms_use(
    aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Powertools' handler holds the stdout of import time: read the JSON lines it formats.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(lambda_handler.logger.registered_formatter)
    lambda_handler.logger.addHandler(handler)
    try:
        for body in trip():
            lambda_handler.iot_rule_handler(rule_output(body), FakeContext())
    finally:
        lambda_handler.logger.removeHandler(handler)  # type: ignore[attr-defined]
    output = capsys.readouterr().out + stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    emitted = {
        metric["Name"]
        for line in lines
        if "_aws" in line
        for directive in line["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert {
        "ReadingsStored",
        "ReadingsDuplicate",
        "TemperatureExcursionHigh",
        "BatteryLow",
        "ShockEvents",
        "Temperature",
    } <= emitted
    assert emitted <= lambda_handler.METRIC_NAMES
    logs = [line for line in lines if "_aws" not in line]
    assert all("event_type" in line for line in logs)
    excursions = [line for line in logs if line["event_type"] == "EXCURSION"]
    assert {line["device_id"] for line in excursions} == {"dev-1", "dev-2"}
    assert all(line["fleet_id"] == "fleet-a" for line in excursions)


def test_alarms_are_recorded_and_published_and_the_sweep_finds_silence(aws: AwsStack) -> None:
    import boto3

    sns = boto3.client("sns", region_name="eu-west-1")
    inbox = aws.sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
    inbox_arn = aws.sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=aws.topic_arn, Protocol="sqs", Endpoint=inbox_arn["Attributes"]["QueueArn"]
    )
    for body in trip():
        lambda_handler.iot_rule_handler(rule_output(body), FakeContext())
    store = DynamoAlarmStore(aws.dynamodb, aws.alarms)
    rules = {(a.device_id, a.rule) for a in store.list()}
    assert ("dev-1", "TemperatureExcursion") in rules
    assert ("dev-2", "BatteryLow") in rules
    assert ("dev-1", "ShockDetected") in rules

    def published() -> list[dict[str, Any]]:
        found = aws.sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)
        return [json.loads(json.loads(m["Body"])["Message"]) for m in found.get("Messages", [])]

    messages = published()
    assert {m["notification"] for m in messages} >= {"raised"}
    assert {m["alarm_id"] for m in messages} <= {a.id for a in store.list()}

    # The trip ended ten minutes ago: both devices have been silent longer than 5 minutes.
    result = lambda_handler.sweep_handler({}, FakeContext())
    assert result["notifications"] >= 2
    assert result["silent_devices"] == 2  # the fleet-level figure the SilentDevices alarm reads
    silent = {a.device_id for a in store.list(active=True) if a.rule == "DeviceSilence"}
    assert silent == {"dev-1", "dev-2"}


def test_the_exact_bytes_reach_the_handler_and_meet_the_workers_verdicts(
    aws: AwsStack, tmp_path: Path
) -> None:
    """The rule sends the device's bytes (base64): the handler validates what the local
    worker validates, a payload that is not JSON included, with the same reasons."""
    good = trip()[0]
    earlier = NOW - timedelta(minutes=3)
    fixtures: list[tuple[bytes, str]] = [
        (json.dumps(good).encode(), "dev-1"),
        (b"\x00not json at all", "dev-1"),
        (b"[1, 2, 3]", "dev-1"),
        (json.dumps({**good, "temperature_c": "3.2"}).encode(), "dev-1"),
        (json.dumps(good).encode(), "dev-9"),  # the payload speaks for another device
        (json.dumps({**good, "timestamp": to_canonical(earlier)}).encode(), "dev-1"),
    ]
    db = SqliteDatabase(tmp_path / "local.db")
    ingest = local_ingest(db, default_profile())
    local = []
    for raw, device in fixtures:
        with db.transaction():
            [result] = ingest.run([Message(telemetry_topic(device), raw, NOW)], NOW).results
        local.append((result.outcome.value, result.reason))
    db.close()
    handled = [
        lambda_handler.iot_rule_handler(rule_output(raw, device), FakeContext())["outcome"]
        for raw, device in fixtures
    ]
    assert handled == [outcome for outcome, _ in local]
    assert handled.count("rejected") == 4  # not JSON, an array, a string number, another device
    queued = sorted(body["reason"] for body in dlq_bodies(aws))
    assert queued == sorted(str(reason) for outcome, reason in local if outcome == "rejected")
    assert any("JSON" in reason for reason in queued)


class _Recording:
    """A DynamoDB client that records (operation, table, index) of every call."""

    def __init__(self, inner: Any, calls: set[tuple[str, str, str | None]]) -> None:
        self._inner, self._calls = inner, calls

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute) or name.startswith("_") or name in ("meta", "exceptions"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            tables = (
                [kwargs["TableName"]]
                if "TableName" in kwargs
                else list(kwargs.get("RequestItems", {}))
            )
            for table in tables:
                self._calls.add((name, table, kwargs.get("IndexName")))
            return attribute(*args, **kwargs)

        return call


def iam_dynamodb_statements() -> dict[str, set[str]]:
    """The processor role's DynamoDB actions by resource (table, or table/index/NAME)."""
    import hcl2

    iam = hcl2.loads((Path(__file__).resolve().parents[2] / "terraform" / "iam.tf").read_text())
    policies = {
        name.strip('"'): body
        for block in iam["data"]
        for kind, named in block.items()
        if kind.strip('"') == "aws_iam_policy_document"
        for name, body in named.items()
    }
    granted: dict[str, set[str]] = {}
    for statement in policies["processor"]["statement"]:
        actions = {
            a.strip('"').split(":", 1)[1]
            for a in statement["actions"]
            if a.strip('"').startswith("dynamodb:")
        }
        for resource in statement.get("resources", []):
            found = re.search(r"aws_dynamodb_table\.(\w+)\.arn\}?(/index/[\w-]+)?", resource)
            if found and actions:
                key = found.group(1) + (found.group(2) or "")
                granted.setdefault(key, set()).update(actions)
    return granted


def test_the_role_grants_each_table_exactly_the_calls_the_handlers_make(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Derived from the code by running it: every Lambda path (the IoT rule's, late and
    duplicate readings, alarms raised and moved, the Kinesis batch, the sweep) on moto with a
    client that records each call; the role's per-table actions must equal those."""
    calls: set[tuple[str, str, str | None]] = set()
    real_client: Any = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        made = real_client(service, *args, **kwargs)
        return _Recording(made, calls) if service == "dynamodb" else made

    monkeypatch.setattr(boto3, "client", client)  # what the handler's wiring calls
    lambda_handler._wiring.cache_clear()
    for body in trip():  # out of order, a redelivery, an excursion, a battery alarm
        lambda_handler.iot_rule_handler(rule_output(body), FakeContext())
    later = [
        {**body, "timestamp": to_canonical(NOW - timedelta(minutes=9) + timedelta(seconds=n))}
        for n, body in enumerate(trip()[:4])
    ]
    lambda_handler.kinesis_handler(
        kinesis_event([json.dumps(rule_output(b)).encode() for b in later]), FakeContext()
    )
    # A late reading that moves the start of an alarmed run earlier: the alarm is re-keyed.
    base = {**trip()[0], "device_id": "dev-3"}
    for minutes, temperature in ((8, 4.0), (6, 9.5), (5, 10.0), (7, 9.2)):
        at = to_canonical(NOW - timedelta(minutes=minutes))
        rekey = {**base, "timestamp": at, "temperature_c": temperature, "seq": 10 - minutes}
        lambda_handler.iot_rule_handler(rule_output(rekey), FakeContext())
    lambda_handler.sweep_handler({}, FakeContext())
    lambda_handler._wiring.cache_clear()
    names = {
        aws.telemetry: "telemetry",
        aws.devices: "devices",
        aws.events: "events",
        aws.alarms: "alarms",
    }
    used: dict[str, set[str]] = {}
    for operation, table, index in calls:
        key = names[table] + (f"/index/{index}" if index else "")
        used.setdefault(key, set()).add("".join(p.title() for p in operation.split("_")))
    assert used == iam_dynamodb_statements()


def test_a_batch_through_the_handler_stores_97_and_dead_letters_3(aws: AwsStack) -> None:

    body = batch("dev-1")
    for reading in body["readings"]:  # recent, so the handler's arrival time accepts them
        moment = parse_iso(reading["timestamp"]) - T0 + NOW - timedelta(hours=1)
        reading["timestamp"] = to_canonical(moment)
    outcome = lambda_handler.iot_rule_handler(rule_output(body), FakeContext())
    assert outcome == {"outcome": "batch", "stored": 97, "rejected": 3}
    stored = DynamoReadingStore(aws.dynamodb, aws.telemetry, aws.devices)
    assert len(list(stored.between("dev-1", "2000", "9999"))) == 97
    reasons = sorted(b["reason"] for b in dlq_bodies(aws))
    assert [r.split(":", 1)[0] for r in reasons] == ["readings[17]", "readings[42]", "readings[99]"]


def test_an_old_format_document_cannot_borrow_the_new_fields() -> None:
    """Before the exact-bytes rule, the device's own fields were merged into the rule's
    output: a device could have written the new field names itself."""
    forged = base64.b64encode(json.dumps({**trip()[0], "device_id": "dev-2"}).encode()).decode()
    document = {
        **trip()[0],
        iot_rule_output.TOPIC_DEVICE_FIELD: "dev-1",  # what the old rule added: the truth
        iot_rule_output.PAYLOAD_FIELD: forged,
        iot_rule_output.TOPIC_FIELD: telemetry_topic("dev-2"),
    }
    message = iot_rule_output.message_from_rule_output(document)
    assert message.topic == telemetry_topic("dev-1")
