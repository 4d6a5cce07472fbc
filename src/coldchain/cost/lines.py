"""The bill's lines, each a quantity times a price: IoT Core, Kinesis, Lambda, the readings
table, device state, observability, the rest. Pure arithmetic over a :class:`Traffic`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from coldchain.cost.inputs import (
    ITEM_OVERHEAD_BYTES,
    HandlerFigures,
    Measured,
    Price,
    Prices,
    read_units,
    write_units,
)
from coldchain.cost.scenario import (
    ASSUMED_CALL_MS,
    DAYS_PER_MONTH,
    GB,
    HOURS_PER_MONTH,
    KINESIS_RECORD_UNIT,
    LAMBDA_VCPU_MB,
    LOG_EVENT_OVERHEAD,
    MINUTES_PER_MONTH,
    SECONDS_PER_MONTH,
    Capacity,
    Deployment,
    FleetIndex,
    LineItem,
    Mode,
    Scenario,
    TableClass,
    iot_units,
    kinesis_invocations_per_second,
    payload_bytes,
    rule_output_bytes,
    xray_traces,
)


@dataclass
class Lines:
    """The lines of one bill, as they are priced."""

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
class Traffic:
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


def traffic(s: Scenario, measured: Measured, deployment: Deployment) -> Traffic:
    readings = s.readings_per_second * SECONDS_PER_MONTH
    messages = readings / s.batch
    payload = payload_bytes(measured, s.batch)
    if s.mode is Mode.KINESIS:
        rate = kinesis_invocations_per_second(messages / SECONDS_PER_MONTH, deployment)
        invocations, handler = rate * SECONDS_PER_MONTH, measured.kinesis
    else:
        invocations, handler = messages, measured.iot
    return Traffic(
        readings, messages, invocations, payload, rule_output_bytes(measured, payload), handler
    )


def price_lines(
    s: Scenario, t: Traffic, prices: Prices, measured: Measured, deployment: Deployment
) -> tuple[list[LineItem], float]:
    """Every line of the bill, and the monthly dollars a pessimistic Lambda time would add."""
    out = Lines(t.readings)
    _iot(out, s, t, prices, measured)
    if s.mode is Mode.KINESIS:
        _kinesis(out, t, prices, deployment)
    estimate_delta = _lambda(out, s, t, prices, measured, deployment)
    _readings_table(out, s, t, prices, measured, deployment)
    _device_state(out, s, t, prices, measured, deployment)
    _observability(out, s, t, prices, measured, deployment)
    _other(out, s, t, prices, deployment)
    return out.lines, estimate_delta


def _iot(out: Lines, s: Scenario, t: Traffic, prices: Prices, measured: Measured) -> None:
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


def _kinesis(out: Lines, t: Traffic, prices: Prices, deployment: Deployment) -> None:
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
    out: Lines,
    s: Scenario,
    t: Traffic,
    prices: Prices,
    measured: Measured,
    deployment: Deployment,
) -> float:
    """Requests and compute (processor and sweeper); returns the monthly dollars the
    pessimistic timing would add.
    """
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
    out: Lines,
    s: Scenario,
    t: Traffic,
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
        indexed = s.fleet_index is not FleetIndex.NONE
        out.add(
            "DynamoDB reads: readings (minimum)",
            (1 + indexed) * deployment.min_read_capacity * HOURS_PER_MONTH,
            prices[f"dynamodb_provisioned_rcu_hour_{suffix}"],
            f"read capacity at the autoscaling minimum ({deployment.min_read_capacity} RCU"
            f"{' each, table and index' if indexed else ''}): ingest reads no history",
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
    out: Lines,
    s: Scenario,
    t: Traffic,
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
    each_device = max(sweep.read_bytes.per_message, device)  # the sweep ran on fresh devices
    scanned = sweep.read_bytes.fixed + s.devices * each_device
    per_sweep = read_units(scanned, consistent=sweep.consistent)
    out.add(
        "DynamoDB reads: sweeper",
        per_sweep * deployment.sweeps_per_month,
        prices["dynamodb_on_demand_read_standard"],
        f"every minute, each device's state ({scanned / 1024:,.0f} KB, "
        f"{'strongly' if sweep.consistent else 'eventually'} consistent): "
        f"{per_sweep:,.1f} RRU a sweep",
        measured=True,
        unit="read request unit",
    )


def _observability(
    out: Lines,
    s: Scenario,
    t: Traffic,
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
    # Target tracking makes 2 alarms per policy: writes and reads, of the table and its index.
    policies = 2 * (1 + (s.fleet_index is not FleetIndex.NONE))
    scaling = 2 * policies if s.capacity is Capacity.PROVISIONED else 0
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


def _other(out: Lines, s: Scenario, t: Traffic, prices: Prices, deployment: Deployment) -> None:
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
