"""Commands through the real broker: the CLI queues, the control service sends and records,
the simulator's devices answer (a persistent session each, so a command sent while a device
is offline reaches it when it comes back, until it expires)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from coldchain.apps.simulator.fleet import Fleet, FleetOptions
from coldchain.core.device_model import DeviceModel, ModelSettings, Scenario
from coldchain.core.topics import (
    command_request_topic,
    command_response_topic,
    jobs_topic,
    shadow_topic,
)
from coldchain.tls import client_context
from tests.stack import Device, Stack, wait_until

DEVICE = "cmd-dev-1"
ABSENT = "cmd-dev-2"  # has a certificate, never connects


class Control:
    def __init__(self, stack: Stack) -> None:
        self.log = stack.home / "control.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "coldchain",
                    "--home",
                    str(stack.home),
                    "control",
                    "--port",
                    str(stack.port),
                    "--db",
                    str(stack.db_path),
                    "--firmware-port",
                    "0",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "COLDCHAIN_LOG_LEVEL": "INFO"},
            )
        wait_until(lambda: "controlling " in self.log.read_text(errors="replace"), 20, "control")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


class Devices:
    """The simulator's fleet engine in a thread: start, stop, start again (same sessions)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.fleet: Fleet | None = None
        self.thread: threading.Thread | None = None
        self.model = DeviceModel(DEVICE, Scenario.HEALTHY, seed=3, settings=ModelSettings())

    def start(self) -> Fleet:
        credentials = self.stack.pki.device(DEVICE)
        tls = client_context(credentials.ca, credentials.cert, credentials.key)
        options = FleetOptions(host="127.0.0.1", port=self.stack.port, interval_s=0.5, drain_s=2)
        fleet = Fleet([self.model], lambda _: tls, options)
        fleet.check_first_connection()
        self.fleet = fleet
        self.thread = threading.Thread(target=fleet.run, daemon=True)
        self.thread.start()
        return fleet

    def stop(self) -> None:
        if self.fleet is not None and self.thread is not None:
            self.fleet.stop()
            self.thread.join(timeout=20)
            self.fleet = self.thread = None

    @property
    def actions(self) -> int:
        assert self.fleet is not None
        commands = self.fleet._devices[0].commands
        assert commands is not None
        return commands.actions


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    made = Stack(tmp_path)
    made.pki.init()
    made.pki.issue_device(DEVICE)
    made.pki.issue_device(ABSENT)
    made.start_broker()
    made.start_worker()
    control = Control(made)
    try:
        yield made
    finally:
        control.stop()
        made.close()


@pytest.fixture
def devices(stack: Stack) -> Iterator[Devices]:
    made = Devices(stack)
    try:
        yield made
    finally:
        made.stop()


