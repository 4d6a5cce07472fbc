"""CPU per reading of the processing function (validate, detect, build the record) against
``json.loads`` of the same payload (the floor), on 100,000 realistic readings.

    python -m benchmarks.processing_core --readings 100000
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

from benchmarks.report import write_section
from coldchain.adapters.memory import MemoryDeadLetterStore, MemoryReadingStore
from coldchain.core.device_model import DeviceModel, scenario_mix
from coldchain.core.messages import Message
from coldchain.core.processing import Processor, validate_message
from coldchain.core.topics import telemetry_topic


def realistic(count: int, devices: int = 100) -> list[Message]:
    models = [
        DeviceModel(f"reefer-{n:04d}", s, seed=1, fleet_id="fleet-1", gps=True)
        for n, s in enumerate(scenario_mix(devices), start=1)
    ]
    start = datetime.now(UTC) - timedelta(days=2)
    out = []
    for i in range(count):
        model = models[i % devices]
        at = start + timedelta(seconds=10 * (i // devices))
        payload = json.dumps(model.sample(at).to_wire()).encode()
        out.append(Message(telemetry_topic(model.device_id), payload, at + timedelta(seconds=1)))
    return out


def cpu_per(fn: object, messages: list[Message], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        fn(messages)  # type: ignore[operator]
        best = min(best, time.process_time() - began)
    return best / len(messages) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    messages = realistic(args.readings)
    size = sum(len(m.payload) for m in messages) / len(messages)

    def loads(batch: list[Message]) -> None:
        for m in batch:
            json.loads(m.payload)

    def validate(batch: list[Message]) -> None:
        for m in batch:
            validate_message(m)

    def process(batch: list[Message]) -> None:
        processor = Processor(MemoryReadingStore(), MemoryDeadLetterStore())
        for i in range(0, len(batch), args.batch):
            processor.process_batch(batch[i : i + args.batch])

    floor = cpu_per(loads, messages)
    checked = cpu_per(validate, messages)
    full = cpu_per(process, messages, repeat=2)
    ratio = full / floor
    body = "\n".join(
        [
            f"{args.readings:,} readings from 100 simulated devices (all scenarios, GPS on), "
            f"{size:.0f} bytes on average; CPU time (best of runs) per reading.",
            "",
            "| stage | µs per reading | x json.loads |",
            "|---|---|---|",
            f"| `json.loads` (the floor) | {floor:.1f} | 1.0 |",
            f"| validate (`validate_message`: pydantic strict, topic, clock) "
            f"| {checked:.1f} | {checked / floor:.1f} |",
            f"| process (`Processor.process_batch`, batches of {args.batch}: validate, "
            f"in-memory store, detect) | {full:.1f} | {ratio:.1f} |",
            "",
            f"Target: within 10x of json.loads. Result: {ratio:.1f}x "
            f"({'met' if ratio <= 10 else 'missed'}).",
        ]
    )
    write_section("processing-core", "Processing core", body)


if __name__ == "__main__":
    main()
