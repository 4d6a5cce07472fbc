"""Who gets in, and what they may do: revocation, expiry, ACLs, TLS versions, plain TCP."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldchain.adapters.mosquitto import BrokerConfig, MosquittoProcess
from coldchain.adapters.pki import LocalPki
from coldchain.tls import client_context
from tests.stack import Stack, free_port, reading_body, tls_connects, wait_until

NOT_AUTHORIZED = 135


def device_context(pki: LocalPki, device_id: str) -> ssl.SSLContext:
    credentials = pki.device(device_id)
    return client_context(credentials.ca, credentials.cert, credentials.key)


def test_a_revoked_certificate_is_refused_after_a_broker_restart(stack: Stack) -> None:
    assert tls_connects(stack.port, device_context(stack.pki, "dev-4"), "dev-4")
    stack.pki.revoke("dev-4")
    stack.broker.stop()
    stack.broker.start()
    assert not tls_connects(stack.port, device_context(stack.pki, "dev-4"), "dev-4")
    assert tls_connects(stack.port, device_context(stack.pki, "dev-5"), "dev-5")


def test_an_expired_certificate_is_refused(stack: Stack) -> None:
    stack.pki.issue_device(
        "old-device", validity=timedelta(days=30), not_before=datetime.now(UTC) - timedelta(days=60)
    )
    assert not tls_connects(stack.port, device_context(stack.pki, "old-device"), "old-device")


class Listener:
    """A device client that subscribes and records what it receives."""

    def __init__(self, stack: Stack, device_id: str, topic: str) -> None:
        self.received: list[str] = []
        self.granted: list[int] = []
        subscribed = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{device_id}-listen",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.tls_set_context(device_context(stack.pki, device_id))

        def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
            c.subscribe(topic, qos=1)

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: list[Any], p: Any) -> None:
            self.granted = [int(r.value) for r in reasons]
            subscribed.set()

        def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
            self.received.append(message.topic)

        client.on_connect, client.on_subscribe, client.on_message = (
            on_connect,
            on_subscribe,
            on_message,
        )
        client.connect("127.0.0.1", stack.port)
        client.loop_start()
        assert subscribed.wait(10)
        self.client = client

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_cannot_read_other_devices_or_the_processor_stream(stack: Stack) -> None:
    # The dynamic-security plugin refuses each SUBSCRIBE outright (reason 135), the
    # processors' shared group included, so nothing is received and nothing diverted.
    stack.start_worker()
    spies = [
        Listener(stack, "dev-1", topic)
        for topic in (
            "#",
            "dt/coldchain/dev-2/telemetry",
            "$share/processors/dt/coldchain/+/telemetry",
        )
    ]
    try:
        sender = stack.device("dev-2")
        sender.publish_all([reading_body("dev-2", seq) for seq in range(20)])
        wait_until(lambda: stack.count() == 20, 20, "every reading stored by the processor")
        time.sleep(1.0)
        for spy in spies:
            assert spy.granted == [NOT_AUTHORIZED]  # refused at SUBSCRIBE
            assert spy.received == []
    finally:
        for spy in spies:
            spy.close()


def test_a_device_cannot_publish_outside_its_prefix_with_either_protocol(stack: Stack) -> None:
    stack.start_worker()
    v5 = stack.device("dev-1")
    mids = [
        v5.publish(json.dumps(reading_body("dev-2", 0)), topic=topic)
        for topic in ("dt/coldchain/dev-2/telemetry", "dt/other/dev-1", "cmd/coldchain/dev-1")
    ]
    wait_until(lambda: all(mid in v5.reason_codes for mid in mids), 10, "PUBACKs")
    assert [v5.reason_codes[mid] for mid in mids] == [NOT_AUTHORIZED] * 3
    legacy = stack.device("dev-1-legacy", protocol=MQTTProtocolVersion.MQTTv311, cert_of="dev-1")
    legacy.publish(json.dumps(reading_body("dev-2", 1)), topic="dt/coldchain/dev-2/telemetry")
    stack.device("dev-3").publish_all([reading_body("dev-3", 0)])
    wait_until(lambda: stack.count() == 1, 20, "the marker")
    assert stack.count("readings", "device_id = 'dev-2'") == 0
    assert stack.count("dead_letters") == 0


def test_tls_below_1_2_and_plain_tcp_are_refused(stack: Stack) -> None:
    old = device_context(stack.pki, "dev-1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # asking for old TLS on purpose
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as tcp:
        try:
            with old.wrap_socket(tcp, server_hostname="localhost"):
                handshake_ok = True
        except (ssl.SSLError, OSError):
            handshake_ok = False
    assert not handshake_ok
    # Plain MQTT CONNECT bytes on the TLS port: no CONNACK ever comes back.
    connect = (
        bytes([0x10, 0x10, 0x00, 0x04])
        + b"MQTT"
        + bytes([0x04, 0x02, 0x00, 0x3C, 0x00, 0x04])
        + b"dev1"
    )
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as raw:
        raw.sendall(connect)
        try:
            answer = raw.recv(4)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"\x20")  # 0x20 would be a CONNACK


def test_the_broker_only_listens_on_loopback_by_default(tmp_path: Path, shared_pki: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(shared_pki, home / "pki")
    config = BrokerConfig(home / "broker", LocalPki(home / "pki"), port=free_port())
    process = MosquittoProcess(config)
    process.start()
    try:
        text = config.config_file.read_text()
        assert f"listener {config.port} 127.0.0.1" in text
        assert "allow_anonymous false" in text
        assert "require_certificate true" in text
        assert f"crlfile {config.pki.crl}" in text
        assert process.pid is not None
        assert listening_ports(process.pid) == [config.port]  # no default 1883 listener
    finally:
        process.stop()


def listening_ports(pid: int) -> list[int]:
    """The TCP ports a process listens on (from /proc: its socket inodes in LISTEN state)."""
    inodes = {
        link.readlink().name[len("socket:[") : -1]
        for link in Path(f"/proc/{pid}/fd").iterdir()
        if link.readlink().name.startswith("socket:[")
    }
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)
