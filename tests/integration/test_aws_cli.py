"""The operator CLI against the AWS stack, as a subprocess talking to moto's threaded HTTP
server (``--store dynamodb://PREFIX``, ``AWS_ENDPOINT_URL``): after the Lambda handler stored
a fleet, its output equals the output against SQLite for the same readings; the dead-letter
queue's four kinds of message are listed and replayed."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from coldchain.adapters.sqlite import SqliteDatabase
from coldchain.adapters.sqs import KIND_ATTRIBUTE, dead_letter_body
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
from coldchain.core.messages import DeadLetter, DeadLetterKind, Message
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic
from tests.aws import REGION, AwsStack, create_stack
from tests.integration.test_lambda import NOW, FakeContext, rule_output, trip

PREFIX = "coldchain"
STORE = f"dynamodb://{PREFIX}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """moto's HTTP server on a free loopback port, the stack created in it, the Lambda's
    environment pointing at it (in this process and for the CLI subprocesses)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's backends are process-wide: start each test from an empty account.
    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10
    ).close()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        stack = create_stack(PREFIX)
        for name, value in (
            (ENV_TELEMETRY_TABLE, stack.telemetry),
            (ENV_DEVICES_TABLE, stack.devices),
            (ENV_EVENTS_TABLE, stack.events),
            (ENV_DLQ_URL, stack.dlq_url),
            (ENV_ALARMS_TABLE, stack.alarms),
            (ENV_ALARM_TOPIC_ARN, stack.topic_arn),
        ):
            monkeypatch.setenv(name, value)
        lambda_handler._wiring.cache_clear()
        yield stack
    finally:
        lambda_handler._wiring.cache_clear()
        server.stop()


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldchain", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "TZ": "UTC"},
        check=False,
    )


def ok(home: Path, *args: str) -> str:
    done = cli(home, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def fleet_on_both(tmp_path: Path) -> Path:
    """The trip's readings through the Lambda handler (into moto) and the local worker's
    ingest step (into SQLite), one message at a time as each would receive them."""
    db_path = tmp_path / "local.db"
    database = SqliteDatabase(db_path)
    ingest = local_ingest(database, default_profile())
    for body in trip():
        lambda_handler.iot_rule_handler(rule_output(body), FakeContext())
        message = Message(telemetry_topic(str(body["device_id"])), json.dumps(body).encode(), NOW)
        with database.transaction():
            ingest.run([message], NOW)
    database.close()
    return db_path


def test_the_cli_on_dynamodb_prints_what_it_prints_on_sqlite(
    moto_server: AwsStack, tmp_path: Path
) -> None:
    db = str(fleet_on_both(tmp_path))
    home = tmp_path / "home"
    begin = to_canonical(NOW - timedelta(hours=1))
    end = to_canonical(NOW + timedelta(minutes=1))
    commands = [
        ["devices", "--format", "json"],
        ["devices", "--fleet", "fleet-a", "--format", "csv"],
        ["devices"],
        ["device", "show", "dev-1", "--format", "json"],
        ["telemetry", "dev-1", "--from", begin, "--to", end, "--format", "json"],
        ["telemetry", "dev-2", "--from", begin, "--to", end, "--format", "csv"],
        ["excursions", "--format", "json"],
        ["excursions", "--device", "dev-2", "--format", "json"],
        ["alarms", "list", "--format", "json"],
        ["alarms", "list", "--active", "--fleet", "fleet-a", "--format", "json"],
        ["report", "dev-1", "--from", begin, "--to", end, "--format", "json"],
    ]
    for command in commands:
        on_sqlite = ok(home, *command, "--db", db)
        on_dynamodb = ok(home, *command, "--store", STORE)
        assert on_dynamodb == on_sqlite, command
    devices = json.loads(ok(home, "devices", "--format", "json", "--store", STORE))
    assert [(d["device_id"], d["readings"]) for d in devices] == [("dev-1", 7), ("dev-2", 7)]
    assert json.loads(ok(home, "alarms", "list", "--format", "json", "--store", STORE))


def test_an_alarm_is_acknowledged_on_dynamodb_by_a_prefix(
    moto_server: AwsStack, tmp_path: Path
) -> None:
    fleet_on_both(tmp_path)
    home = tmp_path / "home"
    [first, *_] = json.loads(ok(home, "alarms", "list", "--format", "json", "--store", STORE))
    said = ok(home, "alarms", "ack", first["id"][:8], "--comment", "door shut", "--store", STORE)
    assert f"acknowledged {first['id']}" in said
    again = json.loads(ok(home, "alarms", "list", "--format", "json", "--store", STORE))
    acked = next(a for a in again if a["id"] == first["id"])["acknowledgement"]
    assert acked["comment"] == "door shut"


def test_bad_stores_get_one_line(moto_server: AwsStack, tmp_path: Path) -> None:
    home = tmp_path / "home"
    for args, fragment in (
        (["devices", "--store", "redis://x"], "unknown store"),
        (["devices", "--store", "dynamodb://"], "bad store"),
        (["devices", "--store", STORE, "--db", "x.db"], "not both"),
        (["dlq", "list", "--store", "dynamodb://nothing-here"], "no dead-letter queue"),
    ):
        done = cli(home, *args)
        assert done.returncode != 0
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert fragment in done.stderr


def reading(device: str, minute: int) -> dict[str, Any]:
    return {
        "device_id": device,
        "timestamp": to_canonical(NOW - timedelta(minutes=minute)),
        "temperature_c": 4.5,
        "humidity_pct": 60,
        "shock_g": 0.01,
        "battery_pct": 80,
        "fleet_id": "fleet-a",
    }


def four_kinds(stack: AwsStack) -> None:
    """One message of each kind the queue receives, each holding a valid reading, and a
    Kinesis pointer whose stream is gone."""
    sqs = stack.sqs
    ours = DeadLetter(
        DeadLetterKind.REJECTED,
        telemetry_topic("dlq-1"),
        json.dumps(reading("dlq-1", 5)).encode(),
        NOW,
        "store unavailable (test)",
    )
    sqs.send_message(
        QueueUrl=stack.dlq_url,
        MessageBody=json.dumps(dead_letter_body(ours)),
        MessageAttributes={KIND_ATTRIBUTE: {"DataType": "String", "StringValue": "rejected"}},
    )
    failure_record = {
        "version": "1.0",
        "timestamp": to_canonical(NOW),
        "requestContext": {
            "requestId": "r-1",
            "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:coldchain-processor",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": rule_output(reading("dlq-2", 4)),
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "DynamoDB put_item failed: throttled"},
    }
    sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=json.dumps(failure_record))
    error_action = {
        "ruleName": "coldchain_telemetry",
        "topic": telemetry_topic("dlq-3"),
        "cloudwatchTraceId": "t-1",
        "clientId": "dlq-3",
        "base64OriginalPayload": base64.b64encode(
            json.dumps(reading("dlq-3", 3)).encode()
        ).decode(),
        "failures": [
            {
                "failedAction": "LambdaAction",
                "failedResource": "coldchain-processor",
                "errorMessage": "Failed to invoke lambda function (throttled)",
            }
        ],
    }
    sqs.send_message(
        QueueUrl=stack.dlq_url,
        MessageBody=base64.b64encode(json.dumps(error_action).encode()).decode(),
    )
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName=f"{PREFIX}-telemetry", ShardCount=1)
    arn = kinesis.describe_stream(StreamName=f"{PREFIX}-telemetry")["StreamDescription"][
        "StreamARN"
    ]
    put = [
        kinesis.put_record(
            StreamName=f"{PREFIX}-telemetry",
            Data=json.dumps(rule_output(reading("dlq-4", minute))).encode(),
            PartitionKey="dlq-4",
        )
        for minute in (2, 1)
    ]
    for stream_arn in (arn, arn.replace(f"{PREFIX}-telemetry", "deleted-stream")):
        pointer = {
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": to_canonical(NOW),
            "KinesisBatchInfo": {
                "shardId": put[0]["ShardId"],
                "startSequenceNumber": put[0]["SequenceNumber"],
                "endSequenceNumber": put[-1]["SequenceNumber"],
                "batchSize": 2,
                "streamArn": stream_arn,
            },
        }
        sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=json.dumps(pointer))


