"""moto helpers: the tables and queue of the AWS deployment, as terraform/storage.tf makes them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from coldchain.adapters.dynamodb import (
    ALARMS_ACTIVE_INDEX,
    ALARMS_ACTIVE_KEY,
    ALARMS_DEVICE_INDEX,
    ALARMS_MONTH_INDEX,
    ALARMS_MONTH_KEY,
    ALARMS_PK,
    DEVICES_PK,
    DEVICES_REGISTRY_INDEX,
    DEVICES_REGISTRY_KEY,
    EVENTS_PK,
    EVENTS_SK,
    FLEET_INDEX,
    FLEET_INDEX_PK,
    TELEMETRY_PK,
    TELEMETRY_SK,
)
from coldchain.adapters.dynamodb_audit import (
    AUDIT_AT,
    AUDIT_KIND,
    AUDIT_KIND_INDEX,
    AUDIT_LOG,
    AUDIT_PK,
    AUDIT_SK,
    AUDIT_TIME_INDEX,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

REGION = "eu-west-1"


@dataclass(frozen=True)
class AwsStack:
    dynamodb: DynamoDBClient
    sqs: SQSClient
    telemetry: str
    devices: str
    events: str
    dlq_url: str
    alarms: str
    topic_arn: str
    audit: str


def create_stack(prefix: str = "coldchain") -> AwsStack:
    """Tables and the dead-letter queue, inside an active moto mock."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    telemetry, devices, events = f"{prefix}-telemetry", f"{prefix}-devices", f"{prefix}-events"
    dynamodb.create_table(
        TableName=telemetry,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": TELEMETRY_PK, "AttributeType": "S"},
            {"AttributeName": TELEMETRY_SK, "AttributeType": "S"},
            {"AttributeName": FLEET_INDEX_PK, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": TELEMETRY_PK, "KeyType": "HASH"},
            {"AttributeName": TELEMETRY_SK, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": FLEET_INDEX,
                "KeySchema": [
                    {"AttributeName": FLEET_INDEX_PK, "KeyType": "HASH"},
                    {"AttributeName": TELEMETRY_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    dynamodb.create_table(
        TableName=devices,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": DEVICES_PK, "AttributeType": "S"},
            {"AttributeName": DEVICES_REGISTRY_KEY, "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": DEVICES_PK, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": DEVICES_REGISTRY_INDEX,
                "KeySchema": [
                    {"AttributeName": DEVICES_REGISTRY_KEY, "KeyType": "HASH"},
                    {"AttributeName": DEVICES_PK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )
    dynamodb.create_table(
        TableName=events,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": EVENTS_PK, "AttributeType": "S"},
            {"AttributeName": EVENTS_SK, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": EVENTS_PK, "KeyType": "HASH"},
            {"AttributeName": EVENTS_SK, "KeyType": "RANGE"},
        ],
    )
    alarms = f"{prefix}-alarms"
    dynamodb.create_table(
        TableName=alarms,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": ALARMS_PK, "AttributeType": "S"},
            {"AttributeName": "device_id", "AttributeType": "S"},
            {"AttributeName": "started_at", "AttributeType": "S"},
            {"AttributeName": ALARMS_ACTIVE_KEY, "AttributeType": "S"},
            {"AttributeName": ALARMS_MONTH_KEY, "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": ALARMS_PK, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": ALARMS_DEVICE_INDEX,
                "KeySchema": [
                    {"AttributeName": "device_id", "KeyType": "HASH"},
                    {"AttributeName": "started_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": ALARMS_ACTIVE_INDEX,
                "KeySchema": [
                    {"AttributeName": ALARMS_ACTIVE_KEY, "KeyType": "HASH"},
                    {"AttributeName": "started_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": ALARMS_MONTH_INDEX,
                "KeySchema": [
                    {"AttributeName": ALARMS_MONTH_KEY, "KeyType": "HASH"},
                    {"AttributeName": "started_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    )
    audit = f"{prefix}-audit"
    dynamodb.create_table(
        TableName=audit,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": AUDIT_PK, "AttributeType": "S"},
            {"AttributeName": AUDIT_SK, "AttributeType": "N"},
            {"AttributeName": AUDIT_KIND, "AttributeType": "S"},
            {"AttributeName": AUDIT_LOG, "AttributeType": "S"},
            {"AttributeName": AUDIT_AT, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": AUDIT_PK, "KeyType": "HASH"},
            {"AttributeName": AUDIT_SK, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": AUDIT_KIND_INDEX,
                "KeySchema": [
                    {"AttributeName": AUDIT_KIND, "KeyType": "HASH"},
                    {"AttributeName": AUDIT_PK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": AUDIT_TIME_INDEX,
                "KeySchema": [
                    {"AttributeName": AUDIT_LOG, "KeyType": "HASH"},
                    {"AttributeName": AUDIT_AT, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    )
    queue = sqs.create_queue(QueueName=f"{prefix}-dlq")
    topic = boto3.client("sns", region_name=REGION).create_topic(Name=f"{prefix}-alarms")
    return AwsStack(
        dynamodb,
        sqs,
        telemetry,
        devices,
        events,
        queue["QueueUrl"],
        alarms,
        topic["TopicArn"],
        audit,
    )


def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and a region that moto accepts and AWS never would."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@contextmanager
def mocked_aws() -> Iterator[AwsStack]:
    """A moto account with the stack created, and credentials that cannot reach AWS."""
    with mock_aws():
        yield create_stack()
