"""The monthly AWS bill of a fleet, line by line, and its cost per million readings.

Pure: a :class:`Scenario` (devices, interval, ingest mode, readings per message, and the
storage choices), the prices and the figures measured on moto (:mod:`coldchain.cost_inputs`)
and what Terraform deploys (:class:`Deployment`) go in; a :class:`Bill` of
:class:`LineItem` comes out, each line its quantity times its unit price. Where the scenario
leaves the readings table's capacity mode or table class open, :func:`bill` prices every
choice and keeps the cheapest; :func:`cheapest` also searches modes and batch sizes.

A month is 730 hours, as AWS prices it. No free tier is applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import product
from typing import Final

from coldchain.cost_inputs import (
    ITEM_OVERHEAD_BYTES,
    HandlerFigures,
    Measured,
    Price,
    Prices,
    read_units,
    write_units,
)

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
DEFAULT_MAX_DELAY_S: Final = 120.0  # cheapest(): readings wait at most this long on a device


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
    parallelization factor) invokes with what its batching window gathered."""
    pollers = deployment.kinesis_shards * deployment.kinesis_parallelization
    return max(
        records_per_second / deployment.kinesis_batch_size,
        min(records_per_second, pollers / deployment.kinesis_window_s),
    )


def xray_traces(invocations_per_second: float) -> float:
    """Traces a second under Lambda's fixed sampling: 1 a second, then 5% of the rest."""
    return min(invocations_per_second, 1.0) + 0.05 * max(invocations_per_second - 1.0, 0.0)


def bill(
    scenario: Scenario, prices: Prices, measured: Measured, deployment: Deployment | None = None
) -> Bill:
    """The monthly bill; an open capacity mode or table class is chosen by total."""
    deployment = deployment or Deployment()
    capacities = [scenario.capacity] if scenario.capacity else list(Capacity)
    classes = [scenario.table_class] if scenario.table_class else list(TableClass)
    bills = [
        _bill(replace(scenario, capacity=capacity, table_class=table_class), prices, measured, deployment)
        for capacity, table_class in product(capacities, classes)
    ]
    best = min(bills, key=lambda b: b.monthly)
    others = tuple(
        (f"{b.scenario.capacity}, {b.scenario.table_class}", b.per_million)
        for b in bills
        if b is not best
    )
    return replace(best, alternatives=others)


def cheapest(
    devices: int,
    interval_s: float,
    prices: Prices,
    measured: Measured,
    *,
    fleet_index: FleetIndex = FleetIndex.ALL,
    modes: tuple[Mode, ...] = tuple(Mode),
    max_delay_s: float = DEFAULT_MAX_DELAY_S,
    deployment: Deployment | None = None,
) -> Bill:
    """The cheapest bill over modes, batch sizes whose upload delay stays within
    ``max_delay_s`` (batch 1 always), capacity modes and table classes."""
    largest = max(1, min(MAX_BATCH, math.floor(max_delay_s / interval_s)))
    bills = [
        bill(Scenario(devices, interval_s, mode, batch, fleet_index), prices, measured, deployment)
        for mode in modes
        for batch in range(1, largest + 1)
    ]
    return min(bills, key=lambda b: (b.monthly, b.scenario.batch))


# ---------------------------------------------------------------------------------------------
# The lines
# ---------------------------------------------------------------------------------------------
@dataclass
class _Lines:
    readings: float
    lines: list[LineItem] = field(default_factory=list)

    def add(
        self,
        name: str,
        quantity: float,
        price: Price,
        note: str,
        *,
        measured: bool = False,
        unit: str | None = None,
    ) -> None:
        monthly = quantity * price.each
        self.lines.append(
            LineItem(
                name=name,
                quantity=quantity,
                unit=unit or price.unit,
                unit_price=price.each,
                monthly=monthly,
                per_million=monthly / self.readings * 1e6,
                note=note,
                measured=measured,
                price_key=price.key,
            )
        )


