"""The simulator against the real broker and worker: delivery, link loss, bad identity."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from coldchain.adapters.pki import LocalPki
from tests.stack import Stack, wait_until


def simulate(stack: Stack, *args: str) -> subprocess.Popen[str]:
    return stack.simulate(*args, stdout=subprocess.PIPE)  # these tests read what it prints


def test_single_device_prints_the_original_line_and_is_stored(stack: Stack) -> None:
    stack.start_worker()
    process = simulate(
        stack,
        "--device-id",
        "dev-1",
        "--count",
        "3",
        "--interval",
        "0.2",
        "--mqtt-version",
        "3.1.1",
    )
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert all("Published -> dt/coldchain/dev-1/telemetry | temp: " in line for line in lines)
    wait_until(lambda: stack.count() == 3, 20, "3 readings stored")


def test_broker_outage_buffered_readings_stored_once_in_order(stack: Stack) -> None:
    stack.start_worker()
    process = simulate(
        stack,
        "--devices",
        "3",
        "--interval",
        "0.1",
        "--count",
        "100",
        "--seed",
        "4",
        "--scenario",
        "healthy",
    )
    wait_until(lambda: stack.count() >= 30, 30, "the first readings stored")
    stack.broker.stop()  # SIGTERM: the broker saves the worker's session
    time.sleep(2.0)  # devices keep sampling into their buffers
    stack.broker.start()
    _, err = process.communicate(timeout=90)
    assert process.returncode == 0, err
    assert "reconnects 0" not in err
    wait_until(lambda: stack.count() == 300, 60, "all 300 readings stored")
    for device in ("reefer-0001", "reefer-0002", "reefer-0003"):
        rows = stack.rows("SELECT seq FROM readings WHERE device_id = ? ORDER BY ts", (device,))
        assert [seq for (seq,) in rows] == list(range(100))
    assert stack.count("dead_letters") == 0


def test_outage_scenario_replays_its_buffer(stack: Stack) -> None:
    stack.start_worker()
    process = simulate(
        stack,
        "--device-id",
        "dev-2",
        "--scenario",
        "outage",
        "--interval",
        "0.5",
        "--duration",
        "40",
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    sampled = len(out.strip().splitlines())
    wait_until(lambda: stack.count() == sampled, 30, "every reading stored")
    seqs = [seq for (seq,) in stack.rows("SELECT seq FROM readings ORDER BY ts")]
    assert seqs == list(range(sampled))


def test_certificate_from_another_ca_exits_with_one_line(stack: Stack, tmp_path: Path) -> None:
    stranger = LocalPki(tmp_path / "stranger")
    stranger.init()
    forged = stranger.issue_device("dev-1")
    process = simulate(
        stack,
        "--cert",
        str(forged.cert),
        "--key",
        str(forged.key),
        "--ca",
        str(stack.pki.ca_cert),
        "--count",
        "1",
    )
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "closed the connection before accepting it" in lines[0] or "TLS" in lines[0]
