"""What the cost model prices: a fleet and its choices (:class:`Scenario`), what Terraform
deploys (:class:`Deployment`), and what comes out (:class:`Bill` of :class:`LineItem`); with
the metering rules the lines share. A month is 730 hours, as AWS prices it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from coldchain.cost.inputs import Measured

HOURS_PER_MONTH: Final = 730
SECONDS_PER_MONTH: Final = HOURS_PER_MONTH * 3600
DAYS_PER_MONTH: Final = HOURS_PER_MONTH / 24
MINUTES_PER_MONTH: Final = HOURS_PER_MONTH * 60
GB: Final = 1024**3
IOT_UNIT_BYTES: Final = 5 * 1024  # IoT Core meters messages, rules and actions per 5 KB
KINESIS_RECORD_UNIT: Final = 1024  # on-demand ingress is rounded up per record to 1 KB
LOG_EVENT_OVERHEAD: Final = 26  # bytes CloudWatch Logs counts per event besides the message
MAX_BATCH: Final = 100  # coldchain.core.batches.MAX_READINGS
LAMBDA_VCPU_MB: Final = 1769  # memory at which a function has one full vCPU
ASSUMED_CALL_MS: Final = 5.0  # an AWS API call from Lambda, in region (an assumption)
# cheapest(): a device uploads at least twice within the default 5-minute silence alarm, so
# one lost upload raises no DeviceSilence.
DEFAULT_MAX_DELAY_S: Final = 150.0


# Every price the model reads (the prices file may hold more: tests check it holds these).
PRICE_KEYS: Final = frozenset(
    {
        "iot_messaging",
        "iot_connectivity",
        "iot_rules_triggered",
        "iot_rule_actions",
        "lambda_requests",
        "lambda_gb_second_arm64",
        "kinesis_on_demand_stream_hour",
        "kinesis_on_demand_data_in",
        "kinesis_on_demand_data_out",
        "kinesis_on_demand_extended_retention",
        *(
            f"dynamodb_{kind}_{table_class}"
            for kind in (
                "on_demand_write",
                "provisioned_wcu_hour",
                "provisioned_rcu_hour",
                "storage",
            )
            for table_class in ("standard", "ia")
        ),
        "dynamodb_on_demand_read_standard",
        "dynamodb_pitr",
        "cloudwatch_logs_ingestion",
        "cloudwatch_logs_storage",
        "cloudwatch_logs_insights",
        "cloudwatch_custom_metric",
        "cloudwatch_alarm",
        "cloudwatch_dashboard",
        "xray_traces_recorded",
        "sqs_requests",
        "kms_key",
    }
)


class Mode(StrEnum):
    LAMBDA = "lambda"  # devices publish to dt/coldchain/<id>/telemetry; rule -> Lambda
    KINESIS = "kinesis"  # the same rule -> Kinesis -> Lambda in batches
    BASIC_INGEST = "basic-ingest"  # devices publish to $aws/rules/<rule>/...; rule -> Lambda


class Capacity(StrEnum):
    ON_DEMAND = "on-demand"
    PROVISIONED = "provisioned"  # with autoscaling at Deployment.target_utilisation


class TableClass(StrEnum):
    STANDARD = "standard"
    STANDARD_IA = "standard-ia"


class FleetIndex(StrEnum):
    ALL = "all"  # as deployed: every reading copied whole into fleet-timestamp
    KEYS_ONLY = "keys-only"  # every reading still indexed, its keys only
    NONE = "none"  # dropped, or sparse so that readings do not carry its key


@dataclass(frozen=True, slots=True)
class Deployment:
    """What terraform/ deploys (tests/functional/test_aws_cost_cli.py ties these to it)."""

    memory_mb: int = 256  # variables.tf lambda_memory_mb
    ttl_days: int = 90  # variables.tf telemetry_ttl_days
    ttl_lag_days: float = 2.0  # TTL deletes expired items "typically within two days"
    log_retention_days: int = 365  # variables.tf log_retention_days
    kinesis_retention_hours: int = 168  # variables.tf kinesis_retention_hours
    kinesis_batch_size: int = 100  # lambda.tf event source mapping
    kinesis_window_s: float = 1.0  # lambda.tf maximum_batching_window_in_seconds
    kinesis_parallelization: int = 2  # lambda.tf parallelization_factor
    kinesis_shards: int = 4  # an on-demand stream starts at about 4 MB/s of writes
    custom_metrics: int = 14  # lambda_handler.METRIC_NAMES, one dimension set (service)
    alarms: int = 9  # observability.tf without the Kinesis iterator-age alarm
    kinesis_alarms: int = 1
    dashboards: int = 1
    dashboard_log_widgets: int = 2  # Logs Insights queries over the processor's log group
    dashboard_window_hours: float = 6.0  # the dashboard's default time range
    kms_keys: int = 1
    sweeps_per_month: int = MINUTES_PER_MONTH  # the sweeper runs every minute
    target_utilisation: float = 0.70  # capacity.tf readings_target_utilisation
    min_write_capacity: int = 5  # capacity.tf readings_write_capacity.min (table and index)
    min_read_capacity: int = 5  # capacity.tf readings_read_capacity.min (table and index)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A fleet and the choices that price it. ``capacity``/``table_class`` None: the cheaper."""

    devices: int
    interval_s: float
    mode: Mode = Mode.LAMBDA
    batch: int = 1  # readings per message
    fleet_index: FleetIndex = FleetIndex.ALL
    capacity: Capacity | None = None
    table_class: TableClass | None = None
    dashboard_views: int = 300  # a month; each view runs the dashboard's log queries
    dead_letter_share: float = 0.001  # readings rejected (each: send, receive, delete)

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise ValueError("devices: at least 1")
        if not self.interval_s > 0:
            raise ValueError("interval: must be positive")
        if not 1 <= self.batch <= MAX_BATCH:
            raise ValueError(f"batch: 1 to {MAX_BATCH} readings a message")

    @property
    def readings_per_second(self) -> float:
        return self.devices / self.interval_s

    @property
    def upload_delay_s(self) -> float:
        """How long the oldest reading of a batch waits on the device."""
        return self.batch * self.interval_s