@dataclass(frozen=True, slots=True)
class _Traffic:
    """A month of the processor's traffic."""

    readings: float
    messages: float
    invocations: float
    payload: float  # bytes a message
    rule_output: float  # bytes a message, after the rule's SELECT
    handler: HandlerFigures

    @property
    def messages_each(self) -> float:
        return self.messages / self.invocations

    @property
    def readings_each(self) -> float:
        return self.readings / self.invocations

    def per_invocation(self, figure: str) -> float:
        value = getattr(self.handler, figure)
        return float(value.at(self.messages_each, self.readings_each))


def _traffic(s: Scenario, measured: Measured, deployment: Deployment) -> _Traffic:
    readings = s.readings_per_second * SECONDS_PER_MONTH
    messages = readings / s.batch
    payload = payload_bytes(measured, s.batch)
    if s.mode is Mode.KINESIS:
        rate = kinesis_invocations_per_second(messages / SECONDS_PER_MONTH, deployment)
        invocations, handler = rate * SECONDS_PER_MONTH, measured.kinesis
    else:
        invocations, handler = messages, measured.iot
    return _Traffic(
        readings, messages, invocations, payload, rule_output_bytes(measured, payload), handler
    )


def _bill(s: Scenario, prices: Prices, measured: Measured, deployment: Deployment) -> Bill:
    t = _traffic(s, measured, deployment)
    out = _Lines(t.readings)
    notes: list[str] = []
    _iot(out, s, t, prices, measured)
    if s.mode is Mode.KINESIS:
        _kinesis(out, t, prices, deployment)
    estimate_delta = _lambda(out, s, t, prices, measured, deployment)
    _readings_table(out, s, t, prices, measured, deployment)
    _device_state(out, s, t, prices, measured, deployment)
    _observability(out, s, t, prices, measured, deployment)
    _other(out, s, t, prices, deployment)
    if s.upload_delay_s >= 300:
        notes.append(
            f"{s.batch} readings a message every {s.interval_s:g} s: a device reports every "
            f"{s.upload_delay_s:g} s, at or past the default 5-minute silence alarm."
        )
    elif s.batch > 1:
        notes.append(
            f"Batches of {s.batch}: an excursion reaches the cloud up to "
            f"{s.upload_delay_s - s.interval_s:g} s after it was measured."
        )
    result = Bill(s, t.readings, tuple(out.lines), tuple(notes))
    return replace(
        result, lambda_estimate_per_million=result.per_million + estimate_delta / t.readings * 1e6
    )


def _iot(out: _Lines, s: Scenario, t: _Traffic, prices: Prices, measured: Measured) -> None:
    basic = s.mode is Mode.BASIC_INGEST
    topic = measured.basic_ingest_topic_bytes if basic else measured.topic_bytes
    size = t.payload + topic
    units = iot_units(size)
    sizes = f"{size:,.0f} B a message (payload + topic) = {units} unit(s) of 5 KB"
    if not basic:
        out.add(
            "IoT messaging",
            t.messages * units,
            prices["iot_messaging"],
            f"{s.batch} reading(s) a message; {sizes}",
            measured=True,
        )
    out.add(
        "IoT connectivity",
        s.devices * MINUTES_PER_MONTH,
        prices["iot_connectivity"],
        "every device connected all month",
    )
    out.add(
        "IoT rules triggered",
        t.messages * units,
        prices["iot_rules_triggered"],
        ("Basic Ingest: no messaging charge, the rule still runs; " if basic else "") + sizes,
        measured=True,
    )
    action = iot_units(t.rule_output)
    target = "Kinesis PutRecord" if s.mode is Mode.KINESIS else "Lambda invoke"
    out.add(
        "IoT rule actions",
        t.messages * action,
        prices["iot_rule_actions"],
        f"{target}: {t.rule_output:,.0f} B (payload in base64) = {action} unit(s)",
        measured=True,
    )


