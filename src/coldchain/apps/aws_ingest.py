"""The ingest step wired to the AWS deployment (DynamoDB, SQS, SNS): what the Lambda
handlers and `coldchain dlq replay --store dynamodb://...` run, so a replayed dead letter
goes through exactly the path it failed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from coldchain.adapters.dynamodb import (
    DynamoAlarmStore,
    DynamoDeviceStateStore,
    DynamoEventStore,
    DynamoReadingStore,
)
from coldchain.adapters.sns import SnsNotifier
from coldchain.adapters.sqs import SqsDeadLetterSink
from coldchain.core.ingest import Ingest
from coldchain.core.processing import Processor

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sqs.client import SQSClient

    from coldchain.config import AwsSettings


@dataclass(frozen=True, slots=True)
class AwsIngest:
    ingest: Ingest
    dead_letters: SqsDeadLetterSink


def aws_ingest(
    settings: AwsSettings, dynamodb: DynamoDBClient, sqs: SQSClient, sns: SNSClient
) -> AwsIngest:
    """Every store of the deployment; DynamoDB has no transactions, so :meth:`Ingest.run`
    writes effects first and each device's state last (see core/ingest.py).
    """
    dead_letters = SqsDeadLetterSink(sqs, settings.dlq_url)
    readings = DynamoReadingStore(
        dynamodb,
        settings.telemetry_table,
        settings.devices_table,
        settings.ttl_days,
        record_latest=False,  # the device state store writes the latest values with the state
    )
    ingest = Ingest(
        Processor(readings, dead_letters),
        DynamoDeviceStateStore(dynamodb, settings.devices_table),
        DynamoAlarmStore(dynamodb, settings.alarms_table),
        SnsNotifier(sns, settings.alarm_topic_arn),
        settings.alarm_profile,
        DynamoEventStore(dynamodb, settings.events_table),
    )
    return AwsIngest(ingest, dead_letters)