@dataclass(frozen=True, slots=True)
class LineItem:
    name: str
    quantity: float  # a month, in the price's unit
    unit: str
    unit_price: float  # dollars per unit
    monthly: float  # quantity * unit_price
    per_million: float  # dollars per million readings
    note: str
    measured: bool  # the quantity rests on a figure measured on moto
    price_key: str


@dataclass(frozen=True, slots=True)
class Bill:
    scenario: Scenario  # with the capacity mode and table class it was priced with
    readings: float  # a month
    lines: tuple[LineItem, ...]
    notes: tuple[str, ...] = ()
    alternatives: tuple[tuple[str, float], ...] = ()  # other storage choices, $ per million
    lambda_estimate_per_million: float = 0.0  # the total with the pessimistic Lambda timing

    @property
    def monthly(self) -> float:
        return sum(line.monthly for line in self.lines)

    @property
    def per_million(self) -> float:
        return self.monthly / self.readings * 1e6

    def line(self, name: str) -> LineItem | None:
        return next((line for line in self.lines if line.name == name), None)


def iot_units(size_bytes: float) -> int:
    """IoT Core's metering of one message, rule or action: per 5 KB started (at least 1)."""
    return max(1, math.ceil(size_bytes / IOT_UNIT_BYTES))


def payload_bytes(measured: Measured, batch: int) -> float:
    """One message's payload: a lone reading, or a batch of ``batch`` readings."""
    if batch == 1:
        return measured.reading_bytes
    return measured.batch_base_bytes + batch * measured.batch_reading_bytes


def rule_output_bytes(measured: Measured, payload: float) -> float:
    """What the rule hands Lambda or Kinesis: the payload in base64 and two fields."""
    return measured.rule_output_base_bytes + 4 * math.ceil(payload / 3)


def kinesis_invocations_per_second(records_per_second: float, deployment: Deployment) -> float:
    """Batches a second: full batches at a high rate; otherwise each poller (shards times the
    parallelization factor) invokes with what its batching window gathered.
    """
    pollers = deployment.kinesis_shards * deployment.kinesis_parallelization
    return max(
        records_per_second / deployment.kinesis_batch_size,
        min(records_per_second, pollers / deployment.kinesis_window_s),
    )


def xray_traces(invocations_per_second: float) -> float:
    """Traces a second under Lambda's fixed sampling: 1 a second, then 5% of the rest."""
    return min(invocations_per_second, 1.0) + 0.05 * max(invocations_per_second - 1.0, 0.0)
