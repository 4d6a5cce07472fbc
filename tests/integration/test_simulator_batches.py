"""The simulator's ``--batch``: through the real broker and worker, every reading stored once,
in order, with a message per N readings, a backlog after an outage included."""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldchain.adapters import dynsec
from coldchain.apps.simulator.fleet import Fleet, FleetOptions
from coldchain.core.device_model import DeviceModel, ModelSettings, Scenario
from coldchain.core.topics import TELEMETRY_FILTER
from coldchain.tls import client_context
from tests.stack import Stack, wait_until

BATCH = 10
MONITOR = "batch-monitor"


@dataclass(frozen=True)
class Seen:
    """One message the broker delivered: when, and the seqs it carried."""

    at: float
    seqs: list[int]


class Monitor:
    """A processor-identity subscriber that records every telemetry message."""

    def __init__(self, stack: Stack) -> None:
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        # Its own processor identity: the certificate CN is the client id, so borrowing the
        # worker's would kick the worker off.
        credentials = stack.pki.issue_processor(MONITOR)
        dynsec.admit(stack.pki, [MONITOR], "processor")
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=MONITOR, protocol=MQTTProtocolVersion.MQTTv5
        )
        client.tls_set_context(client_context(credentials.ca, credentials.cert, credentials.key))

        def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
            c.subscribe(TELEMETRY_FILTER, qos=1)

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: list[Any], p: Any) -> None:
            assert all(int(r.value) < 0x80 for r in reasons)
            subscribed.set()

        def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
            document = json.loads(message.payload)
            elements = document.get("readings", [document])
            with self._lock:
                self._seen.append(Seen(time.monotonic(), [e["seq"] for e in elements]))

        client.on_connect, client.on_subscribe, client.on_message = (
            on_connect,
            on_subscribe,
            on_message,
        )
        client.connect("127.0.0.1", stack.port)
        client.loop_start()
        assert subscribed.wait(10), "the monitor could not subscribe"
        self.client = client

    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def messages_in(summary: str) -> int:
    found = re.search(r"in (\d+) messages", summary)
    assert found is not None, summary
    return int(found.group(1))


def test_a_fleet_in_batches_of_10_is_stored_reading_by_reading(stack: Stack) -> None:
    stack.start_worker()
    process = stack.simulate(
        *("--devices", "3", "--interval", "0.05", "--count", "50", "--batch", str(BATCH)),
        *("--seed", "2", "--scenario", "healthy"),
    )
    _, err = process.communicate(timeout=90)
    assert process.returncode == 0, err
    assert "sampled 150, acknowledged 150, dropped 0, refused 0" in err
    # 5 full batches per device; a loaded machine may send a batch short, never a longer one.
    assert 15 <= messages_in(err) <= 18, err
    wait_until(lambda: stack.count() == 150, 30, "all 150 readings stored")
    for device in ("reefer-0001", "reefer-0002", "reefer-0003"):
        rows = stack.rows("SELECT seq FROM readings WHERE device_id = ? ORDER BY ts", (device,))
        assert [seq for (seq,) in rows] == list(range(50))
    assert stack.count("dead_letters") == 0


def test_one_device_in_batches_prints_every_reading(stack: Stack) -> None:
    stack.start_worker()
    process = stack.simulate(
        *("--device-id", "dev-1", "--interval", "0.05", "--count", "25", "--batch", str(BATCH)),
        stdout=subprocess.PIPE,
    )
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 25
    assert all("Published -> dt/coldchain/dev-1/telemetry | temp: " in line for line in lines)
    assert 3 <= messages_in(err) <= 5, err  # 10 + 10 + the last 5 when the count is reached
    wait_until(lambda: stack.count() == 25, 20, "25 readings stored")


def test_a_backlog_after_an_outage_goes_in_full_batches_oldest_first(stack: Stack) -> None:
    stack.start_worker()
    monitor = Monitor(stack)
    # The link is down from 1 s to 4 s into the run: about 60 readings at 20 a second.
    model = DeviceModel(
        "dev-1",
        Scenario.OUTAGE,
        seed=1,
        settings=ModelSettings(fault_start_window_s=(1.0, 1.0), outage_s=3.0),
    )
    credentials = stack.pki.device("dev-1")
    context = client_context(credentials.ca, credentials.cert, credentials.key)
    options = FleetOptions(
        "127.0.0.1",
        stack.port,
        interval_s=0.05,
        count=160,
        batch=BATCH,
        batch_wait_s=1.0,  # twice the default, so that a slow machine does not cut a batch short
    )
    fleet = Fleet([model], lambda device_id: context, options)
    try:
        fleet.check_first_connection()
        stats = fleet.run()
        assert stats.sampled == stats.acked == 160
        assert stats.reconnects >= 1
        wait_until(lambda: stack.count() == 160, 30, "all 160 readings stored")
        wait_until(lambda: len({s for m in monitor.seen() for s in m.seqs}) == 160, 10, "seen")
        seen = monitor.seen()
    finally:
        monitor.close()
    assert [seq for (seq,) in stack.rows("SELECT seq FROM readings ORDER BY ts")] == list(
        range(160)
    )
    assert stack.count("dead_letters") == 0
    assert all(len(m.seqs) <= BATCH for m in seen)
    # The backlog: the burst right after the longest silence, the outage.
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(seen)]
    after = gaps.index(max(gaps)) + 1
    assert max(gaps) >= 2.5, gaps
    backlog = [m for m in seen[after:] if m.at - seen[after].at < 0.3]
    replayed = [seq for m in backlog for seq in m.seqs]
    assert len(replayed) >= 40, backlog
    assert all(len(m.seqs) == BATCH for m in backlog), [len(m.seqs) for m in backlog]
    assert len(backlog) == len(replayed) // BATCH
    assert replayed == sorted(replayed)  # oldest first
    # The whole run: a message per 10 readings, give or take a short batch and a resend.
    assert stats.messages <= math.ceil(160 / BATCH) + 3, stats
    assert len(seen) <= stats.messages


def test_batches_unacknowledged_at_a_broker_restart_are_replayed_in_order(stack: Stack) -> None:
    stack.start_worker()
    process = stack.simulate(
        *("--devices", "3", "--interval", "0.05", "--count", "100", "--batch", str(BATCH)),
        *("--seed", "4", "--scenario", "healthy"),
    )
    wait_until(lambda: stack.count() >= 30, 30, "the first readings stored")
    stack.broker.stop()  # SIGTERM: the broker saves the worker's session
    time.sleep(2.0)  # devices keep sampling into their buffers
    stack.broker.start()
    _, err = process.communicate(timeout=90)
    assert process.returncode == 0, err
    assert "reconnects 0" not in err
    assert messages_in(err) <= 300 // BATCH + 3 * 6, err  # batches resent after the drop
    wait_until(lambda: stack.count() == 300, 60, "all 300 readings stored")
    for device in ("reefer-0001", "reefer-0002", "reefer-0003"):
        rows = stack.rows("SELECT seq FROM readings WHERE device_id = ? ORDER BY ts", (device,))
        assert [seq for (seq,) in rows] == list(range(100))
    assert stack.count("dead_letters") == 0
