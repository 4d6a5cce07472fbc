"""The measured inputs of the cost model: the real Lambda handlers on moto, counted.

    python -m benchmarks.aws_cost_inputs

Runs ``iot_rule_handler`` with messages of 1, 10 and 100 readings, ``kinesis_handler`` with
batches of records from distinct devices, and ``sweep_handler`` over 50 and 500 devices, on
moto (in process), with the Lambda environment Terraform sets and a Lambda context. Per
invocation it records the wall time, the time outside AWS SDK calls, the SDK calls, what the
handler wrote to stdout (log lines and the EMF document) and the DynamoDB writes and reads by
table; it fits each figure as fixed + per message + per reading, and sizes the items and
payloads. It writes ``src/coldchain/data/aws_cost_inputs.json`` (read by ``coldchain aws
cost``) and its section of docs/performance.md. Readings come from the simulator's device
model (GPS on, fleet id set), serialised as the simulator does.

moto timing is not Lambda timing: moto runs in this process on this machine's CPU, and a
real DynamoDB call takes milliseconds; the model says so where it uses these figures.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import os
import secrets
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.client

from benchmarks.report import machine, write_section
from coldchain.adapters import iot_rule_output
from coldchain.apps.simulator.batching import encode_batch, encode_reading
from coldchain.core.device_model import DeviceModel
from coldchain.core.reading import Reading
from coldchain.core.topics import telemetry_topic
from coldchain.cost.data import MEASURED_FILE, data_path
from coldchain.cost.inputs import Linear, item_bytes, linear_mapping

REGION = "eu-west-1"  # tests.aws.REGION: where create_stack makes the tables
RULE_NAME = "coldchain_telemetry"  # iot.tf: replace("${name_prefix}_telemetry", "-", "_")
FLEET = "fleet-north"
INTERVAL = timedelta(seconds=10)
COMMAND = "python -m benchmarks.aws_cost_inputs"
# The Lambda environment of lambda.tf, and an X-Ray header as active tracing sets it (the
# logger copies its root into every line).
LAMBDA_ENV = {
    "POWERTOOLS_SERVICE_NAME": "coldchain-processor",
    "POWERTOOLS_METRICS_NAMESPACE": "ColdChain",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "_X_AMZN_TRACE_ID": (
        "Root=1-6747a1b2-3f5e8c1d9a0b4c6e8f1a2b3c;Parent=53995c3f42cd8ad8;Sampled=1"
    ),
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
READS = {"GetItem", "BatchGetItem", "Query", "Scan"}


@dataclass
class LambdaContext:
    function_name: str = "coldchain-processor"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:coldchain-processor"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Calls:
    """The AWS SDK calls of one invocation: count, time, DynamoDB bytes read."""

    count: int = 0
    seconds: float = 0.0
    by_op: Counter[tuple[str, str]] = field(default_factory=Counter)
    read_keys: int = 0
    read_bytes: int = 0
    consistent: bool = False


class Recorder:
    """Wraps botocore's API call to record every call the handlers make."""

    def __init__(self) -> None:
        self.calls = Calls()
        # (botocore's private hook: the one place every client call passes, untyped in stubs)
        self._original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = self._original
        recorder = self

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            started = time.perf_counter()
            try:
                return_value = original(client, operation, params)
            finally:
                recorder.calls.seconds += time.perf_counter() - started
            recorder._record(operation, params, return_value)
            return return_value

        setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)  # noqa: B010
        try:
            yield
        finally:
            setattr(botocore.client.BaseClient, "_make_api_call", original)  # noqa: B010

    def _record(self, operation: str, params: dict[str, Any], answer: dict[str, Any]) -> None:
        calls = self.calls
        calls.count += 1
        table = params.get("TableName") or next(iter(params.get("RequestItems", {"-": 0})))
        calls.by_op[(operation, str(table).rsplit("-", 1)[-1])] += 1
        if operation == "BatchGetItem":
            for request in params["RequestItems"].values():
                calls.read_keys += len(request["Keys"])
                calls.consistent = bool(request.get("ConsistentRead"))
            for items in answer.get("Responses", {}).values():
                calls.read_bytes += sum(item_bytes(item) for item in items)
        elif operation in ("Scan", "Query"):
            calls.consistent = bool(params.get("ConsistentRead"))
            calls.read_bytes += sum(item_bytes(item) for item in answer.get("Items", []))

    def take(self) -> Calls:
        calls, self.calls = self.calls, Calls()
        return calls