def _kinesis(out: _Lines, t: _Traffic, prices: Prices, deployment: Deployment) -> None:
    record_kb = math.ceil(t.rule_output / KINESIS_RECORD_UNIT)
    gb_in = t.messages * record_kb * KINESIS_RECORD_UNIT / GB
    gb_out = t.messages * t.rule_output / GB
    out.add(
        "Kinesis stream",
        HOURS_PER_MONTH,
        prices["kinesis_on_demand_stream_hour"],
        "one on-demand stream, whatever the rate",
    )
    out.add(
        "Kinesis data in",
        gb_in,
        prices["kinesis_on_demand_data_in"],
        f"{t.messages:,.0f} records of {t.rule_output:,.0f} B, billed as {record_kb} KB each",
        measured=True,
    )
    out.add(
        "Kinesis data out",
        gb_out,
        prices["kinesis_on_demand_data_out"],
        "read once by the processor's event source mapping",
        measured=True,
    )
    extra_hours = max(0, deployment.kinesis_retention_hours - 24)
    out.add(
        "Kinesis retention",
        gb_out / HOURS_PER_MONTH * extra_hours,
        prices["kinesis_on_demand_extended_retention"],
        f"{deployment.kinesis_retention_hours} h kept: the {extra_hours} h past 24 h",
        measured=True,
    )


def _lambda(
    out: _Lines,
    s: Scenario,
    t: _Traffic,
    prices: Prices,
    measured: Measured,
    deployment: Deployment,
) -> float:
    """Requests and compute (processor and sweeper); returns the monthly dollars the
    pessimistic timing would add."""
    sweep = measured.sweep
    sweeps = deployment.sweeps_per_month
    out.add(
        "Lambda requests",
        t.invocations + sweeps,
        prices["lambda_requests"],
        f"{t.invocations:,.0f} processor invocations ({t.readings_each:.3g} readings each) "
        f"+ {sweeps:,} sweeps",
    )
    gb = deployment.memory_mb / 1024
    wall = t.per_invocation("wall_ms")
    sweep_wall = sweep.wall_ms.at(s.devices, 0)
    seconds = (t.invocations * math.ceil(wall) + sweeps * math.ceil(sweep_wall)) / 1000
    share = LAMBDA_VCPU_MB / deployment.memory_mb
    estimate = t.per_invocation("own_ms") * share + t.per_invocation("calls") * ASSUMED_CALL_MS
    sweep_estimate = (
        sweep.own_ms.at(s.devices, 0) * share + sweep.calls.at(s.devices, 0) * ASSUMED_CALL_MS
    )
    estimate_seconds = (
        t.invocations * math.ceil(estimate) + sweeps * math.ceil(sweep_estimate)
    ) / 1000
    price = prices["lambda_gb_second_arm64"]
    delta = (estimate_seconds - seconds) * gb * price.each
    out.add(
        "Lambda compute",
        seconds * gb,
        price,
        f"{wall:.1f} ms an invocation measured on moto, in process, on the benchmark machine "
        f"(sweep {sweep_wall:.0f} ms), {deployment.memory_mb} MB arm64. Not Lambda timing: "
        f"at {deployment.memory_mb} MB a function has 1/{share:.1f} of a vCPU and each AWS "
        f"call takes milliseconds; {estimate:.0f} ms (own time x {share:.1f} + "
        f"{ASSUMED_CALL_MS:g} ms a call, assumed) would add ${delta / t.readings * 1e6:.3f}/M",
        measured=True,
    )
    return delta


