"""SNS alarm notifications (boto3 client, injected): the AWS counterpart of the local outbox.

The alarm record is saved before this runs; a failed publish is logged and counted, never
raised, so notification trouble cannot fail (and retry) the ingestion of a reading.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from coldchain.core.notifications import Notification, notification_document, subject
from coldchain.core.rules import Severity

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient

log = logging.getLogger("coldchain.alarms")


class SnsNotifier:
    """Publishes each notification at or above ``minimum`` to a topic."""

    def __init__(
        self, client: SNSClient, topic_arn: str, minimum: Severity = Severity.INFO
    ) -> None:
        self._client = client
        self._topic_arn = topic_arn
        self._minimum = minimum
        self.failures = 0

    def enqueue(self, notifications: Sequence[Notification]) -> None:
        for notification in notifications:
            if notification.alarm.severity.rank < self._minimum.rank:
                continue
            try:
                self._client.publish(
                    TopicArn=self._topic_arn,
                    Subject=subject(notification)[:100],
                    Message=json.dumps(notification_document(notification)),
                    MessageAttributes={
                        "severity": {
                            "DataType": "String",
                            "StringValue": notification.alarm.severity.value,
                        },
                        "device_id": {
                            "DataType": "String",
                            "StringValue": notification.alarm.device_id,
                        },
                    },
                )
            except (ClientError, BotoCoreError) as exc:
                self.failures += 1
                log.error("alarm notification not published (record kept): %s", exc)