@dataclass(frozen=True)
class Sample:
    """One invocation, measured."""

    wall_ms: float
    own_ms: float
    calls: int
    log_bytes: int
    log_events: int
    telemetry_puts: int
    state_writes: int
    state_reads: int
    read_bytes: int
    consistent: bool

    def figure(self, name: str) -> float:
        return float(getattr(self, name))


FIGURES = (
    "wall_ms",
    "own_ms",
    "calls",
    "log_bytes",
    "log_events",
    "telemetry_puts",
    "state_writes",
    "state_reads",
)


class Bench:
    """The handlers on moto, each invocation measured."""

    def __init__(self, handler_module: Any, recorder: Recorder, stack: Any) -> None:
        self.lambda_handler = handler_module
        self.recorder = recorder
        self.stack = stack
        self.output = io.StringIO()
        self.all_output = io.StringIO()
        handler_module.logger.registered_handler.setStream(self.output)
        self.models: dict[str, DeviceModel] = {}
        self.clock: dict[str, datetime] = {}

    def readings(self, device: str, count: int) -> list[Reading]:
        """The next ``count`` readings of a device, 10 s apart."""
        model = self.models.setdefault(device, DeviceModel(device, fleet_id=FLEET, gps=True))
        start = self.clock.get(device, datetime.now(UTC) - timedelta(minutes=30))
        self.clock[device] = start + count * INTERVAL
        return [model.sample(start + n * INTERVAL) for n in range(count)]

    def invoke(self, call: Callable[[], dict[str, Any]], expect: str | None = None) -> Sample:
        """One invocation, measured; ``expect``: the outcome every reading must have."""
        # A new trace and request id each invocation, as Lambda gives (the logs' compression
        # depends on it).
        os.environ["_X_AMZN_TRACE_ID"] = (
            f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
            f"Parent={secrets.token_hex(8)};Sampled=1"
        )
        self.recorder.take()
        self.output.seek(0)
        self.output.truncate()
        with contextlib.redirect_stdout(self.output):
            started = time.perf_counter()
            answer = call()
            wall = time.perf_counter() - started
        if expect is not None and answer.get("outcome") not in (expect, "batch"):
            raise AssertionError(f"not {expect}: {answer}")
        if answer.get("outcome") == "batch" and set(answer) - {"outcome", expect}:
            raise AssertionError(f"not all {expect}: {answer}")
        calls = self.recorder.take()
        text = self.output.getvalue()
        self.all_output.write(text)
        return Sample(
            wall_ms=wall * 1000,
            own_ms=(wall - calls.seconds) * 1000,
            calls=calls.count,
            log_bytes=len(text.encode()),
            log_events=text.count("\n"),
            telemetry_puts=calls.by_op[("PutItem", "telemetry")],
            state_writes=calls.by_op[("UpdateItem", "devices")],
            state_reads=calls.read_keys,
            read_bytes=calls.read_bytes,
            consistent=calls.consistent,
        )

    def iot(self, device: str, batch: int) -> Sample:
        readings = self.readings(device, batch)
        payload = wire(device, readings)
        event = rule_output(self.rule_fields(), payload, telemetry_topic(device))
        return self.invoke(
            lambda: self.lambda_handler.iot_rule_handler(event, LambdaContext()), "stored"
        )

    def kinesis(self, devices: list[str], batch: int) -> Sample:
        names = self.rule_fields()
        records = []
        for index, device in enumerate(devices):
            payload = wire(device, self.readings(device, batch))
            document = rule_output(names, payload, telemetry_topic(device))
            records.append(kinesis_record(index, json.dumps(document).encode()))
        event = {"Records": records}
        return self.invoke(lambda: self.lambda_handler.kinesis_handler(event, LambdaContext()))

    def sweep(self) -> Sample:
        return self.invoke(lambda: self.lambda_handler.sweep_handler({}, LambdaContext()))

    def rule_fields(self) -> tuple[str, str, str]:
        return (
            iot_rule_output.PAYLOAD_FIELD,
            iot_rule_output.TOPIC_FIELD,
            iot_rule_output.RECEIVED_AT_FIELD,
        )


