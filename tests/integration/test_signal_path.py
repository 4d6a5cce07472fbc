"""The local signal path end to end: device -> mosquitto (mTLS, ACL) -> worker -> SQLite."""

from __future__ import annotations

import json
import random
import signal
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldchain.adapters.mosquitto import MosquittoProcess
from coldchain.adapters.pki import LocalPki
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic
from coldchain.tls import client_context
from tests.functional.test_batches import batch
from tests.stack import DEVICES, Stack, reading_body, tls_connects, wait_until

NOT_AUTHORIZED = 135


def test_five_devices_200_readings_each_stored_once_in_time_order(stack: Stack) -> None:
    stack.start_worker()
    devices = DEVICES[:5]
    for device_id in devices:
        bodies = [reading_body(device_id, seq) for seq in range(200)]
        random.Random(device_id).shuffle(bodies[100:])  # part of the stream arrives out of order
        stack.device(device_id).publish_all(bodies)
    wait_until(lambda: stack.count() == 1000, 30, "1,000 readings stored")
    for device_id in devices:
        rows = stack.rows(
            "SELECT seq, ts FROM readings WHERE device_id = ? ORDER BY ts", (device_id,)
        )
        assert [seq for seq, _ in rows] == list(range(200))
    assert stack.count("dead_letters") == 0
    assert stack.rows("SELECT device_id, readings FROM devices ORDER BY device_id") == [
        (device_id, 200) for device_id in devices
    ]


def test_no_client_certificate_is_refused(broker_only: MosquittoProcess, tmp_path: Path) -> None:
    pki = broker_only.config.pki
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    assert not tls_connects(broker_only.config.port, context)
    device = pki.device("dev-1")
    assert tls_connects(broker_only.config.port, client_context(device.ca, device.cert, device.key))


def test_certificate_from_another_ca_is_refused(
    broker_only: MosquittoProcess, tmp_path: Path
) -> None:
    stranger = LocalPki(tmp_path / "other-ca")
    stranger.init()
    forged = stranger.issue_device("dev-1")  # the right CN, the wrong CA
    context = client_context(broker_only.config.pki.ca_cert, forged.cert, forged.key)
    assert not tls_connects(broker_only.config.port, context, client_id="dev-1")


def test_a_device_cannot_publish_for_another(stack: Stack) -> None:
    stack.start_worker()
    intruder = stack.device("dev-1")
    # 1. On the other device's topic: the broker refuses (MQTT v5 reason 135).
    mid = intruder.publish(reading_body("dev-2", 0), topic="dt/coldchain/dev-2/telemetry")
    # 2. On its own topic, claiming the other's id: the worker rejects it.
    intruder.publish_all([reading_body("dev-2", 1)])
    wait_until(lambda: mid in intruder.reason_codes, 10, "PUBACK")
    assert intruder.reason_codes[mid] == NOT_AUTHORIZED
    wait_until(lambda: stack.count("dead_letters") == 1, 20, "the impostor dead-lettered")
    # 3. Over MQTT 3.1.1 the broker drops it silently (and still sends a PUBACK).
    legacy = stack.device("dev-1-legacy", protocol=MQTTProtocolVersion.MQTTv311, cert_of="dev-1")
    legacy.publish_all([json.dumps(reading_body("dev-2", 2))])
    stack.device("dev-3").publish_all([reading_body("dev-3", 0)])  # a marker behind them
    wait_until(lambda: stack.count() == 1, 20, "the marker stored")
    assert stack.count("readings", "device_id = ?", ("dev-2",)) == 0
    [(reason,)] = stack.rows("SELECT reason FROM dead_letters")
    assert "does not match topic device 'dev-1'" in reason


