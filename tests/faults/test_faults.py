"""Injected faults, each with a conservation check: every reading sent is stored exactly once
or sits in the dead-letter store with a reason, counted per device by seq."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coldchain.adapters.mosquitto import BrokerConfig, MosquittoProcess
from tests.stack import Stack, reading_body, wait_until


def assert_exactly_once(stack: Stack, devices: list[str], seqs: range) -> None:
    for device in devices:
        rows = stack.rows("SELECT seq FROM readings WHERE device_id = ? ORDER BY ts", (device,))
        assert [seq for (seq,) in rows] == list(seqs), device


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_broker_restarted_mid_stream_from_50_devices(stack: Stack) -> None:
    stack.start_worker()
    fleet = stack.simulate(
        "--devices",
        "50",
        "--interval",
        "0.25",
        "--count",
        "60",
        "--scenario",
        "healthy",
        "--seed",
        "9",
    )
    wait_until(lambda: stack.count() >= 800, 60, "the stream under way")
    stack.broker.stop()  # SIGTERM: mosquitto saves sessions and queues, then exits
    time.sleep(2.0)  # devices keep sampling into their buffers
    stack.broker.start()
    _, err = fleet.communicate(timeout=180)
    assert fleet.returncode == 0, err
    devices = [f"reefer-{n:04d}" for n in range(1, 51)]
    wait_until(lambda: stack.count() == 3000, 60, "3,000 readings stored")
    assert_exactly_once(stack, devices, range(60))
    assert stack.count("dead_letters") == 0


def test_two_shared_workers_one_killed(stack: Stack) -> None:
    stack.start_worker("worker-a", shared=True)
    victim = stack.start_worker("worker-b", shared=True)
    devices = ["dev-1", "dev-2"]
    clients = [stack.device(d) for d in devices]

    def send(seqs: range) -> None:
        threads = [
            threading.Thread(target=c.publish_all, args=([reading_body(d, s) for s in seqs],))
            for c, d in zip(clients, devices, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    send(range(0, 500))
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    send(range(500, 1000))  # part of it is queued for worker-b's session
    stack.start_worker("worker-b", shared=True)
    wait_until(lambda: stack.count() == 2000, 90, "2,000 readings stored")
    assert_exactly_once(stack, devices, range(1000))


def test_a_locked_store_holds_acks_and_resumes(stack: Stack) -> None:
    stack.start_worker()
    device = stack.device("dev-1")
    device.publish_all([reading_body("dev-1", s) for s in range(100)])
    wait_until(lambda: stack.count() == 100, 20, "the first readings")
    blocker = sqlite3.connect(stack.db_path, timeout=1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the store
    try:
        device.publish_all([reading_body("dev-1", s) for s in range(100, 400)])
        wait_until(lambda: "store unavailable" in stack.worker_log(), 30, "the worker to notice")
        time.sleep(2)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    wait_until(lambda: stack.count() == 400, 60, "every reading stored once the lock is gone")
    assert_exactly_once(stack, ["dev-1"], range(400))


def test_a_burst_of_20000_readings_is_absorbed_with_bounded_memory(stack: Stack) -> None:
    worker = stack.start_worker()
    devices = [f"dev-{n}" for n in range(1, 5)]
    clients = [stack.device(d) for d in devices]
    base = datetime.now(UTC) - timedelta(hours=2)  # 5,000 s of readings, all in the past

    def burst(device: str) -> list[str]:
        return [
            json.dumps(reading_body(device, s, at=base + timedelta(seconds=s))) for s in range(5000)
        ]

    started = time.monotonic()
    threads = [
        threading.Thread(target=c.publish_all, args=(burst(d), 200))
        for c, d in zip(clients, devices, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    published_after = time.monotonic() - started
    wait_until(lambda: stack.count() == 20_000, 180, "20,000 readings stored")
    assert_exactly_once(stack, devices, range(5000))
    peak = peak_rss_mib(worker.pid)
    assert peak < 250, f"worker peak RSS {peak:.0f} MiB"
    print(f"burst: published in {published_after:.1f} s, worker peak RSS {peak:.0f} MiB")


def test_broker_killed_loses_only_what_the_gap_report_names(stack: Stack) -> None:
    # A broker that saves its state rarely: a SIGKILL loses what it held in memory.
    stack.broker.stop()
    stack.broker = MosquittoProcess(
        BrokerConfig(stack.home / "broker", stack.pki, port=stack.port, autosave_interval_s=3600)
    )
    stack.broker.start()
    worker = stack.start_worker()
    device = stack.device("dev-1")
    device.publish_all([reading_body("dev-1", s) for s in range(100)])
    wait_until(lambda: stack.count() == 100, 20, "the first readings")
    stack.stop_worker(worker)  # the worker's session now queues in the broker's memory
    device.publish_all([reading_body("dev-1", s) for s in range(100, 200)])  # acknowledged...
    stack.broker.stop(signal.SIGKILL)  # ...and lost with the broker's memory
    device.close()
    stack.devices.remove(device)
    stack.broker.start()
    stack.start_worker()
    stack.device("dev-1").publish_all([reading_body("dev-1", s) for s in range(200, 300)])
    wait_until(lambda: stack.count() == 200, 30, "the readings after the crash")
    stored = {seq for (seq,) in stack.rows("SELECT seq FROM readings")}
    lost = set(range(300)) - stored
    assert lost == set(range(100, 200))
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "coldchain",
            "--home",
            str(stack.home),
            "report",
            "dev-1",
            "--db",
            str(stack.db_path),
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2099-01-01T00:00:00Z",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    gaps = json.loads(report.stdout)["readings"]["missing_seq_ranges"]
    named = {seq for first, last in gaps for seq in range(first, last + 1)}
    assert named == lost


def test_a_database_deleted_mid_stream_stops_the_worker_and_loses_nothing_after(
    stack: Stack,
) -> None:
    worker = stack.start_worker()
    device = stack.device("dev-1")
    device.publish_all([reading_body("dev-1", seq) for seq in range(300)])
    wait_until(lambda: stack.count() == 300, 30, "the first 300 stored")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{stack.db_path}{suffix}").unlink(missing_ok=True)
    device.publish_all([reading_body("dev-1", seq) for seq in range(300, 500)])
    assert worker.wait(30) != 0  # within the first batch after the delete
    assert "deleted or replaced" in stack.worker_log()
    stack.start_worker()
    after = "device_id = 'dev-1' AND seq >= 300"
    wait_until(lambda: stack.count("readings", after) == 200, 30, "the 200 sent after it stored")
    # Readings committed to the deleted file but not yet acknowledged when it went are
    # redelivered too (at least once): the new database may hold them as well, each once.
    seqs = [seq for (seq,) in stack.rows("SELECT seq FROM readings ORDER BY ts")]
    assert seqs == list(range(seqs[0], 500))
