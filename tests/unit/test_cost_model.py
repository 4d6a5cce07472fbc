"""The cost model on made-up inputs: its arithmetic, not AWS's prices (the functional tests
use the packaged data files)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from coldchain.cost.inputs import (
    HandlerFigures,
    Linear,
    Measured,
    Price,
    Prices,
    SweepFigures,
    item_bytes,
    read_units,
    write_units,
)
from coldchain.cost.model import bill, cheapest
from coldchain.cost.scenario import (
    HOURS_PER_MONTH,
    PRICE_KEYS,
    SECONDS_PER_MONTH,
    Bill,
    Capacity,
    Deployment,
    FleetIndex,
    Mode,
    Scenario,
    TableClass,
    iot_units,
    kinesis_invocations_per_second,
    xray_traces,
)

HANDLER = HandlerFigures(
    wall_ms=Linear(10.0, 0.0, 1.5),
    own_ms=Linear(1.0, 0.0, 0.1),
    calls=Linear(2.0, 0.0, 1.0),
    log_bytes=Linear(300.0, 0.0, 330.0),
    log_events=Linear(1.0, 0.0, 1.0),
    telemetry_puts=Linear(0.0, 0.0, 1.0),
    state_writes=Linear(1.0, 0.0, 0.0),
    state_reads=Linear(1.0, 0.0, 0.0),
)
KINESIS = replace(
    HANDLER,
    wall_ms=Linear(0.0, 8.0, 1.5),
    state_writes=Linear(0.0, 1.0, 0.0),
    state_reads=Linear(0.0, 1.0, 0.0),
)
MEASURED = Measured(
    date="2026-11-27",
    command="python -m benchmarks.aws_cost_inputs",
    machine="test",
    method="made up",
    reading_bytes=250.0,
    batch_base_bytes=40.0,
    batch_reading_bytes=220.0,
    topic_bytes=34.0,
    basic_ingest_topic_bytes=65.0,
    rule_output_base_bytes=124.0,
    telemetry_item_bytes=200.0,
    table_key_bytes=53.0,
    fleet_key_bytes=19.0,
    device_item_bytes=470.0,
    reading_log_line='{"event_type":"READING"}',
    log_compression=0.1,
    iot=HANDLER,
    kinesis=KINESIS,
    sweep=SweepFigures(
        wall_ms=Linear(4.0, 1.0),
        own_ms=Linear(0.1, 0.04),
        calls=Linear(2.0),
        log_bytes=Linear(290.0),
        log_events=Linear(1.0),
        read_bytes=Linear(0.0, 370.0),
        consistent=False,
    ),
)
# Round prices: every unit costs a dollar a million, except what the tests single out.
PRICES = Prices(
    "us-east-1",
    "2026-11-27",
    {
        key: Price(key, 1.0, 1_000_000, "unit", "made up", "2026-11-27", verified=False)
        for key in PRICE_KEYS
    },
)


def priced(**changes: float) -> Prices:
    items = dict(PRICES.items)
    for key, usd in changes.items():
        items[key] = replace(items[key], usd=usd)
    return replace(PRICES, items=items)


def fleet(mode: Mode = Mode.LAMBDA, batch: int = 1, **choices: object) -> Scenario:
    return Scenario(1000, 10.0, mode, batch, **choices)  # type: ignore[arg-type]


def quantity(b: Bill, name: str) -> float:
    line = b.line(name)
    assert line is not None, f"no line {name!r}: {[x.name for x in b.lines]}"
    return line.quantity


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("batch", [1, 7, 100])
def test_line_items_add_up_to_the_total(mode: Mode, batch: int) -> None:
    b = bill(fleet(mode, batch), PRICES, MEASURED)
    assert b.monthly == pytest.approx(sum(line.monthly for line in b.lines))
    assert b.per_million == pytest.approx(sum(line.per_million for line in b.lines))
    assert b.per_million == pytest.approx(b.monthly / b.readings * 1e6)
    for line in b.lines:
        assert line.monthly == pytest.approx(line.quantity * line.unit_price), line.name
    assert b.readings == pytest.approx(1000 / 10 * SECONDS_PER_MONTH)


def test_only_the_declared_prices_are_read() -> None:
    for mode in Mode:
        for capacity in Capacity:
            for table_class in TableClass:
                scenario = fleet(mode, 3, capacity=capacity, table_class=table_class)
                assert {line.price_key for line in bill(scenario, PRICES, MEASURED).lines} <= (
                    PRICE_KEYS
                )


@pytest.mark.parametrize("mode", [Mode.LAMBDA, Mode.BASIC_INGEST])
def test_batching_divides_messages_rules_invocations_and_state_writes_by_the_batch(
    mode: Mode,
) -> None:
    one, ten = (bill(fleet(mode, batch), PRICES, MEASURED) for batch in (1, 10))
    names = ["IoT rules triggered", "IoT rule actions", "DynamoDB writes: device state"]
    if mode is Mode.LAMBDA:
        names.append("IoT messaging")
    for name in names:
        assert quantity(one, name) == pytest.approx(10 * quantity(ten, name)), name
    sweeps = Deployment().sweeps_per_month
    requests = [quantity(b, "Lambda requests") - sweeps for b in (one, ten)]
    assert requests[0] == pytest.approx(10 * requests[1])
    # Compute grows with the readings in an invocation: it falls, by less than the batch.
    compute = [quantity(b, "Lambda compute") for b in (one, ten)]
    assert compute[1] < compute[0] < 10 * compute[1]
    # Each reading is still stored: the readings table's writes do not change.
    assert quantity(one, "DynamoDB writes: readings") == quantity(ten, "DynamoDB writes: readings")


def test_kinesis_batches_only_the_device_batch_divides_the_state_writes() -> None:
    """An event source batch spans at most a second, less than a device's interval: each of
    its records is another device, so only a device's own batch saves state writes."""
    one, ten = (bill(fleet(Mode.KINESIS, batch), PRICES, MEASURED) for batch in (1, 10))
    assert quantity(one, "DynamoDB writes: device state") == pytest.approx(
        10 * quantity(ten, "DynamoDB writes: device state")
    )
    assert quantity(one, "Kinesis stream") == quantity(ten, "Kinesis stream") == HOURS_PER_MONTH


