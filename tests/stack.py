"""Helpers for integration tests: free ports, a broker, worker processes and device clients."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldchain.adapters.mosquitto import BrokerConfig, MosquittoProcess
from coldchain.adapters.pki import LocalPki
from coldchain.core.timestamps import to_canonical
from coldchain.core.topics import telemetry_topic
from coldchain.tls import client_context

DEVICES = (*(f"dev-{n}" for n in range(1, 6)), "cold-chain-sim-01")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")


def reading_body(
    device: str, seq: int, at: datetime | None = None, **fields: Any
) -> dict[str, Any]:
    """A valid reading ``seq`` seconds after a base time in the recent past."""
    moment = at or (datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=seq))
    body: dict[str, Any] = {
        "device_id": device,
        "timestamp": to_canonical(moment),
        "temperature_c": 4.0 + (seq % 7) / 10,
        "humidity_pct": 60.0,
        "shock_g": 0.01,
        "battery_pct": 90.0,
        "fleet_id": "fleet-t",
        "seq": seq,
    }
    body.update(fields)
    return body


@dataclass
class Device:
    """A paho MQTT v5 client with a device certificate, publishing QoS 1 with a window."""

    client: mqtt.Client
    device_id: str
    reason_codes: dict[int, int] = field(default_factory=dict)
    _acked: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def publish(self, payload: bytes | str | dict[str, Any], topic: str | None = None) -> int:
        raw = json.dumps(payload) if isinstance(payload, dict) else payload
        info = self.client.publish(topic or telemetry_topic(self.device_id), raw, qos=1)
        return info.mid

    def publish_all(
        self, payloads: Iterable[bytes | str | dict[str, Any]], window: int = 50
    ) -> None:
        """Publish and wait for every PUBACK, keeping at most ``window`` unacknowledged."""
        sent = 0
        for payload in payloads:
            if sent >= window:
                assert self._acked.acquire(timeout=20), "no PUBACK within 20 s"
            self.publish(payload)
            sent += 1
        for _ in range(min(sent, window)):
            assert self._acked.acquire(timeout=20), "no PUBACK within 20 s"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Stack:
    """A broker on a free port plus the worker processes a test starts."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.pki = LocalPki(home / "pki")
        self.port = free_port()
        self.db_path = home / "coldchain.db"
        self.broker = MosquittoProcess(BrokerConfig(home / "broker", self.pki, port=self.port))
        self.workers: list[subprocess.Popen[bytes]] = []
        self.devices: list[Device] = []

    def start_broker(self) -> None:
        self.broker.start()

    def start_worker(
        self,
        client_id: str = "coldchain-worker-1",
        *,
        shared: bool = False,
        extra: list[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        args = (["--shared"] if shared else []) + (extra or [])
        before = self.worker_log(client_id).count("processing 127.0.0.1")
        with (self.home / f"{client_id}.log").open("ab") as log:
            process = self._spawn_worker(client_id, log, args)
        self.workers.append(process)
        wait_until(
            lambda: self._worker_connected(client_id, process, before), 20, "worker subscribed"
        )
        return process

    def _spawn_worker(self, client_id: str, log: Any, extra: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coldchain",
                "--home",
                str(self.home),
                "worker",
                "--port",
                str(self.port),
                "--db",
                str(self.db_path),
                "--client-id",
                client_id,
                "--stats-every",
                "1",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLDCHAIN_LOG_LEVEL": "INFO"},
        )

    def _worker_connected(
        self, client_id: str, process: subprocess.Popen[bytes], before: int = 0
    ) -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"worker exited with {process.returncode}: {self.worker_log(client_id)}"
            )
        return self.worker_log(client_id).count("processing 127.0.0.1") > before

    def worker_log(self, client_id: str = "coldchain-worker-1") -> str:
        path = self.home / f"{client_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def device(
        self,
        device_id: str,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        cert_of: str | None = None,
    ) -> Device:
        """A connected device client (``cert_of`` borrows another identity's certificate)."""
        credentials = self.pki.device(cert_of or device_id)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=protocol)
        client.max_inflight_messages_set(1000)
        client.tls_set_context(client_context(credentials.ca, credentials.cert, credentials.key))
        device = Device(client, device_id)
        connected = threading.Event()

        def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
            if not reason.is_failure:
                connected.set()

        def on_publish(c: mqtt.Client, u: Any, mid: int, reason: Any, p: Any) -> None:
            device.reason_codes[mid] = int(reason.value)
            device._acked.release()

        client.on_connect = on_connect
        client.on_publish = on_publish
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        assert connected.wait(10), f"{device_id} could not connect"
        self.devices.append(device)
        return device

    def simulate(
        self, *args: str, stdout: int | None = subprocess.DEVNULL
    ) -> subprocess.Popen[str]:
        """``coldchain simulate`` against this broker, as a process (stderr piped)."""
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coldchain",
                "--home",
                str(self.home),
                "simulate",
                "--endpoint",
                "127.0.0.1",
                "--port",
                str(self.port),
                *args,
            ],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.db_path.exists():
            return []
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise

    def count(
        self, table: str = "readings", where: str = "1=1", params: tuple[Any, ...] = ()
    ) -> int:
        return int(self.rows(f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0])

    def stop_worker(self, process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        process.send_signal(sig)
        return process.wait(timeout=30)

    def close(self) -> None:
        for device in self.devices:
            device.close()
        for process in self.workers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        self.broker.stop()


def tls_connects(port: int, context: ssl.SSLContext, client_id: str = "probe") -> bool:
    """Whether an MQTT client with ``context`` gets a successful CONNACK within 5 s."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set_context(context)
    connected, ended = threading.Event(), threading.Event()

    def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        if not reason.is_failure:
            connected.set()
        ended.set()

    def on_end(*args: Any) -> None:
        ended.set()

    client.on_connect = on_connect
    client.on_disconnect = on_end
    client.on_connect_fail = on_end
    try:
        client.connect("127.0.0.1", port)
    except (OSError, ssl.SSLError):
        return False
    client.loop_start()
    try:
        ended.wait(5)
        return connected.is_set()
    finally:
        client.disconnect()
        client.loop_stop()
