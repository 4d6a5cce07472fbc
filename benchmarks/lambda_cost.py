"""The AWS side: import time of the handler module in a fresh interpreter against importing
boto3 alone, the package size, and the cost per million readings for each ingestion mode.

    python -m benchmarks.lambda_cost

Prices (us-east-1, from shared/reference/aws-facts.md, which cites its sources; the IoT and
Kinesis figures there are marked unverified): IoT Core messaging $1.00 per million (5 KB
units), rules $0.15 per million triggered + $0.15 per million actions; Lambda $0.20 per
million requests + $0.0000133334 per GB-s on arm64; DynamoDB on demand $0.625 per million
WRU, $0.125 per million RRU; Kinesis on-demand $0.04 per stream-hour + $0.08 per GB in.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from typing import Final

from benchmarks.report import write_section

ROOT = Path(__file__).resolve().parents[1]
PRICES_DATE = "2026-11 (aws-facts.md)"
IOT_MESSAGE = 1.00
RULE = 0.15
ACTION = 0.15
LAMBDA_REQUEST = 0.20
GB_SECOND_ARM = 0.0000133334
WRU = 0.625
RRU = 0.125
# DynamoDB capacity units per in-order reading (write, read), measured by
# tests/functional/test_ingest_cost.py (run with -s to print; docs/architecture.md): one reading
# per invocation costs a telemetry PutItem, the device's state read and its UpdateItem; a
# Kinesis batch of 100 readings from 10 devices reads and writes each device once.
CAPACITY: Final = {"lambda": (2.0, 1.0), "kinesis": (1.1, 0.1)}
KINESIS_STREAM_HOUR = 0.04
KINESIS_GB_IN = 0.08


def import_seconds(module: str, runs: int = 7) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": ""},
        )
        times.append(float(done.stdout.strip()))
    return statistics.median(times)


def cost_per_million(
    mode: str,
    memory_gb: float = 0.25,
    ms_per_reading: float = 25.0,
    readings_per_second: float = 1000.0,
) -> dict[str, float]:
    """Dollars per million readings, by line item. DynamoDB capacity per reading as measured
    (CAPACITY)."""
    write_units, read_units = CAPACITY["kinesis" if mode == "kinesis" else "lambda"]
    items = {
        "IoT messaging": IOT_MESSAGE,
        "DynamoDB": write_units * WRU + read_units * RRU,
    }
    if mode == "lambda":
        items["IoT rule + action"] = RULE + ACTION
        items["Lambda requests"] = LAMBDA_REQUEST
        items["Lambda compute"] = 1e6 * ms_per_reading / 1000 * memory_gb * GB_SECOND_ARM
    elif mode == "basic-ingest":
        # $aws/rules/<rule>/... topics skip the messaging charge; the rule still runs.
        items["IoT messaging"] = 0.0
        items["IoT rule + action"] = RULE + ACTION
        items["Lambda requests"] = LAMBDA_REQUEST
        items["Lambda compute"] = 1e6 * ms_per_reading / 1000 * memory_gb * GB_SECOND_ARM
    else:  # kinesis: one rule action per reading into the stream, batches of 100 to Lambda
        items["IoT rule + action"] = RULE + ACTION
        seconds = 1e6 / readings_per_second
        items["Kinesis"] = seconds / 3600 * KINESIS_STREAM_HOUR + 1e6 * 0.3 / 1e6 * KINESIS_GB_IN
        items["Lambda requests"] = LAMBDA_REQUEST / 100
        items["Lambda compute"] = 1e6 * ms_per_reading * 0.4 / 1000 * memory_gb * GB_SECOND_ARM
    return items


def main() -> None:
    boto = import_seconds("boto3")
    handler = import_seconds("coldchain.apps.lambda_handler")
    subprocess.run(
        [str(ROOT / "scripts" / "build-lambda")],
        check=True,
        cwd=ROOT,
        capture_output=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    size = (ROOT / "dist" / "lambda.zip").stat().st_size
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| import boto3 alone (fresh interpreter, median of 7) | {boto * 1000:.0f} ms |",
        f"| import `coldchain.apps.lambda_handler` (boto3, Powertools, pydantic, the core) "
        f"| {handler * 1000:.0f} ms ({handler / boto:.1f}x boto3; target < 2x) |",
        f"| `dist/lambda.zip` | {size:,} bytes |",
        "",
        f"Cost per million readings (us-east-1 prices of {PRICES_DATE}; 256 MB arm64, 25 ms "
        "per reading assumed in Lambda; 0.3 KB per reading; 1,000 readings/s for Kinesis):",
        "",
        "| mode | total | line items |",
        "|---|---|---|",
    ]
    for mode in ("lambda", "basic-ingest", "kinesis"):
        items = cost_per_million(mode)
        detail = ", ".join(f"{k} ${v:.2f}" for k, v in items.items())
        lines.append(f"| {mode} | ${sum(items.values()):.2f} | {detail} |")
    lines += [
        "",
        "Basic Ingest (publishing to `$aws/rules/coldchain_telemetry/...`) would need the "
        "devices' topic and policy to change; the Terraform keeps the documented topic.",
    ]
    write_section("lambda-cost", "Lambda and cost per million readings", "\n".join(lines))


if __name__ == "__main__":
    main()
