"""A load generator: D device clients (mTLS, QoS 1, a window of unacknowledged publishes
each) sending N readings, as fast as they can or paced to a rate. Run as its own process.

    python -m benchmarks.publisher HOME PORT --devices 10 --count 30000 [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldchain.adapters.pki import LocalPki
from coldchain.core.topics import telemetry_topic
from coldchain.tls import client_context


def payloads(
    device: str, count: int, base: datetime, live: bool, offset: float = 0.0
) -> list[bytes]:
    out = []
    for seq in range(count):
        at = base + timedelta(milliseconds=100 * seq)
        body = {
            "device_id": device,
            "timestamp": "" if live else at.isoformat(),
            "temperature_c": round(4.0 + offset + (seq % 30) / 10, 1),
            "humidity_pct": 60.0,
            "shock_g": 0.01,
            "battery_pct": 90.0,
            "fleet_id": "bench",
            "seq": seq,
        }
        out.append(json.dumps(body).encode())
    return out


def run_device(
    home: Path,
    port: int,
    device: str,
    count: int,
    rate: float | None,
    window: int,
    start: threading.Barrier,
    offset: float = 0.0,
) -> None:
    credentials = LocalPki(home / "pki").device(device)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=device, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.tls_set_context(client_context(credentials.ca, credentials.cert, credentials.key))
    client.max_inflight_messages_set(window)
    acked = threading.Semaphore(0)
    client.on_publish = lambda c, u, mid, rc, p: acked.release()
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    connected.wait(10)
    base = datetime.now(UTC) - timedelta(hours=1)
    prepared = payloads(device, count, base, live=rate is not None, offset=offset)
    topic = telemetry_topic(device)
    start.wait()
    began = time.perf_counter()
    for seq, prepared_payload in enumerate(prepared):
        if seq >= window:
            acked.acquire()
        payload = prepared_payload
        if rate is not None:
            delay = began + seq / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body: dict[str, Any] = json.loads(payload)
            body["timestamp"] = datetime.now(UTC).isoformat()  # publish time, for latency
            payload = json.dumps(body).encode()
        client.publish(topic, payload, qos=1)
    for _ in range(min(window, count)):
        acked.acquire()
    client.disconnect()
    client.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--count", type=int, default=30_000)
    parser.add_argument("--rate", type=float, default=None, help="readings per second in total")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument(
        "--offset", type=float, default=0.0, help="added to every temperature (5: out of band)"
    )
    args = parser.parse_args()
    per_device = args.count // args.devices
    rate = None if args.rate is None else args.rate / args.devices
    barrier = threading.Barrier(args.devices)
    threads = [
        threading.Thread(
            target=run_device,
            args=(
                args.home,
                args.port,
                f"bench-{n:03d}",
                per_device,
                rate,
                args.window,
                barrier,
                args.offset,
            ),
        )
        for n in range(args.devices)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"published {per_device * args.devices} in {time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main()