def test_duplicates_are_stored_once_and_conflicts_kept_aside(stack: Stack) -> None:
    stack.start_worker()
    device = stack.device("dev-1")
    original = reading_body("dev-1", 0)
    device.publish_all([original, original, {**original, "temperature_c": 9.9}])
    wait_until(lambda: stack.count("dead_letters") == 1, 20, "the conflict dead-lettered")
    assert stack.rows("SELECT temperature_c FROM readings") == [(original["temperature_c"],)]
    [(kind, payload, reason)] = stack.rows("SELECT kind, payload, reason FROM dead_letters")
    assert kind == "conflict"
    assert json.loads(payload)["temperature_c"] == 9.9
    assert "temperature_c" in reason


def test_malformed_payloads_are_dead_lettered_and_the_worker_goes_on(stack: Stack) -> None:
    worker = stack.start_worker()
    device = stack.device("dev-1")
    future = datetime.now(UTC) + timedelta(minutes=30)
    bad = {
        "not JSON": b"{not json",
        "wrong type": json.dumps(reading_body("dev-1", 1, temperature_c="3.2")).encode(),
        "missing field": json.dumps(
            {"device_id": "dev-1", "timestamp": "2024-01-15T09:00:00Z"}
        ).encode(),
        "out of range": json.dumps(reading_body("dev-1", 2, humidity_pct=140)).encode(),
        "future": json.dumps(reading_body("dev-1", 3, at=future)).encode(),
        "100 KB": json.dumps(reading_body("dev-1", 4, firmware_version="x" * 100_000)).encode(),
    }
    device.publish_all(bad.values())
    device.publish_all([reading_body("dev-1", 10), reading_body("dev-1", 11)])
    wait_until(
        lambda: stack.count() == 2 and stack.count("dead_letters") == len(bad), 20, "outcomes"
    )
    reasons = dict(stack.rows("SELECT size, reason FROM dead_letters"))
    expected = {
        len(bad["not JSON"]): "not valid JSON",
        len(bad["wrong type"]): "temperature_c: must be a number",
        len(bad["missing field"]): "temperature_c: is required",
        len(bad["out of range"]): "humidity_pct",
        len(bad["future"]): "clock fault",
        len(bad["100 KB"]): "larger than",
    }
    for size, fragment in expected.items():
        assert fragment in reasons[size]
    assert worker.poll() is None


def test_worker_killed_mid_stream_loses_nothing_and_stores_nothing_twice(stack: Stack) -> None:
    worker = stack.start_worker()
    device = stack.device("dev-1")
    bodies = [reading_body("dev-1", seq) for seq in range(2000)]
    device.publish_all(bodies[:700])
    wait_until(lambda: stack.count() > 0, 20, "the worker storing")
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    device.publish_all(bodies[700:])  # queued by the broker for the worker's session
    stack.start_worker()
    wait_until(lambda: stack.count() == 2000, 60, "all 2,000 readings stored")
    seqs = [seq for (seq,) in stack.rows("SELECT seq FROM readings ORDER BY ts")]
    assert seqs == list(range(2000))
    assert stack.count("dead_letters") == 0