def wire(device: str, readings: list[Reading]) -> bytes:
    """A message as the simulator sends it: one reading, or a batch."""
    if len(readings) == 1:
        return encode_reading(readings[0])
    count, payload = encode_batch(device, readings, len(readings))
    assert count == len(readings)
    return payload


def rule_output(names: tuple[str, str, str], payload: bytes, topic: str) -> dict[str, Any]:
    """The rule's SELECT result for a message (lambda_handler's RULE_SQL)."""
    payload_field, topic_field, received_field = names
    return {
        payload_field: base64.b64encode(payload).decode(),
        topic_field: topic,
        received_field: int(time.time() * 1000),
    }


def kinesis_record(index: int, data: bytes) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "reefer",
            "sequenceNumber": f"4959{index:052d}",
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": time.time(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:4959{index:052d}",
        "eventName": "aws:kinesis:record",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/coldchain-telemetry",
    }


def median_sample(samples: list[Sample]) -> dict[str, float]:
    return {name: statistics.median(s.figure(name) for s in samples) for name in FIGURES}


def fit_iot(one: dict[str, float], many: dict[str, float], batch: int) -> dict[str, Linear]:
    """fixed + per_reading from batches of 1 and ``batch`` (one message an invocation)."""
    out = {}
    for name in FIGURES:
        per_reading = max(0.0, (many[name] - one[name]) / (batch - 1))
        out[name] = Linear(fixed=max(0.0, one[name] - per_reading), per_reading=per_reading)
    return out


def fit_kinesis(
    small: dict[str, float],
    large: dict[str, float],
    batched: dict[str, float],
    k: tuple[int, int],
    b: int,
) -> dict[str, Linear]:
    """fixed + per_message + per_reading from (k0 records of 1), (k1 records of 1) and
    (k0 records of b readings); negative noise clipped to 0."""
    k0, k1 = k
    out = {}
    for name in FIGURES:
        per_reading = max(0.0, (batched[name] - small[name]) / (k0 * (b - 1)))
        both = (large[name] - small[name]) / (k1 - k0)
        per_message = max(0.0, both - per_reading)
        fixed = max(0.0, small[name] - k0 * (per_message + per_reading))
        out[name] = Linear(fixed, per_message, per_reading)
    return out


def payload_sizes(bench: Bench) -> dict[str, float]:
    """Message sizes as the simulator encodes them, over a thousand readings of one device."""
    device = "reefer-0001"
    bench.clock.pop(device, None)
    bench.models.pop(device, None)
    samples = bench.readings(device, 1000)
    single = statistics.mean(len(encode_reading(r)) for r in samples)
    batches = [samples[n : n + 100] for n in range(0, 1000, 100)]
    hundred = statistics.mean(len(encode_batch(device, b, 100)[1]) for b in batches)
    ten = statistics.mean(len(encode_batch(device, b[:10], 10)[1]) for b in batches)
    per_reading = (hundred - ten) / 90
    payload = encode_reading(samples[0])
    document = rule_output(bench.rule_fields(), payload, telemetry_topic(device))
    compact = json.dumps(document, separators=(",", ":")).encode()
    topic = telemetry_topic(device)
    return {
        "reading_bytes": round(single, 1),
        "batch_base_bytes": round(hundred - 100 * per_reading, 1),
        "batch_reading_bytes": round(per_reading, 1),
        "topic_bytes": len(topic),
        "basic_ingest_topic_bytes": len(f"$aws/rules/{RULE_NAME}/{topic}"),
        "rule_output_base_bytes": len(compact) - len(base64.b64encode(payload)),
    }


def item_sizes(stack: Any, device: str) -> dict[str, float]:
    client = stack.dynamodb
    found = client.query(
        TableName=stack.telemetry,
        KeyConditionExpression="device_id = :d",
        ExpressionAttributeValues={":d": {"S": device}},
        Limit=50,
    )["Items"]
    state = client.get_item(TableName=stack.devices, Key={"device_id": {"S": device}})["Item"]

    def mean(keys: tuple[str, ...] | None) -> float:
        sizes = [
            item_bytes({k: v for k, v in i.items() if keys is None or k in keys}) for i in found
        ]
        return round(statistics.mean(sizes), 1)

    return {
        "telemetry_item_bytes": mean(None),
        "table_key_bytes": mean(("device_id", "timestamp")),
        "fleet_key_bytes": mean(("fleet_id",)),
        "device_item_bytes": item_bytes(state),
    }