def _readings_table(
    out: _Lines,
    s: Scenario,
    t: _Traffic,
    prices: Prices,
    measured: Measured,
    deployment: Deployment,
) -> None:
    ia = s.table_class is TableClass.STANDARD_IA
    klass = "Standard-IA" if ia else "Standard"
    suffix = "ia" if ia else "standard"
    item = measured.telemetry_item_bytes
    puts = t.invocations * t.per_invocation("telemetry_puts")
    index = {
        FleetIndex.ALL: item,
        FleetIndex.KEYS_ONLY: measured.table_key_bytes + measured.fleet_key_bytes,
        FleetIndex.NONE: 0.0,
    }[s.fleet_index]
    writes = [("DynamoDB writes: readings", puts * write_units(item), f"{item:.0f} B items")]
    if s.fleet_index is not FleetIndex.NONE:
        writes.append(
            (
                "DynamoDB writes: fleet index",
                puts * write_units(index),
                f"GSI fleet-timestamp ({s.fleet_index}): one more write a reading, "
                f"{index:.0f} B entries",
            )
        )
    for name, units, what in writes:
        if s.capacity is Capacity.PROVISIONED:
            per_second = units / SECONDS_PER_MONTH
            provisioned = max(
                deployment.min_write_capacity, per_second / deployment.target_utilisation
            )
            out.add(
                name,
                provisioned * HOURS_PER_MONTH,
                prices[f"dynamodb_provisioned_wcu_hour_{suffix}"],
                f"{klass}, provisioned: {per_second:,.1f} WCU used / "
                f"{deployment.target_utilisation:.0%} target = {provisioned:,.0f} WCU "
                f"(autoscaling min {deployment.min_write_capacity}); {what}",
                measured=True,
            )
        else:
            out.add(
                name,
                units,
                prices[f"dynamodb_on_demand_write_{suffix}"],
                f"{klass}, on demand; {what}",
                measured=True,
            )
    if s.capacity is Capacity.PROVISIONED:
        tables = 1 + (s.fleet_index is not FleetIndex.NONE)
        out.add(
            "DynamoDB reads: readings (minimum)",
            tables * deployment.min_read_capacity * HOURS_PER_MONTH,
            prices[f"dynamodb_provisioned_rcu_hour_{suffix}"],
            f"provisioned read capacity kept at the autoscaling minimum "
            f"({deployment.min_read_capacity} RCU, table and index); ingest reads no history",
        )
    days = deployment.ttl_days + deployment.ttl_lag_days
    stored = s.readings_per_second * days * 86400
    table_gb = stored * (item + ITEM_OVERHEAD_BYTES) / GB
    kept = f"{days:g} days kept (TTL {deployment.ttl_days} d + deletion lag)"
    out.add(
        f"DynamoDB storage: readings ({deployment.ttl_days} d)",
        table_gb,
        prices[f"dynamodb_storage_{suffix}"],
        f"{klass}; {stored:,.0f} items of {item:.0f} + {ITEM_OVERHEAD_BYTES} B; {kept}",
        measured=True,
    )
    if s.fleet_index is not FleetIndex.NONE:
        out.add(
            f"DynamoDB storage: fleet index ({deployment.ttl_days} d)",
            stored * (index + ITEM_OVERHEAD_BYTES) / GB,
            prices[f"dynamodb_storage_{suffix}"],
            f"the same readings again in the GSI: {index:.0f} + {ITEM_OVERHEAD_BYTES} B each",
            measured=True,
        )
    out.add(
        "DynamoDB PITR: readings",
        table_gb,
        prices["dynamodb_pitr"],
        "continuous backups, on the base table's size",
        measured=True,
    )


def _device_state(
    out: _Lines,
    s: Scenario,
    t: _Traffic,
    prices: Prices,
    measured: Measured,
    deployment: Deployment,
) -> None:
    device = measured.device_item_bytes
    writes = t.invocations * t.per_invocation("state_writes") * write_units(device)
    reads = t.invocations * t.per_invocation("state_reads") * read_units(device)
    each = "Kinesis record" if s.mode is Mode.KINESIS else "message"
    out.add(
        "DynamoDB writes: device state",
        writes,
        prices["dynamodb_on_demand_write_standard"],
        f"devices table (on demand): one update a {each}, so 1/{s.batch} a reading; "
        f"{device:.0f} B item",
        measured=True,
    )
    out.add(
        "DynamoDB reads: device state",
        reads,
        prices["dynamodb_on_demand_read_standard"],
        f"one strongly consistent read a {each}",
        measured=True,
    )
    sweep = measured.sweep
    per_sweep = read_units(sweep.read_bytes.at(s.devices, 0), consistent=sweep.consistent)
    out.add(
        "DynamoDB reads: sweeper",
        per_sweep * deployment.sweeps_per_month,
        prices["dynamodb_on_demand_read_standard"],
        f"every minute, each device's state: {per_sweep:,.0f} RRU a sweep",
        measured=True,
    )