def test_basic_ingest_has_no_messaging_line() -> None:
    b = bill(fleet(Mode.BASIC_INGEST), PRICES, MEASURED)
    assert b.line("IoT messaging") is None
    assert b.line("IoT rules triggered") is not None
    assert bill(fleet(Mode.LAMBDA), PRICES, MEASURED).line("IoT messaging") is not None


def test_iot_meters_per_5_kb_started() -> None:
    assert iot_units(1) == iot_units(5 * 1024) == 1
    assert iot_units(5 * 1024 + 1) == iot_units(6 * 1024) == 2
    assert iot_units(0) == 1  # an empty message is still a message


def test_a_6_kb_message_counts_2() -> None:
    big = replace(MEASURED, reading_bytes=6 * 1024 - MEASURED.topic_bytes)
    b = bill(fleet(), PRICES, big)
    assert quantity(b, "IoT messaging") == pytest.approx(2 * b.readings)
    assert quantity(b, "IoT rules triggered") == pytest.approx(2 * b.readings)
    # The action carries the payload in base64: 4/3 of 6 KB, still 2 units.
    assert quantity(b, "IoT rule actions") == pytest.approx(2 * b.readings)


def test_the_rule_action_grows_by_base64() -> None:
    """3,900 bytes fit one message unit but not one action: base64 makes them 5,200+."""
    payload = 3900 - MEASURED.topic_bytes
    b = bill(fleet(), PRICES, replace(MEASURED, reading_bytes=payload))
    assert quantity(b, "IoT messaging") == pytest.approx(b.readings)
    assert quantity(b, "IoT rule actions") == pytest.approx(2 * b.readings)


def test_an_open_capacity_mode_and_table_class_are_chosen_by_total() -> None:
    chosen = bill(fleet(), PRICES, MEASURED)
    explicit = [
        bill(fleet(capacity=c, table_class=t), PRICES, MEASURED)
        for c in Capacity
        for t in TableClass
    ]
    assert chosen.monthly == pytest.approx(min(b.monthly for b in explicit))
    assert len(chosen.alternatives) == 3
    # Make on-demand writes free: the model follows the prices.
    free = priced(dynamodb_on_demand_write_standard=0.0, dynamodb_on_demand_write_ia=0.0)
    assert bill(fleet(), free, MEASURED).scenario.capacity is Capacity.ON_DEMAND


def test_provisioned_capacity_is_the_used_rate_over_the_target_and_at_least_the_minimum() -> None:
    deployment = Deployment(target_utilisation=0.5, min_write_capacity=5)
    b = bill(fleet(capacity=Capacity.PROVISIONED), PRICES, MEASURED, deployment)
    # 100 readings a second, one 1 KB write each: 200 WCU at 50%.
    assert quantity(b, "DynamoDB writes: readings") == pytest.approx(200 * HOURS_PER_MONTH)
    small = Scenario(10, 10.0, capacity=Capacity.PROVISIONED)
    assert quantity(bill(small, PRICES, MEASURED, deployment), "DynamoDB writes: readings") == (
        pytest.approx(5 * HOURS_PER_MONTH)
    )