@contextlib.contextmanager
def lambda_on_moto() -> Iterator[tuple[Any, Callable[[str], Any]]]:
    """The handler module inside moto, and a function that points it at a fresh stack."""
    os.environ.update(LAMBDA_ENV)
    from moto import mock_aws  # noqa: PLC0415 - the environment first

    from coldchain import config  # noqa: PLC0415
    from coldchain.apps import lambda_handler  # noqa: PLC0415
    from tests.aws import create_stack  # noqa: PLC0415

    def fresh(prefix: str) -> Any:
        stack = create_stack(prefix)
        os.environ.update(
            {
                config.ENV_TELEMETRY_TABLE: stack.telemetry,
                config.ENV_DEVICES_TABLE: stack.devices,
                config.ENV_EVENTS_TABLE: stack.events,
                config.ENV_DLQ_URL: stack.dlq_url,
                config.ENV_ALARMS_TABLE: stack.alarms,
                config.ENV_ALARM_TOPIC_ARN: stack.topic_arn,
            }
        )
        lambda_handler._wiring.cache_clear()
        return stack

    with mock_aws():
        yield lambda_handler, fresh


def measure() -> dict[str, Any]:
    recorder = Recorder()
    with lambda_on_moto() as (handler, fresh), recorder.installed():
        # The sweeper over 50 and 500 devices that reported a moment ago.
        bench = Bench(handler, recorder, fresh("sweep"))
        sweeps: dict[int, dict[str, float]] = {}
        fleet = [f"reefer-{n:04d}" for n in range(1, 501)]
        seeded = 0
        for devices in (50, 500):
            for device in fleet[seeded:devices]:
                bench.clock[device] = datetime.now(UTC) - INTERVAL
                bench.iot(device, 1)
            seeded = devices
            samples = [bench.sweep() for _ in range(6)][1:]
            sweeps[devices] = {
                **median_sample(samples),
                "read_bytes": statistics.median(s.read_bytes for s in samples),
                "consistent": float(samples[0].consistent),
            }

        # The processors, on a fresh stack: each device seen once first (its repair path).
        bench = Bench(handler, recorder, fresh("bench"))
        start = datetime.now(UTC) - timedelta(hours=3)
        for device in fleet:
            bench.clock[device] = start
            bench.iot(device, 1)
        iot = {}
        for batch, count in ((1, 300), (10, 60), (100, 12)):
            iot[batch] = median_sample([bench.iot(fleet[n % 50], batch) for n in range(count)])
        bench.all_output.seek(0)
        bench.all_output.truncate()
        for n in range(200):
            bench.iot(fleet[n % 50], 1)
        logged = bench.all_output.getvalue()
        kinesis = {}
        for k, b, runs in ((10, 1, 30), (100, 1, 10), (10, 10, 20)):
            kinesis[(k, b)] = median_sample(
                [bench.kinesis(fleet[100 + (n * k) % 400 :][:k], b) for n in range(runs)]
            )
        sizes = item_sizes(bench.stack, fleet[0])
        payload = payload_sizes(bench)
    reading_line = next(line for line in logged.splitlines() if '"READING"' in line)
    raw = logged.encode()
    return {
        "iot": iot,
        "kinesis": kinesis,
        "sweeps": sweeps,
        "sizes": sizes,
        "payload": payload,
        "reading_line": reading_line,
        "compression": round(len(gzip.compress(raw)) / len(raw), 3),
    }


def per_device(
    small: dict[str, float], large: dict[str, float], k: tuple[int, int]
) -> dict[str, Any]:
    """fixed + per device, from sweeps over k[0] and k[1] devices."""
    out: dict[str, Any] = {}
    for name in (*FIGURES, "read_bytes"):
        slope = max(0.0, (large[name] - small[name]) / (k[1] - k[0]))
        out[name] = linear_mapping(
            Linear(fixed=max(0.0, small[name] - k[0] * slope), per_message=slope)
        )
    out["consistent"] = bool(small["consistent"])
    return out