def _observability(
    out: _Lines,
    s: Scenario,
    t: _Traffic,
    prices: Prices,
    measured: Measured,
    deployment: Deployment,
) -> None:
    sweep = measured.sweep
    log_bytes = t.invocations * (
        t.per_invocation("log_bytes") + LOG_EVENT_OVERHEAD * t.per_invocation("log_events")
    )
    sweep_bytes = deployment.sweeps_per_month * (
        sweep.log_bytes.at(s.devices, 0) + LOG_EVENT_OVERHEAD * sweep.log_events.at(s.devices, 0)
    )
    ingested = (log_bytes + sweep_bytes) / GB
    out.add(
        "CloudWatch Logs ingestion",
        ingested,
        prices["cloudwatch_logs_ingestion"],
        f"{log_bytes / t.readings:,.0f} B a reading: the reading's line "
        f"({measured.reading_log_bytes} B) and its share of the EMF document, "
        f"+{LOG_EVENT_OVERHEAD} B an event",
        measured=True,
    )
    months = deployment.log_retention_days / DAYS_PER_MONTH
    out.add(
        f"CloudWatch Logs storage ({deployment.log_retention_days} d)",
        ingested * measured.log_compression * months,
        prices["cloudwatch_logs_storage"],
        f"kept {deployment.log_retention_days} days, stored compressed "
        f"({measured.log_compression:.0%} of raw, gzip, measured)",
        measured=True,
    )
    scanned = (
        s.dashboard_views
        * deployment.dashboard_log_widgets
        * log_bytes
        / HOURS_PER_MONTH
        * deployment.dashboard_window_hours
        / GB
    )
    out.add(
        "Logs Insights (dashboard)",
        scanned,
        prices["cloudwatch_logs_insights"],
        f"{s.dashboard_views} dashboard views a month (assumed), each "
        f"{deployment.dashboard_log_widgets} queries over {deployment.dashboard_window_hours:g} h "
        f"of the processor's log",
        measured=True,
    )
    out.add(
        "CloudWatch metrics",
        deployment.custom_metrics,
        prices["cloudwatch_custom_metric"],
        "EMF metrics, one dimension (service): their number, not the rate, is billed",
    )
    scaling = 8 if s.capacity is Capacity.PROVISIONED else 0  # 2 per target-tracking policy
    alarms = deployment.alarms + (deployment.kinesis_alarms if s.mode is Mode.KINESIS else 0)
    out.add(
        "CloudWatch alarms",
        alarms + scaling,
        prices["cloudwatch_alarm"],
        f"{alarms} in observability.tf"
        + (f" + {scaling} made by the readings table's autoscaling" if scaling else ""),
    )
    out.add(
        "CloudWatch dashboard",
        deployment.dashboards,
        prices["cloudwatch_dashboard"],
        "one dashboard",
    )
    processor = xray_traces(t.invocations / SECONDS_PER_MONTH) * SECONDS_PER_MONTH
    sweeper = xray_traces(deployment.sweeps_per_month / SECONDS_PER_MONTH) * SECONDS_PER_MONTH
    out.add(
        "X-Ray traces",
        processor + sweeper,
        prices["xray_traces_recorded"],
        "active tracing: Lambda samples 1 invocation a second and 5% of the rest",
    )


def _other(out: _Lines, s: Scenario, t: _Traffic, prices: Prices, deployment: Deployment) -> None:
    out.add(
        "SQS (dead letters)",
        t.readings * s.dead_letter_share * 3,
        prices["sqs_requests"],
        f"{s.dead_letter_share:.1%} of readings rejected (assumed): send, receive, delete",
    )
    out.add(
        "KMS key",
        deployment.kms_keys,
        prices["kms_key"],
        "one customer-managed key; its requests are few (data keys are cached)",
    )