def test_the_fleet_index_costs_a_write_and_the_storage_again() -> None:
    every = bill(fleet(fleet_index=FleetIndex.ALL, capacity=Capacity.ON_DEMAND), PRICES, MEASURED)
    writes = quantity(every, "DynamoDB writes: readings")
    assert quantity(every, "DynamoDB writes: fleet index") == pytest.approx(writes)
    assert quantity(every, "DynamoDB storage: fleet index (90 d)") == pytest.approx(
        quantity(every, "DynamoDB storage: readings (90 d)")
    )
    keys = bill(fleet(fleet_index=FleetIndex.KEYS_ONLY), PRICES, MEASURED)
    assert quantity(keys, "DynamoDB storage: fleet index (90 d)") < quantity(
        keys, "DynamoDB storage: readings (90 d)"
    )
    none = bill(fleet(fleet_index=FleetIndex.NONE), PRICES, MEASURED)
    assert not [line for line in none.lines if "fleet index" in line.name]
    assert none.monthly < keys.monthly < every.monthly


def test_storage_keeps_the_ttl_and_the_deletion_lag_with_the_item_overhead() -> None:
    b = bill(fleet(), PRICES, MEASURED, Deployment(ttl_days=90, ttl_lag_days=2))
    items = 100 * 92 * 86400
    assert quantity(b, "DynamoDB storage: readings (90 d)") == pytest.approx(
        items * (200 + 100) / 1024**3
    )
    assert quantity(b, "DynamoDB PITR: readings") == quantity(
        b, "DynamoDB storage: readings (90 d)"
    )


def test_kinesis_batches_follow_the_pollers_until_they_are_full() -> None:
    deployment = Deployment(kinesis_shards=4, kinesis_parallelization=2, kinesis_window_s=1.0)
    assert kinesis_invocations_per_second(100, deployment) == 8  # 12.5 records each
    assert kinesis_invocations_per_second(5, deployment) == 5  # one record each
    assert kinesis_invocations_per_second(10_000, deployment) == 100  # full batches of 100


def test_xray_samples_one_a_second_and_5_percent_of_the_rest() -> None:
    assert xray_traces(0.5) == 0.5
    assert xray_traces(1) == 1
    assert xray_traces(101) == pytest.approx(6)


def test_logs_are_the_bytes_measured_plus_the_event_overhead() -> None:
    b = bill(fleet(capacity=Capacity.ON_DEMAND), PRICES, MEASURED)
    sweeps = Deployment().sweeps_per_month * (290 + 26)
    processor = b.readings * (300 + 330 + 26 * 2)  # batch 1: one invocation a reading
    assert quantity(b, "CloudWatch Logs ingestion") == pytest.approx((processor + sweeps) / 1024**3)


def test_a_batch_spanning_the_silence_time_is_flagged() -> None:
    assert any("silence" in note for note in bill(fleet(batch=30), PRICES, MEASURED).notes)
    assert not any("silence" in n for n in bill(fleet(batch=10), PRICES, MEASURED).notes)


def test_cheapest_keeps_uploads_within_the_delay() -> None:
    found = cheapest(fleet(), PRICES, MEASURED, max_delay_s=150)
    assert found.scenario.batch * found.scenario.interval_s <= 150
    assert found.scenario.capacity is not None
    every = [bill(fleet(m, b), PRICES, MEASURED).monthly for m in Mode for b in range(1, 16)]
    assert found.monthly == pytest.approx(min(every))


@pytest.mark.parametrize(
    ("devices", "interval", "batch"), [(0, 10.0, 1), (1, 0.0, 1), (1, 10.0, 0), (1, 10.0, 101)]
)
def test_a_scenario_refuses_what_cannot_be(devices: int, interval: float, batch: int) -> None:
    with pytest.raises(ValueError, match=r"devices|interval|batch"):
        Scenario(devices, interval, batch=batch)


def test_dynamodb_item_sizes() -> None:
    assert item_bytes({"id": {"S": "dev-1"}}) == 2 + 5
    assert item_bytes({"n": {"N": "12345"}}) == 1 + math.ceil(5 / 2) + 1
    assert item_bytes({"n": {"N": "-1.50"}}) == 1 + 1 + 1 + 1  # 2 significant digits, minus
    assert item_bytes({"m": {"M": {"a": {"BOOL": True}}}}) == 1 + 3 + (1 + 1 + 1)
    assert write_units(1) == write_units(1024) == 1
    assert write_units(1025) == 2
    assert read_units(4096) == 1
    assert read_units(4097, consistent=False) == 1