def test_the_four_kinds_of_dead_letter_are_listed_and_replayed(
    moto_server: AwsStack, tmp_path: Path
) -> None:
    four_kinds(moto_server)
    home = tmp_path / "home"
    listed = json.loads(ok(home, "dlq", "list", "--format", "json", "--store", STORE))
    kinds = sorted(d["kind"] for d in listed)
    assert kinds == [
        "coldchain",
        "iot-error-action",
        "kinesis-failure",
        "kinesis-failure",
        "lambda-failure",
    ]
    reasons = " | ".join(d["reason"] for d in listed)
    assert "store unavailable (test)" in reasons
    assert "throttled" in reasons
    assert "RetryAttemptsExhausted" in reasons
    # Listing consumed nothing: the same five are there again.
    assert len(json.loads(ok(home, "dlq", "list", "--format", "json", "--store", STORE))) == 5

    said = ok(home, "dlq", "replay", "--all", "--store", STORE)
    assert "5 readings stored" in said, said
    assert "1 kept" in said, said
    stored = {
        d["device_id"]: d["readings"]
        for d in json.loads(ok(home, "devices", "--format", "json", "--store", STORE))
    }
    assert stored == {"dlq-1": 1, "dlq-2": 1, "dlq-3": 1, "dlq-4": 2}
    [left] = json.loads(ok(home, "dlq", "list", "--format", "json", "--store", STORE))
    assert left["kinesis"]["stream"].endswith("deleted-stream")


def test_a_replayed_letter_that_fails_again_is_dead_lettered_again(
    moto_server: AwsStack, tmp_path: Path
) -> None:
    lambda_handler.iot_rule_handler(rule_output(b"not json", "dev-9"), FakeContext())
    home = tmp_path / "home"
    [before] = json.loads(ok(home, "dlq", "list", "--format", "json", "--store", STORE))
    assert before["kind"] == "coldchain"
    said = ok(home, "dlq", "replay", "--id", before["id"], "--store", STORE)
    assert "1 dead-lettered again" in said, said
    [after] = json.loads(ok(home, "dlq", "list", "--format", "json", "--store", STORE))
    assert after["id"] != before["id"]
    assert after["reason"] == before["reason"]
    assert after["payload"] == "not json"