def document(data: dict[str, Any]) -> dict[str, Any]:
    """The measured-figures file."""
    iot = fit_iot(data["iot"][1], data["iot"][100], 100)
    kinesis = fit_kinesis(
        data["kinesis"][(10, 1)],
        data["kinesis"][(100, 1)],
        data["kinesis"][(10, 10)],
        (10, 100),
        10,
    )
    check = {name: round(iot[name].at(1, 10), 2) for name in FIGURES}
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": COMMAND,
        "machine": machine(),
        "method": (
            "The real handlers (coldchain.apps.lambda_handler) on moto, in process, with "
            "lambda.tf's environment and a Lambda context; medians per invocation. IoT rule: "
            "300 messages of 1 reading, 60 of 10, 12 of 100, over 50 devices in order (each "
            "device seen once before); fitted fixed + per reading from 1 and 100 (the fit "
            "gives at 10: "
            + ", ".join(f"{k} {v}" for k, v in check.items())
            + "; measured: "
            + ", ".join(f"{k} {round(v, 2)}" for k, v in data["iot"][10].items())
            + "). Kinesis: batches of 10 and 100 records of 1 reading and 10 records of 10, "
            "each record a different device. Sweeper: 50 and 500 devices that reported a "
            "moment before. Time outside the SDK is wall time minus time in "
            "botocore's _make_api_call. Log bytes: what the handler wrote to stdout (Powertools "
            "log lines and the EMF document), one CloudWatch event per line. DynamoDB: calls "
            "counted by operation and table, device items read counted by key; item sizes by "
            "DynamoDB's rules (cost_inputs.item_bytes). moto timing is not Lambda timing."
        ),
        "payload": data["payload"],
        "dynamodb": data["sizes"],
        "logs": {"reading_log_line": data["reading_line"], "compression": data["compression"]},
        "handlers": {
            "iot": {name: linear_mapping(value) for name, value in iot.items()},
            "kinesis": {name: linear_mapping(value) for name, value in kinesis.items()},
        },
        "sweep": per_device(data["sweeps"][50], data["sweeps"][500], (50, 500)),
        "points": {
            "iot": {str(b): v for b, v in data["iot"].items()},
            "kinesis": {f"{k} records of {b}": v for (k, b), v in data["kinesis"].items()},
            "sweep": {f"{d} devices": v for d, v in data["sweeps"].items()},
        },
    }


def section(doc: dict[str, Any]) -> str:
    points = doc["points"]
    rows = [
        "| run (per invocation, medians) | wall ms | outside SDK ms | AWS calls | log bytes "
        "| log lines | readings PutItem | state UpdateItem | state items read |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, values in [
        *((f"IoT rule, {b} reading(s) a message", v) for b, v in points["iot"].items()),
        *((f"Kinesis, {k}", v) for k, v in points["kinesis"].items()),
        *((f"sweeper, {k}", v) for k, v in points["sweep"].items()),
    ]:
        cells = " | ".join(f"{values[f]:,.1f}" for f in FIGURES)
        rows.append(f"| {name} | {cells} |")
    line = doc["logs"]["reading_log_line"]
    sizes = {**doc["payload"], **doc["dynamodb"]}
    return "\n".join(
        [
            "The inputs of `coldchain aws cost`, written to `src/coldchain/data/"
            f"{MEASURED_FILE}`. The real handlers on moto, in process: **moto timing is not "
            "Lambda timing** (see the Lambda compute line of the cost tables).",
            "",
            *rows,
            "",
            "Sizes (bytes): " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + ".",
            "",
            f"The per-reading log line is **{len(line.encode()) + 1} bytes** (no payload echo; "
            "the X-Ray trace id included as active tracing sets it):",
            "",
            f"```\n{line}\n```",
            "",
            f"Logs compress to {doc['logs']['compression']:.0%} of their size (gzip), the "
            "figure used for CloudWatch Logs storage.",
        ]
    )


def main() -> None:
    doc = document(measure())
    path = data_path(MEASURED_FILE)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")
    write_section("aws-cost-inputs", "Measured inputs of the AWS cost model", section(doc))


if __name__ == "__main__":
    main()
