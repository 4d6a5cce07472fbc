"""AWS Lambda entry points: thin twins of the local worker around the same Processor.

* ``iot_rule_handler``: invoked asynchronously by the IoT topic rule with the rule's SELECT
  result (the payload plus two fields the rule adds, named so they cannot clash with payload
  fields). Rejected readings and conflicts go to the SQS dead-letter queue with the reason,
  explicitly; an unexpected failure raises, so Lambda retries twice and then hands the event
  to the on-failure destination.
* ``kinesis_handler``: the high-rate path, a batch of the same documents from a Kinesis
  stream, ingested as one batch; a bad record is dead-lettered, so it never blocks its shard.

Wiring (boto3 clients, stores) happens once per execution environment, on first use.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any, Final

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from coldchain.adapters.clock import SystemClock
from coldchain.adapters.iot_rule_output import (
    message_from_rule_output,
)
from coldchain.apps.aws_ingest import AwsIngest, aws_ingest
from coldchain.config import AwsSettings
from coldchain.core.events import Event, EventKind
from coldchain.core.messages import DeadLetter, DeadLetterKind, Outcome
from coldchain.core.notifications import Notification
from coldchain.core.ports import Clock
from coldchain.core.processing import Result

SERVICE: Final = "coldchain-processor"
NAMESPACE: Final = "ColdChain"
# Metric names, one per outcome and per event kind; alarms and the dashboard use these.
OUTCOME_METRICS: Final = {
    Outcome.STORED: "ReadingsStored",
    Outcome.DUPLICATE: "ReadingsDuplicate",
    Outcome.CONFLICT: "ReadingsConflict",
    Outcome.REJECTED: "ReadingsRejected",
}
EVENT_METRICS: Final = {
    EventKind.TEMPERATURE_HIGH: "TemperatureExcursionHigh",
    EventKind.TEMPERATURE_LOW: "TemperatureExcursionLow",
    EventKind.BATTERY_LOW: "BatteryLow",
    EventKind.SHOCK: "ShockEvents",
    EventKind.DEVICE_SILENCE: "DeviceSilence",
}
TEMPERATURE_METRIC: Final = "Temperature"
ALARM_NOTIFICATIONS_METRIC: Final = "AlarmNotifications"
BATTERY_METRIC: Final = "BatteryPct"
ERRORS_METRIC: Final = "ProcessingErrors"
SILENT_DEVICES_METRIC: Final = "SilentDevices"  # devices silent now, each sweep
METRIC_NAMES: Final = frozenset(
    {
        *OUTCOME_METRICS.values(),
        *EVENT_METRICS.values(),
        TEMPERATURE_METRIC,
        BATTERY_METRIC,
        ERRORS_METRIC,
        ALARM_NOTIFICATIONS_METRIC,
        SILENT_DEVICES_METRIC,
    }
)

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


CLOCK: Clock = SystemClock()  # tests put a FixedClock here
STATE_RETRIES = 5  # another invocation advanced the same device meanwhile: reload, reapply


@functools.cache
def _wiring() -> AwsIngest:
    settings = AwsSettings.from_env()
    return aws_ingest(settings, boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("sns"))


def _handle(documents: list[dict[str, Any]]) -> list[Result]:
    """The ingest step for a batch of messages (one for the IoT rule, up to the batch size
    for Kinesis): each device's state is read and written once per batch. A concurrent
    writer of the same device's state makes it reload and apply again (the readings
    themselves are stored idempotently).
    """
    messages = [message_from_rule_output(document) for document in documents]
    done = _wiring().ingest.run_retrying(messages, CLOCK.now(), STATE_RETRIES)
    for result in done.results:
        _record(result)
    for event in done.events:
        _record_event(event)
    for note in done.notifications:
        _record_notification(note)
    return done.results


def _record_notification(note: Notification) -> None:
    metrics.add_metric(name=ALARM_NOTIFICATIONS_METRIC, unit=MetricUnit.Count, value=1)
    logger.warning(
        f"alarm {note.kind.value}: {note.alarm.rule}",
        extra={
            "event_type": "ALARM",
            "notification": note.kind.value,
            "alarm_id": note.alarm.id,
            "rule": note.alarm.rule,
            "severity": note.alarm.severity.value,
            "device_id": note.alarm.device_id,
            "fleet_id": note.alarm.fleet_id,
        },
    )


def _record(result: Result) -> None:
    """Metrics and structured log lines for one outcome."""
    metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
    reading = result.reading
    keys = {
        "device_id": reading.device_id if reading else None,
        "fleet_id": reading.fleet_id if reading else None,
    }
    if result.outcome in (Outcome.REJECTED, Outcome.CONFLICT):
        logger.warning(
            "reading dead-lettered",
            extra={"event_type": result.outcome.value.upper(), "reason": result.reason, **keys},
        )
        return
    if reading is None or result.outcome is not Outcome.STORED:
        logger.info("duplicate reading", extra={"event_type": "DUPLICATE", **keys})
        return
    metrics.add_metric(name=TEMPERATURE_METRIC, unit=MetricUnit.NoUnit, value=reading.temperature_c)
    metrics.add_metric(name=BATTERY_METRIC, unit=MetricUnit.Percent, value=reading.battery_pct)
    # One line per reading (the dashboard's heartbeat and battery widgets read it), kept small
    # because CloudWatch bills every byte: no payload, and the keys that are the same on every
    # line of an invocation set to None, which Powertools leaves out (this line only). About
    # 330 bytes instead of 540 (`python -m benchmarks.aws_cost_inputs` measures it).
    logger.info(
        "reading stored",
        extra={
            "event_type": "READING",
            "timestamp_device": reading.timestamp,
            "temperature_c": reading.temperature_c,
            "battery_pct": reading.battery_pct,
            **keys,
            **dict.fromkeys(
                (
                    "service",
                    "cold_start",
                    "function_name",
                    "function_memory_size",
                    "function_arn",
                    "function_request_id",
                ),
                None,
            ),
        },
    )


def _record_event(event: Event) -> None:
    metrics.add_metric(name=EVENT_METRICS[event.kind], unit=MetricUnit.Count, value=1)
    logger.warning(
        event.detail,
        extra={
            "event_type": "EXCURSION",
            "kind": event.kind.value,
            "device_id": event.device_id,
            "fleet_id": event.fleet_id,
            "value": event.value,
            "threshold": event.threshold,
            "timestamp_device": event.timestamp,
        },
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def iot_rule_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One message from the IoT topic rule: a reading, or a batch of up to 100."""
    try:
        results = _handle([event])
    except Exception:
        metrics.add_metric(name=ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        logger.exception("processing failed; Lambda will retry", extra={"event_type": "ERROR"})
        raise
    if len(results) == 1:
        return {"outcome": results[0].outcome.value}
    # A batched upload: one outcome per reading it carried.
    return {"outcome": "batch", **Counter(r.outcome.value for r in results)}


def _kinesis_documents(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rule's JSON objects in a Kinesis batch; anything else is dead-lettered with the
    reason rather than left to block the shard.
    """
    documents: list[dict[str, Any]] = []
    rejected: list[DeadLetter] = []
    for raw_record in records:
        record = KinesisStreamRecord(raw_record)
        try:
            document = record.kinesis.data_as_json()
        except ValueError:
            document = None
        if isinstance(document, dict):
            documents.append(document)
            continue
        reason = "Kinesis record is not a JSON object"
        raw = record.kinesis.data_as_bytes()
        rejected.append(DeadLetter(DeadLetterKind.REJECTED, "kinesis", raw, CLOCK.now(), reason))
    if rejected:
        _wiring().dead_letters.put_many(rejected)
        metrics.add_metric(
            name=OUTCOME_METRICS[Outcome.REJECTED], unit=MetricUnit.Count, value=len(rejected)
        )
    return documents


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def kinesis_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A batch from the Kinesis stream, ingested as one batch (each device's state read and
    written once). A reading that cannot be processed is dead-lettered, never failed; a
    failure of the stores fails the whole batch, which Lambda retries (bisecting it, see
    lambda.tf): ingest is idempotent, so the records stored before the failure are
    duplicates then and their effects are applied once.
    """
    try:
        _handle(_kinesis_documents(event.get("Records", [])))
    except Exception:
        metrics.add_metric(name=ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        logger.exception("batch failed; Lambda will retry it", extra={"event_type": "ERROR"})
        raise
    return {"batchItemFailures": []}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def sweep_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Every minute (EventBridge): per-device silence, reminders for critical alarms, and
    the fleet's silent-device count (one metric, whatever the fleet's size).
    """
    swept = _wiring().ingest.sweep(CLOCK.now())
    for note in swept.notifications:
        _record_notification(note)
    if not swept.notifications:
        metrics.add_metric(name=ALARM_NOTIFICATIONS_METRIC, unit=MetricUnit.Count, value=0)
    metrics.add_metric(
        name=SILENT_DEVICES_METRIC, unit=MetricUnit.Count, value=swept.silent_devices
    )
    return {"notifications": len(swept.notifications), "silent_devices": swept.silent_devices}
