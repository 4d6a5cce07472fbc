"""Identity binds the session: a device cannot take a worker's client id, join the
processors' shared subscription, or keep a revoked certificate working (issue 12)."""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldchain.adapters.pki import LocalPki
from coldchain.tls import client_context
from tests.stack import Stack, reading_body, tls_connects, wait_until

WORKER_ID = "coldchain-worker-1"


def device_context(pki: LocalPki, device_id: str) -> ssl.SSLContext:
    credentials = pki.device(device_id)
    return client_context(credentials.ca, credentials.cert, credentials.key)


def impostor_connect(stack: Stack, device_id: str, client_id: str, clean_start: bool) -> None:
    """Connect with a device's certificate but someone else's client id, then leave."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.tls_set_context(device_context(stack.pki, device_id))
    done = threading.Event()

    def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", stack.port, clean_start=clean_start)
    client.loop_start()
    assert done.wait(10), "no CONNACK for the impostor"
    client.disconnect()
    client.loop_stop()


def coldchain(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldchain", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_device_using_the_workers_client_id_during_a_stream_changes_nothing(
    stack: Stack,
) -> None:
    worker = stack.start_worker(WORKER_ID)
    sender = stack.device("dev-2")
    bodies = [reading_body("dev-2", seq) for seq in range(300)]
    stream = threading.Thread(target=sender.publish_all, args=(bodies,))
    stream.start()
    for attempt in range(8):
        impostor_connect(stack, "dev-1", WORKER_ID, clean_start=attempt % 2 == 0)
    stream.join(60)
    wait_until(lambda: stack.count() == 300, 30, "all 300 readings stored")
    assert worker.poll() is None
    assert stack.worker_log(WORKER_ID).count("connected (session present") == 1  # never kicked


def test_a_clean_start_impostor_cannot_discard_the_workers_queued_backlog(stack: Stack) -> None:
    worker = stack.start_worker(WORKER_ID)
    assert stack.stop_worker(worker) == 0
    stack.device("dev-2").publish_all([reading_body("dev-2", seq) for seq in range(500)])
    impostor_connect(stack, "dev-1", WORKER_ID, clean_start=True)
    stack.start_worker(WORKER_ID)
    wait_until(lambda: stack.count() == 500, 30, "the 500 queued readings stored")


def test_a_device_cannot_join_the_processors_shared_subscription(stack: Stack) -> None:
    stack.start_worker("worker-a", shared=True)
    stack.start_worker("worker-b", shared=True)
    refused: list[int] = []
    subscribed = threading.Event()
    thief = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="dev-1", protocol=MQTTProtocolVersion.MQTTv5
    )
    thief.tls_set_context(device_context(stack.pki, "dev-1"))

    def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        c.subscribe("$share/processors/dt/coldchain/+/telemetry", qos=1)

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: list[Any], p: Any) -> None:
        refused.extend(int(r.value) for r in reasons)
        subscribed.set()

    thief.on_connect, thief.on_subscribe = on_connect, on_subscribe
    thief.connect("127.0.0.1", stack.port)
    thief.loop_start()
    try:
        assert subscribed.wait(10)
        assert refused == [135]
        stack.device("dev-2").publish_all([reading_body("dev-2", seq) for seq in range(300)])
        wait_until(lambda: stack.count() == 300, 30, "all 300 stored by the two workers")
    finally:
        thief.disconnect()
        thief.loop_stop()


def test_revocation_covers_earlier_certificates_and_the_running_broker_reloads(
    stack: Stack, tmp_path: Path
) -> None:
    original = stack.pki.device("dev-3")
    holdout = tmp_path / "holdout"
    holdout.mkdir()
    shutil.copy(original.cert, holdout / "dev-3.crt")
    shutil.copy(original.key, holdout / "dev-3.key")
    old_context = client_context(original.ca, holdout / "dev-3.crt", holdout / "dev-3.key")
    assert tls_connects(stack.port, old_context, "dev-3")
    # A re-issue (the files were lost, a new serial) ...
    original.cert.unlink()
    original.key.unlink()
    reissued = coldchain(stack.home, "pki", "issue", "dev-3")
    assert reissued.returncode == 0, reissued.stderr
    assert tls_connects(stack.port, device_context(stack.pki, "dev-3"), "dev-3")
    # ... then the device is revoked, with the broker running: both certificates refused.
    revoked = coldchain(stack.home, "pki", "revoke", "dev-3")
    assert revoked.returncode == 0, revoked.stderr
    assert "reloaded" in revoked.stdout
    assert not tls_connects(stack.port, device_context(stack.pki, "dev-3"), "dev-3")
    assert not tls_connects(stack.port, old_context, "dev-3")
    assert tls_connects(stack.port, device_context(stack.pki, "dev-4"), "dev-4")
    # and after a restart as well.
    stack.broker.stop()
    stack.broker.start()
    assert not tls_connects(stack.port, old_context, "dev-3")
    assert not tls_connects(stack.port, device_context(stack.pki, "dev-3"), "dev-3")


def test_a_device_issued_while_the_broker_runs_is_admitted_at_once(stack: Stack) -> None:
    stack.start_worker(WORKER_ID)
    issued = coldchain(stack.home, "pki", "issue", "late-device")
    assert issued.returncode == 0, issued.stderr
    stack.device("late-device").publish_all([reading_body("late-device", 0)])
    wait_until(lambda: stack.count() == 1, 20, "the new device's reading stored")


def test_a_worker_stops_cleanly_on_sigterm_with_its_own_identity(stack: Stack) -> None:
    worker = stack.start_worker("coldchain-worker-7")
    assert (stack.pki.directory / "processors" / "coldchain-worker-7.crt").exists()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