def test_original_reference_payload_flows_through(stack: Stack) -> None:
    stack.start_worker()
    device = stack.device("cold-chain-sim-01")
    original = {
        "device_id": "cold-chain-sim-01",
        "timestamp": (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "temperature_c": 3.2,
        "humidity_pct": 68,
        "shock_g": 0.02,
        "battery_pct": 94,
        "latitude": 47.6062,
        "longitude": -122.3321,
        "firmware_version": "1.0.0",
    }
    device.publish_all([original])
    wait_until(lambda: stack.count() == 1, 20, "the reading stored")
    [(temperature, latitude, seq, fleet)] = stack.rows(
        "SELECT temperature_c, latitude, seq, fleet_id FROM readings"
    )
    assert (temperature, latitude, seq, fleet) == (3.2, 47.6062, None, None)


def test_sigterm_drains_and_exits_zero(stack: Stack) -> None:
    worker = stack.start_worker()
    stack.device("dev-1").publish_all([reading_body("dev-1", seq) for seq in range(300)])
    assert stack.stop_worker(worker, signal.SIGTERM) == 0
    stack.start_worker("coldchain-worker-1")
    wait_until(lambda: stack.count() == 300, 30, "every reading stored")
    assert "totals:" in stack.worker_log()


def test_two_workers_on_the_shared_subscription_split_the_stream(stack: Stack) -> None:
    stack.start_worker("worker-a", shared=True)
    stack.start_worker("worker-b", shared=True)
    for device_id in DEVICES[:4]:
        stack.device(device_id).publish_all([reading_body(device_id, seq) for seq in range(100)])
    wait_until(lambda: stack.count() == 400, 30, "400 readings stored")
    wait_until(lambda: "totals:" in stack.worker_log("worker-b"), 20, "worker-b's totals")
    assert "stored=" in stack.worker_log("worker-a")
    assert "stored=" in stack.worker_log("worker-b")
    assert stack.count("dead_letters") == 0


def test_a_200_kb_publish_is_refused_by_the_broker(stack: Stack) -> None:
    stack.start_worker()
    oversized = json.dumps(reading_body("dev-1", 0, firmware_version="x" * 200_000))
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="dev-1", protocol=MQTTProtocolVersion.MQTTv5
    )
    credentials = stack.pki.device("dev-1")
    client.tls_set_context(client_context(credentials.ca, credentials.cert, credentials.key))
    outcome: list[str] = []
    connected = threading.Event()

    def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        connected.set()

    def on_publish(c: mqtt.Client, u: Any, mid: int, reason: Any, p: Any) -> None:
        outcome.append(f"puback {int(reason.value)}")

    def on_disconnect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        outcome.append(f"disconnected {reason}")

    client.on_connect, client.on_publish, client.on_disconnect = (
        on_connect,
        on_publish,
        on_disconnect,
    )
    client.connect("127.0.0.1", stack.port)
    client.loop_start()
    try:
        assert connected.wait(10)
        client.publish(telemetry_topic("dev-1"), oversized, qos=1)
        wait_until(lambda: bool(outcome), 10, "a refusal")
    finally:
        client.loop_stop()
    assert outcome[0] != "puback 0", outcome
    stack.device("dev-2").publish_all([reading_body("dev-2", 0)])
    wait_until(lambda: stack.count() == 1, 20, "a normal reading after it")
    assert stack.count("dead_letters") == 0  # refused at the broker, never reached a worker


def test_a_devices_dead_letters_stop_at_its_quota_and_the_drops_are_counted(
    stack: Stack,
) -> None:
    stack.start_worker()
    flood = stack.device("dev-1")
    flood.publish_all([f"not json {n}".encode() for n in range(1100)], window=200)
    stack.device("dev-2").publish_all([b"not json either"])
    wait_until(
        lambda: (
            stack.rows("SELECT over_quota FROM dead_letter_drops WHERE device_id = 'dev-1'")
            == [(100,)]
            and stack.count("dead_letters", "device_id = 'dev-2'") == 1
        ),
        30,
        "100 letters dropped over dev-1's quota, and dev-2's kept",
    )
    assert stack.count("dead_letters", "device_id = 'dev-1'") == 1000
    assert stack.count("dead_letters", "device_id = 'dev-2'") == 1


def test_a_batched_upload_through_the_broker_stores_97_and_dead_letters_3(stack: Stack) -> None:
    body = batch("dev-1")
    base = datetime.now(UTC) - timedelta(hours=1)
    for n, reading in enumerate(body["readings"]):
        reading["timestamp"] = to_canonical(base + timedelta(seconds=10 * n))
    stack.start_worker()
    device = stack.device("dev-1")
    device.publish_all([body])
    device.close()
    wait_until(lambda: stack.count() == 97, 20, "97 readings stored")
    wait_until(lambda: stack.count("dead_letters") == 3, 20, "3 dead letters")
    reasons = sorted(row[0] for row in stack.rows("SELECT reason FROM dead_letters"))
    assert [r.split(":", 1)[0] for r in reasons] == ["readings[17]", "readings[42]", "readings[99]"]