def coldchain(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "coldchain",
            "--home",
            str(stack.home),
            *args,
            "--db",
            str(stack.db_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def status(stack: Stack, command_id: str) -> dict[str, Any]:
    shown = coldchain(stack, "command", "show", command_id)
    assert shown.returncode == 0, shown.stderr
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def queued_id(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["command_id"])


def test_a_round_trip_and_a_retry_acts_once(stack: Stack, devices: Devices) -> None:
    devices.start()
    done = coldchain(stack, "command", "send", DEVICE, "self-test", "--wait", "--format", "json")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert first["status"] == "succeeded"
    assert first["result"]["sensors"]["temperature"] == "ok"
    assert devices.actions == 1
    again = coldchain(stack, "command", "retry", first["command_id"][:8], "--wait")
    assert again.returncode == 0, again.stderr
    assert status(stack, first["command_id"])["result"] == first["result"]  # the same answer
    assert status(stack, first["command_id"])["attempts"] == 2
    assert devices.actions == 1  # and no second action


def test_unknown_commands_are_rejected_and_exit_1(stack: Stack, devices: Devices) -> None:
    devices.start()
    done = coldchain(stack, "command", "send", DEVICE, "self-destruct", "--wait")
    assert done.returncode == 1
    assert done.stdout.startswith("rejected")


def test_a_command_to_a_stopped_device_times_out(stack: Stack) -> None:
    done = coldchain(stack, "command", "send", ABSENT, "self-test", "--timeout", "2s", "--wait")
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("timed_out")


def test_offline_delivery_before_expiry_and_never_after(stack: Stack, devices: Devices) -> None:
    devices.start()  # the session and its subscription exist from here on
    wait_until(lambda: stack.count() > 0, 20, "first readings")
    devices.stop()
    late = queued_id(
        coldchain(
            stack,
            "command",
            "send",
            DEVICE,
            "self-test",
            "--timeout",
            "1s",
            "--expires-in",
            "2s",
            "--format",
            "json",
        )
    )
    wait_until(lambda: status(stack, late)["status"] == "expired", 20, "expired")
    change = queued_id(
        coldchain(
            stack,
            "command",
            "send",
            DEVICE,
            "set-interval",
            "--arg",
            "seconds=0.2",
            "--timeout",
            "1s",
            "--expires-in",
            "60s",
            "--format",
            "json",
        )
    )
    wait_until(lambda: status(stack, change)["status"] == "timed_out", 20, "timed out")
    fleet = devices.start()
    wait_until(lambda: status(stack, change)["status"] == "succeeded", 20, "delivered")
    assert status(stack, change)["result"] == {"interval_s": 0.2}
    assert fleet._devices[0].interval_s == 0.2
    assert devices.actions == 1  # the expired one never reached it
    assert status(stack, late)["status"] == "expired"


def subscribed(device: Device, topic: str) -> int:
    """The SUBACK reason code the broker gives ``device`` for ``topic``."""
    granted: list[int] = []
    answered = threading.Event()

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: list[Any], p: Any) -> None:
        granted.extend(int(r.value) for r in reasons)
        answered.set()

    device.client.on_subscribe = on_subscribe
    device.client.subscribe(topic, qos=1)
    assert answered.wait(10), f"no SUBACK for {topic}"
    [code] = granted
    return code


def test_a_device_cannot_touch_another_devices_commands(stack: Stack) -> None:
    intruder = stack.device(DEVICE)
    assert subscribed(intruder, command_request_topic(ABSENT)) == 0x87  # not authorised
    mid = intruder.publish(
        json.dumps({"command_id": "x", "status": "succeeded", "timestamp": "2026-01-01T00:00:00Z"}),
        topic=command_response_topic(ABSENT),
    )
    wait_until(lambda: mid in intruder.reason_codes, 10, "puback")
    assert intruder.reason_codes[mid] == 135  # not authorised
    own = intruder.publish("{}", topic=command_response_topic(DEVICE))
    wait_until(lambda: own in intruder.reason_codes, 10, "puback")
    assert intruder.reason_codes[own] < 0x80


def shown(stack: Stack) -> dict[str, Any]:
    done = coldchain(stack, "config", "show", DEVICE, "--format", "json")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_a_desired_change_made_offline_reaches_the_device_and_sets_its_pace(
    stack: Stack, devices: Devices
) -> None:
    devices.start()
    wait_until(lambda: stack.count() > 0, 20, "first readings")
    devices.stop()
    made = coldchain(stack, "config", "set", DEVICE, "--interval", "0.1", "--band", "2:8")
    assert made.returncode == 0, made.stderr
    assert shown(stack)["state"]["delta"] == {"interval_s": 0.1, "band": [2.0, 8.0]}
    fleet = devices.start()
    wait_until(lambda: "delta" not in shown(stack)["state"], 20, "the delta applied")
    state = shown(stack)["state"]
    assert state["reported"]["interval_s"] == 0.1
    assert state["reported"]["band"] == [2.0, 8.0]
    assert fleet._devices[0].interval_s == 0.1
    # Readings at the new pace: ten a second, not two.
    since = stack.rows("SELECT max(ts) FROM readings")[0][0]
    wait_until(lambda: stack.count(where="ts > ?", params=(since,)) >= 20, 20, "new pace")
    stamps = [
        ts for (ts,) in stack.rows("SELECT ts FROM readings WHERE ts > ? ORDER BY ts", (since,))
    ]
    gaps = sorted(
        (datetime_of(b) - datetime_of(a)).total_seconds() for a, b in itertools.pairwise(stamps)
    )
    assert gaps[len(gaps) // 2] < 0.3


def datetime_of(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_stale_version_is_rejected_with_409(stack: Stack) -> None:
    assert coldchain(stack, "config", "set", DEVICE, "--label", "truck 7").returncode == 0
    stale = coldchain(stack, "config", "set", DEVICE, "--label", "truck 8", "--version", "0")
    assert stale.returncode != 0
    assert "Version conflict (409)" in stale.stderr
    assert shown(stack)["state"]["desired"] == {"label": "truck 7"}


def test_a_device_cannot_touch_another_devices_shadow(stack: Stack) -> None:
    intruder = stack.device(DEVICE)
    assert subscribed(intruder, shadow_topic(ABSENT, "update/delta")) == 0x87
    assert subscribed(intruder, jobs_topic(ABSENT, "notify-next")) == 0x87
    job_report = intruder.publish("{}", topic=jobs_topic(ABSENT, "j1/update"))
    wait_until(lambda: job_report in intruder.reason_codes, 10, "puback")
    assert intruder.reason_codes[job_report] == 135
    mid = intruder.publish(
        json.dumps({"state": {"reported": {"interval_s": 1}}}), topic=shadow_topic(ABSENT, "update")
    )
    wait_until(lambda: mid in intruder.reason_codes, 10, "puback")
    assert intruder.reason_codes[mid] == 135


def test_a_worker_identity_cannot_command_the_fleet(stack: Stack) -> None:
    """Only the control service's identity sends commands: a worker's key (a processor) that
    leaks cannot reach a device."""
    from coldchain.adapters import dynsec

    credentials = stack.pki.issue_processor("worker-x")
    dynsec.admit(stack.pki, ["worker-x"], "processor")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="worker-x", protocol=mqtt.MQTTv5)
    client.tls_set_context(client_context(credentials.ca, credentials.cert, credentials.key))
    codes: dict[int, int] = {}
    connected = threading.Event()
    client.on_connect = lambda c, u, f, reason, p: connected.set()
    client.on_publish = lambda c, u, mid, reason, p: codes.__setitem__(mid, int(reason.value))
    client.connect("127.0.0.1", stack.port)
    client.loop_start()
    try:
        assert connected.wait(10)
        mid = client.publish(command_request_topic(DEVICE), b"{}", qos=1).mid
        wait_until(lambda: mid in codes, 10, "puback")
        assert codes[mid] == 135
    finally:
        client.disconnect()
        client.loop_stop()
